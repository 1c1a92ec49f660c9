"""Bounded keep-alive load through a proxy, checking every answer.

usage: scale_load.py PORT THREADS REQUESTS_PER_THREAD
Each request asks for a unique path; the answer must be "<backend-name> <path>".
Prints a summary line per backend name and exits 1 on any wrong or failed answer.
"""
import collections
import http.client
import sys
import threading

port, threads, per_thread = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
counts = collections.Counter()
failures = []
lock = threading.Lock()


def worker(tid):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for i in range(per_thread):
        path = f"/t{tid}/r{i}"
        try:
            conn.request("GET", path)
            res = conn.getresponse()
            body = res.read().decode()
            name, _, got_path = body.partition(" ")
            if res.status != 200 or got_path != path:
                with lock:
                    failures.append(f"{path}: {res.status} {body!r}")
            else:
                with lock:
                    counts[name] += 1
        except Exception as e:  # a lost request is exactly what this test looks for
            with lock:
                failures.append(f"{path}: {e!r}")
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)


ts = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
for name, n in sorted(counts.items()):
    print(f"{name} {n}")
print(f"failures {len(failures)}")
for f in failures[:20]:
    print("  ", f)
sys.exit(1 if failures else 0)
