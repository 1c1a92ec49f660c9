"""httpx with HTTP/2 against a spindle server (issue 8, item 6); used by tests/h2_interop.rs.

Over cleartext httpx speaks HTTP/2 only with prior knowledge: http1=False, http2=True.
Prints one JSON line with what each request got.

usage: h2_httpx_client.py BASE_URL
"""
import json
import sys

import httpx

base = sys.argv[1]
upload = bytes(i % 251 for i in range(300000))
out = {}
with httpx.Client(http1=False, http2=True, timeout=10) as client:
    r = client.get(base + "/hello")
    out["get"] = [r.http_version, r.status_code, r.text]
    r = client.get(base + "/bytes?n=1000000")
    out["bytes"] = [r.http_version, r.status_code, len(r.content),
                    r.content == bytes(i % 251 for i in range(1000000))]
    r = client.post(base + "/echo", content=upload)
    out["echo"] = [r.http_version, r.status_code, r.content == upload]
    # A body of unknown length (a generator): no content-length, END_STREAM ends it.
    r = client.post(base + "/upload", content=(upload[i:i + 7000] for i in range(0, len(upload), 7000)))
    out["stream_upload"] = [r.http_version, r.status_code, r.text]
    r = client.get(base + "/missing-handler-path")
    out["path"] = [r.status_code, r.text]
print(json.dumps(out))
