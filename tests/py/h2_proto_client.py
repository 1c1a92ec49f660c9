#!/usr/bin/env python3
"""Python `h2` as the client of spindle's server role (tests/h2_proto_python.rs).

Pure byte exchange: every message on stdout/stdin is a 4-byte big-endian length followed
by that many bytes. The script sends one message (its pending output, possibly empty) and
reads exactly one reply (the server's output, possibly empty), in lockstep. A length of
0xFFFFFFFF means "done". Assertion failures exit non-zero with the reason on stderr.

Usage: h2_proto_client.py SCENARIO   (window1 | trailers | reset | concurrent | settings)
"""
import struct
import sys

import h2.config
import h2.connection
import h2.events
from h2.errors import ErrorCodes
from h2.settings import SettingCodes

OUT = sys.stdout.buffer
IN = sys.stdin.buffer


def pattern(n, seed):
    return bytes(((i * 31) + seed) & 0xFF for i in range(n))


def send_msg(b):
    OUT.write(struct.pack(">I", len(b)) + b)
    OUT.flush()


def recv_msg():
    hdr = IN.read(4)
    if len(hdr) < 4:
        raise SystemExit("server closed the pipe")
    (n,) = struct.unpack(">I", hdr)
    data = IN.read(n)
    assert len(data) == n
    return data


class Req:
    def __init__(self, path, body=b"", trailers=None, reset_after=None, reset_recv_after=None):
        self.path = path
        self.body = body
        self.trailers = trailers
        self.reset_after = reset_after
        self.reset_recv_after = reset_recv_after
        self.sid = None
        self.sent = 0
        self.body_done = False
        self.status = None
        self.resp = bytearray()
        self.resp_trailers = None
        self.done = False
        self.reset = None


def run(conn, reqs, hook=None):
    pending = list(reqs)
    active = {}
    rounds = 0
    settings_acked = 0
    while True:
        if hook:
            hook(rounds, conn, reqs)
        limit = conn.remote_settings.max_concurrent_streams
        while pending and len(active) < limit:
            r = pending.pop(0)
            r.sid = conn.get_next_available_stream_id()
            hdrs = [(":method", "POST"), (":path", r.path), (":scheme", "http"), (":authority", "test")]
            end = not r.body and r.trailers is None and r.reset_after is None
            conn.send_headers(r.sid, hdrs, end_stream=end)
            r.body_done = end
            active[r.sid] = r
        for r in list(active.values()):
            if r.body_done or r.done:
                continue
            limit_b = len(r.body) if r.reset_after is None else r.reset_after
            while r.sent < limit_b:
                w = min(conn.local_flow_control_window(r.sid), conn.max_outbound_frame_size, limit_b - r.sent)
                if w <= 0:
                    break
                conn.send_data(r.sid, r.body[r.sent:r.sent + w])
                r.sent += w
            if r.sent >= limit_b:
                if r.reset_after is not None:
                    conn.reset_stream(r.sid, ErrorCodes.CANCEL)
                    r.reset = "local"
                    r.done = True
                elif r.trailers is not None:
                    conn.send_headers(r.sid, r.trailers, end_stream=True)
                else:
                    conn.end_stream(r.sid)
                r.body_done = True
        send_msg(conn.data_to_send())
        for ev in conn.receive_data(recv_msg()):
            r = active.get(getattr(ev, "stream_id", None))
            if isinstance(ev, h2.events.ResponseReceived):
                r.status = dict(ev.headers)[":status"]
            elif isinstance(ev, h2.events.DataReceived):
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                if r is None or r.done:
                    continue
                r.resp += ev.data
                if r.reset_recv_after is not None and len(r.resp) >= r.reset_recv_after:
                    conn.reset_stream(r.sid, ErrorCodes.CANCEL)
                    r.reset = "local"
                    r.done = True
            elif isinstance(ev, h2.events.TrailersReceived):
                r.resp_trailers = dict(ev.headers)
            elif isinstance(ev, h2.events.StreamEnded):
                if r is not None:
                    r.done = True
            elif isinstance(ev, h2.events.StreamReset):
                if r is not None and not r.done:
                    r.reset = ev.error_code
                    r.done = True
            elif isinstance(ev, h2.events.SettingsAcknowledged):
                settings_acked += 1
            elif isinstance(ev, h2.events.ConnectionTerminated):
                raise AssertionError("server sent GOAWAY: %r" % (ev,))
        for sid in [s for s, r in active.items() if r.done]:
            del active[sid]
        if not pending and not active:
            break
        rounds += 1
        assert rounds < 200000, "no progress"
    return settings_acked


