"""WebSocket client checks against spindle's websocket_echo example (Python `websockets`).

Usage: ws_echo_client.py ws://HOST:PORT/ws
       ws_echo_client.py wss://localhost:PORT/ws CA.pem
Checks text and binary echo, ping/pong, a large message and a clean close (code 1000
both ways); prints OK and exits 0, or raises.
"""
import asyncio
import ssl
import sys

import websockets


async def main(url, ca=None):
    tls = ssl.create_default_context(cafile=ca) if ca else None
    async with websockets.connect(url, max_size=4 * 1024 * 1024, ssl=tls) as ws:
        await ws.send("hello, spindle")
        got = await asyncio.wait_for(ws.recv(), 5)
        assert got == "hello, spindle", got
        await ws.send("grüße ✓")
        got = await asyncio.wait_for(ws.recv(), 5)
        assert got == "grüße ✓", got

        blob = bytes(range(256)) * 4
        await ws.send(blob)
        got = await asyncio.wait_for(ws.recv(), 5)
        assert isinstance(got, bytes) and got == blob, "binary echo differs"

        big = b"x" * (1024 * 1024 + 7)
        await ws.send(big)
        got = await asyncio.wait_for(ws.recv(), 10)
        assert got == big, "large echo differs"

        pong = await ws.ping(b"are you there")
        latency = await asyncio.wait_for(pong, 5)
        assert latency >= 0

        await ws.close(code=1000, reason="done")
        assert ws.close_code == 1000, ws.close_code
        # The server's close frame came back: the closing handshake completed.
        # (close_rcvd moved to .protocol in the newer asyncio implementation.)
        rcvd = getattr(ws, "close_rcvd", None) or ws.protocol.close_rcvd
        assert rcvd is not None and rcvd.code == 1000, rcvd
    print("OK")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None))
