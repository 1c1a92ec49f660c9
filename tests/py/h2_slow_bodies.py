"""Deadlock-freedom probe for spindle's HTTP/2 server (issue 8, item 3).

Opens STREAMS concurrent POST streams on one connection and sends their bodies
slowly, pinging the server every round and checking each PING is answered within
PING_BOUND seconds. Streams end one per round after the slow phase, so handlers
finish one by one. Prints one JSON line: ping maxima and each stream's response.

usage: h2_slow_bodies.py PORT STREAMS ROUNDS
"""
import json
import select
import socket
import sys
import time

import h2.config
import h2.connection
import h2.events

PING_BOUND = 2.0

port, streams, rounds = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
sock = socket.create_connection(("127.0.0.1", port))
conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
conn.initiate_connection()
sock.sendall(conn.data_to_send())

ids = []
for i in range(streams):
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "POST"), (":path", "/slow/%d" % i),
                            (":scheme", "http"), (":authority", "localhost")])
    ids.append(sid)
sock.sendall(conn.data_to_send())

sent = {sid: 0 for sid in ids}
bodies = {sid: b"" for sid in ids}
status = {}
ended = set()
pings = []
ping_sent = None


def pump(timeout):
    """Reads what the server sent for up to `timeout` seconds."""
    global ping_sent
    end = time.time() + timeout
    while True:
        left = end - time.time()
        if left <= 0:
            return
        r, _, _ = select.select([sock], [], [], left)
        if not r:
            return
        data = sock.recv(65536)
        if not data:
            raise SystemExit("server closed the connection")
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.PingAckReceived):
                pings.append(time.time() - ping_sent)
                ping_sent = None
            elif isinstance(ev, h2.events.ResponseReceived):
                status[ev.stream_id] = dict(ev.headers)[b":status"].decode()
            elif isinstance(ev, h2.events.DataReceived):
                bodies[ev.stream_id] += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                ended.add(ev.stream_id)
            elif isinstance(ev, h2.events.StreamReset):
                raise SystemExit("stream %d reset: %r" % (ev.stream_id, ev.error_code))
        out = conn.data_to_send()
        if out:
            sock.sendall(out)


def ping_round():
    global ping_sent
    ping_sent = time.time()
    conn.ping(b"spindle!")
    sock.sendall(conn.data_to_send())
    while ping_sent is not None:
        if time.time() - ping_sent > PING_BOUND:
            raise SystemExit("PING not answered within %.1f s" % PING_BOUND)
        pump(0.05)


chunk = b"x" * 100
for r in range(rounds + streams):
    for k, sid in enumerate(ids):
        if r < rounds:
            conn.send_data(sid, chunk)
            sent[sid] += len(chunk)
        elif r - rounds == k:
            conn.end_stream(sid)
    sock.sendall(conn.data_to_send())
    ping_round()
    pump(0.1)

deadline = time.time() + 20
while len(ended) < len(ids) and time.time() < deadline:
    pump(0.1)
ping_round()
print(json.dumps({
    "max_ping": max(pings),
    "pings": len(pings),
    "streams": [{"status": status.get(s), "len": len(bodies[s]), "sent": sent[s],
                 "ended": s in ended} for s in ids],
}))
