"""HTTP/2 edge cases against a spindle server, driven with Python's `h2` (issue 8, item 6).

Used by tests/h2_interop.rs, which runs the server (its routes are described there) and
checks the JSON line each mode prints. Everything is bounded: socket reads time out, and
each mode gives up after DEADLINE seconds.

usage: h2_edge_cases.py PORT MODE
modes:
  window1     SETTINGS_INITIAL_WINDOW_SIZE = 1: a multi-KB response comes byte by byte,
              one WINDOW_UPDATE per byte
  trailers    request trailers sent, response trailers received
  rst         RST_STREAM while uploading; other streams on the connection are answered
  many        100 concurrent streams on one connection
  settings    INITIAL_WINDOW_SIZE and MAX_FRAME_SIZE changed while responses are in flight
"""
import json
import select
import socket
import sys
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

DEADLINE = 20.0


class Client:
    def __init__(self, port, settings=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.flush()
        self.status = {}
        self.headers = {}
        self.bodies = {}
        self.frames = {}
        self.trailers = {}
        self.ended = set()
        self.resets = {}
        self.settings_acked = 0
        self.ack_marks = []
        self.remote_settings = []
        self.closed = None
        self.auto_ack = True
        self.on_data = None
        self.started = time.time()

    def flush(self):
        out = self.conn.data_to_send()
        if out:
            self.sock.sendall(out)

    def request(self, method, path, end_stream=True, extra=()):
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(sid, [(":method", method), (":path", path),
                                     (":scheme", "http"), (":authority", "localhost")]
                               + list(extra), end_stream=end_stream)
        self.bodies[sid] = b""
        self.frames[sid] = []
        self.flush()
        return sid

    def pump(self, timeout):
        """Reads and handles what the server sent for up to `timeout` seconds."""
        end = time.time() + timeout
        while True:
            left = end - time.time()
            if left <= 0:
                return
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                return
            data = self.sock.recv(65536)
            if not data:
                self.closed = "eof"
                raise SystemExit("server closed the connection")
            for ev in self.conn.receive_data(data):
                self.event(ev)
            self.flush()

    def event(self, ev):
        if isinstance(ev, h2.events.ResponseReceived):
            h = dict(ev.headers)
            self.status[ev.stream_id] = h[":status"]
            self.headers[ev.stream_id] = h
        elif isinstance(ev, h2.events.DataReceived):
            self.bodies[ev.stream_id] += ev.data
            self.frames[ev.stream_id].append(len(ev.data))
            if self.on_data:
                self.on_data(ev)
            elif self.auto_ack and ev.flow_controlled_length:
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.TrailersReceived):
            self.trailers[ev.stream_id] = dict(ev.headers)
        elif isinstance(ev, h2.events.StreamEnded):
            self.ended.add(ev.stream_id)
        elif isinstance(ev, h2.events.StreamReset):
            self.resets[ev.stream_id] = int(ev.error_code)
        elif isinstance(ev, h2.events.SettingsAcknowledged):
            self.settings_acked += 1
            # Where each stream's frames stood when the server acknowledged.
            self.ack_marks.append({s: len(f) for s, f in self.frames.items()})
        elif isinstance(ev, h2.events.RemoteSettingsChanged):
            self.remote_settings.append({int(k): v.new_value for k, v in ev.changed_settings.items()})
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.closed = "goaway %d" % int(ev.error_code)

    def until(self, cond, what):
        while not cond():
            if time.time() - self.started > DEADLINE:
                raise SystemExit("timed out waiting for " + what)
            self.pump(0.05)


def pattern(n):
    return bytes(i % 251 for i in range(n))


def window1(port):
    n = 3000
    c = Client(port, {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1})
    # Two SETTINGS went out (h2's first, then ours): both acknowledged.
    c.until(lambda: c.settings_acked >= 2, "SETTINGS ACK")
    updates = [0]

    def on_data(ev):
        # One WINDOW_UPDATE per byte, for the stream (until it has ended) and the
        # connection.
        if ev.flow_controlled_length:
            c.conn.increment_flow_control_window(ev.flow_controlled_length)
            if credit_stream(c, ev):
                updates[0] += 1
    c.on_data = on_data
    sid = c.request("GET", "/bytes?n=%d" % n)
    c.until(lambda: sid in c.ended, "the body")
    body = c.bodies[sid]
    return {"status": c.status[sid], "len": len(body), "ok": body == pattern(n),
            "frames": len([f for f in c.frames[sid] if f]), "max_frame": max(c.frames[sid]),
            "updates": updates[0]}


def credit_stream(c, ev):
    """WINDOW_UPDATE for the stream of a DATA event, unless the stream has ended (a
    batch of events can hold DATA and then END_STREAM)."""
    if ev.stream_ended is not None or ev.stream_id in c.ended:
        return False
    try:
        c.conn.increment_flow_control_window(ev.flow_controlled_length, ev.stream_id)
    except h2.exceptions.StreamClosedError:
        return False
    return True