def new_conn(initial_window=None):
    cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
    conn = h2.connection.H2Connection(config=cfg)
    conn.initiate_connection()
    if initial_window is not None:
        conn.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: initial_window})
    return conn


def check_ok(r, want):
    assert r.reset is None, (r.path, r.reset)
    assert r.status == "200", (r.path, r.status)
    assert bytes(r.resp) == want, (r.path, len(r.resp), len(want))


def main():
    scenario = sys.argv[1]
    if scenario == "window1":
        # Our receive window of 1 byte: spindle must send DATA one byte at a time. (The
        # Rust side also gives the server a 1-byte window: uploads go one byte at a time.)
        conn = new_conn(initial_window=1)
        reqs = [Req("/big/3000"), Req("/echo", pattern(2500, 3)), Req("/echo")]
        run(conn, reqs)
        check_ok(reqs[0], pattern(3000, 7))
        check_ok(reqs[1], pattern(2500, 3))
        check_ok(reqs[2], b"")
    elif scenario == "trailers":
        conn = new_conn()
        reqs = [
            Req("/echo", pattern(100000, 1), trailers=[("x-checksum", "c0ffee")]),
            Req("/echo", b"", trailers=[("x-only", "trailers")]),
        ]
        run(conn, reqs)
        check_ok(reqs[0], pattern(100000, 1))
        assert reqs[0].resp_trailers == {"x-echo-x-checksum": "c0ffee", "x-server-trailer": "yes"}, reqs[0].resp_trailers
        assert reqs[1].resp_trailers["x-echo-x-only"] == "trailers"
    elif scenario == "reset":
        conn = new_conn()
        reqs = [
            Req("/big/2000000", reset_recv_after=50000),      # we reset a download mid-body
            Req("/echo", pattern(500000, 2), reset_after=100000),  # we reset an upload mid-body
            Req("/reset-mid"),                                  # the server resets mid-body
            Req("/echo", pattern(30000, 5)),
            Req("/big/70000"),
        ]
        run(conn, reqs)
        assert reqs[0].reset == "local" and reqs[1].reset == "local"
        assert reqs[2].reset == ErrorCodes.CANCEL, reqs[2].reset
        assert len(reqs[2].resp) <= 1000
        check_ok(reqs[3], pattern(30000, 5))
        check_ok(reqs[4], pattern(70000, 7))
    elif scenario == "concurrent":
        conn = new_conn()
        reqs = []
        for i in range(100):
            reqs.append(Req("/echo", pattern(i * 101, i)) if i % 2 else Req("/big/%d" % (i * 997)))
        run(conn, reqs)
        for i, r in enumerate(reqs):
            check_ok(r, pattern(i * 101, i) if i % 2 else pattern(i * 997, 7))
    elif scenario == "settings":
        conn = new_conn()

        def hook(rounds, conn, reqs):
            if rounds == 2:
                conn.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: 1000, SettingCodes.MAX_FRAME_SIZE: 1 << 20})
            if rounds == 30:
                conn.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: 4 << 20, SettingCodes.HEADER_TABLE_SIZE: 0})
        reqs = [Req("/settings")]
        for i in range(40):
            reqs.append(Req("/echo", pattern(150000, i)) if i % 2 else Req("/big/250000"))
        run(conn, reqs, hook)
        assert bytes(reqs[0].resp) == b"ok"
        for i, r in enumerate(reqs[1:]):
            check_ok(r, pattern(150000, i) if i % 2 else pattern(250000, 7))
        # The server's own mid-connection SETTINGS were applied by h2.
        assert conn.remote_settings.max_concurrent_streams == 50, conn.remote_settings.max_concurrent_streams
        assert conn.remote_settings.initial_window_size == 32768
    else:
        raise SystemExit("unknown scenario " + scenario)
    # A final PING round trip proves the connection is still healthy.
    conn.ping(b"finished")
    send_msg(conn.data_to_send())
    evs = conn.receive_data(recv_msg())
    assert any(isinstance(e, h2.events.PingAckReceived) for e in evs), evs
    OUT.write(struct.pack(">I", 0xFFFFFFFF))
    OUT.flush()
    sys.stderr.write("scenario %s: ok\n" % scenario)


if __name__ == "__main__":
    main()
