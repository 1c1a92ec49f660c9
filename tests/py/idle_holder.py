"""Holds many idle keep-alive connections to a server, for the engine tests.

usage: idle_holder.py HOST PORT COUNT
Opens COUNT connections, asks one request on each and reads the answer, prints
"ready <answered>", then waits for a line on stdin; then asks one more request on every
connection, prints "answered <n>" and exits. Loopback only, bounded by COUNT.
"""
import socket
import sys

host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
REQUEST = b"GET /idle HTTP/1.1\r\nHost: idle\r\n\r\n"


def ask(sock):
    try:
        sock.sendall(REQUEST)
        got = b""
        while b"\r\n\r\n" not in got or not got.endswith(b"Hello, World!"):
            chunk = sock.recv(4096)
            if not chunk:
                return False
            got += chunk
        return True
    except OSError:
        return False


conns = []
answered = 0
for _ in range(count):
    s = socket.create_connection((host, port), timeout=10)
    conns.append(s)
    if ask(s):
        answered += 1
print("ready", answered, flush=True)
sys.stdin.readline()
print("answered", sum(1 for s in conns if ask(s)), flush=True)