def trailers(port):
    c = Client(port)
    sid = c.request("POST", "/trailers", end_stream=False, extra=[("te", "trailers")])
    body = pattern(50000)
    for i in range(0, len(body), 10000):
        c.conn.send_data(sid, body[i:i + 10000])
        c.flush()
        c.pump(0.01)
    c.conn.send_headers(sid, [("x-client-sum", str(sum(body))), ("x-note", "sent after")],
                        end_stream=True)
    c.flush()
    c.until(lambda: sid in c.ended, "the response")
    return {"status": c.status[sid], "body": c.bodies[sid].decode(),
            "trailers": c.trailers.get(sid, {})}


def rst(port):
    c = Client(port)
    up = c.request("POST", "/watch/rst", end_stream=False)
    c.conn.send_data(up, b"a" * 1000)
    c.flush()
    other = c.request("GET", "/other-before")
    c.pump(0.3)  # the handler has read the first bytes and waits for more
    c.conn.reset_stream(up, h2.errors.ErrorCodes.CANCEL)
    c.flush()
    after = c.request("GET", "/other-after")
    c.until(lambda: other in c.ended and after in c.ended, "the other streams")
    return {"before": [c.status.get(other), c.bodies[other].decode()],
            "after": [c.status.get(after), c.bodies[after].decode()],
            "reset_status": c.status.get(up), "closed": c.closed}


def many(port):
    c = Client(port)
    c.until(lambda: c.remote_settings, "server SETTINGS")
    limit = c.conn.remote_settings.max_concurrent_streams
    ids = {}
    for i in range(100):
        if i % 2:
            sid = c.request("GET", "/id/%d" % i)
        else:
            sid = c.request("POST", "/echo", end_stream=False)
            c.conn.send_data(sid, ("body %d " % i).encode() * (i + 1), end_stream=True)
        ids[sid] = i
    c.flush()
    c.until(lambda: all(s in c.ended for s in ids), "100 responses")
    bad = []
    for sid, i in ids.items():
        want = ("id %d\n" % i).encode() if i % 2 else ("body %d " % i).encode() * (i + 1)
        if c.status.get(sid) != "200" or c.bodies[sid] != want:
            bad.append([i, c.status.get(sid), c.bodies[sid][:40].decode("latin-1")])
    return {"streams": len(ids), "answered": len(c.ended), "bad": bad,
            "server_max_concurrent": limit, "resets": len(c.resets)}


def settings(port):
    n = 600000
    codes = h2.settings.SettingCodes
    c = Client(port, {codes.INITIAL_WINDOW_SIZE: 16384})
    # Two SETTINGS went out (h2's first, then ours): both acknowledged.
    c.until(lambda: c.settings_acked >= 2, "SETTINGS ACK")
    ids = [c.request("GET", "/bytes?n=%d" % n) for _ in range(4)]
    got = lambda: sum(len(c.bodies[s]) for s in ids)
    state = {"phase": 1}

    # Every DATA frame is credited back at once; the settings change at set byte counts,
    # from inside the event loop, so responses are always in flight when they do.
    def on_data(ev):
        if ev.flow_controlled_length:
            c.conn.increment_flow_control_window(ev.flow_controlled_length)
            credit_stream(c, ev)
        total = got()
        if state["phase"] == 1 and total >= 300000:
            # A smaller window while DATA is in flight (windows may go negative).
            c.conn.update_settings({codes.INITIAL_WINDOW_SIZE: 1000})
            state["phase"] = 2
        elif state["phase"] == 2 and c.settings_acked >= 3:
            state.setdefault("acked_at", total)
            if total >= state["acked_at"] + 200000:
                c.conn.update_settings({codes.INITIAL_WINDOW_SIZE: 1 << 20,
                                        codes.MAX_FRAME_SIZE: 65536})
                c.conn.increment_flow_control_window(8 << 20)
                # h2 (4.x) sets its frame parser's size limit once per receive_data()
                # call: an ACK and a larger frame behind it in the same read would be
                # refused. We can take larger frames from now on; the Rust side checks
                # none came before the ACK.
                c.conn.max_inbound_frame_size = 65536
                state["phase"] = 3
    c.on_data = on_data
    c.until(lambda: all(s in c.ended for s in ids), "the four bodies")
    if c.settings_acked < 4:
        raise SystemExit("the bodies ended before the last SETTINGS was acknowledged")

    def frames_after_ack(k):
        # Frames that arrived after the server acknowledged our k-th SETTINGS frame.
        return [f for s in ids for f in c.frames[s][c.ack_marks[k - 1].get(s, 0):]]

    def frames_between(k1, k2):
        return [f for s in ids
                for f in c.frames[s][c.ack_marks[k1 - 1].get(s, 0):c.ack_marks[k2 - 1].get(s, 0)]]
    phases = [
        {"window": 16384, "max_frame": max(frames_between(2, 3))},
        {"window": 1000, "max_frame": max(frames_between(3, 4)),
         "frames": len(frames_between(3, 4))},
        {"window": 1 << 20, "max_frame": max(frames_after_ack(4) or [0])},
    ]
    ok = all(c.bodies[s] == pattern(n) for s in ids)
    return {"ok": ok, "lens": [len(c.bodies[s]) for s in ids], "phases": phases,
            "statuses": [c.status.get(s) for s in ids], "resets": c.resets}


MODES = {"window1": window1, "trailers": trailers, "rst": rst, "many": many,
         "settings": settings}

if __name__ == "__main__":
    port, mode = int(sys.argv[1]), sys.argv[2]
    print(json.dumps(MODES[mode](port)))
