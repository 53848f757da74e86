#!/usr/bin/python3
"""devbridge.py -- a development stand-in for chat-server's HTTP listener.

Serves the files of web/ over HTTP and bridges WebSocket connections on
/ws (subprotocol chat.v1) to a chat-server TCP port: each binary message
from the browser must hold exactly one client->server frame and is written
to the TCP connection as is; the server's byte stream is split into whole
server->client frames, one binary message each. It exists only until the
server speaks HTTP/WebSocket itself; nothing in web/ depends on it.

    /usr/bin/python3 tests/browser/devbridge.py --tcp-port 8888 --http-port 8080

Prints "listening on 127.0.0.1:PORT (http devbridge)" on stderr once ready
(--http-port 0 picks a free port). Needs python3-websockets 10.x (Debian).
"""

import argparse
import asyncio
import http
import logging
import os
import struct
import sys
from pathlib import Path

import websockets

C2S_HDR = 13  # sender u32, receiver u32, type u8, len u32
S2C_HDR = 9   # sender u32, type u8, len u32
# Bound of one frame body through the bridge: the server's own default
# --max-frame (16 MiB); the server refuses bigger ones itself.
MAX_BODY = 16 << 20
# The policy chat-server sends with its pages: the page works under it here too.
CSP = ("default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
       "style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'")
# The Content-Types the server sends, from the script that builds web/
# into it (scripts/embed_web.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from embed_web import TYPES as WEB_TYPES  # noqa: E402


def web_response(web_dir, path):
    """The (status, headers, body) of GET path, or None for /ws."""
    path = path.split("?", 1)[0]
    if path == "/ws":
        return None
    name = "index.html" if path == "/" else path[1:]
    ext = os.path.splitext(name)[1]
    # web/ is flat: one path segment, a known extension, no dot files.
    if "/" in name or name.startswith(".") or ext not in WEB_TYPES:
        return (http.HTTPStatus.NOT_FOUND, [("Content-Type", "text/plain")], b"not found\n")
    try:
        with open(os.path.join(web_dir, name), "rb") as f:
            body = f.read()
    except OSError:
        return (http.HTTPStatus.NOT_FOUND, [("Content-Type", "text/plain")], b"not found\n")
    return (http.HTTPStatus.OK,
            [("Content-Type", WEB_TYPES[ext]), ("Cache-Control", "no-cache"),
             ("X-Content-Type-Options", "nosniff"), ("Content-Security-Policy", CSP)], body)


async def pump_to_server(ws, writer):
    async for msg in ws:
        if not isinstance(msg, bytes) or len(msg) < C2S_HDR:
            await ws.close(1002, "one binary chat frame per message")
            return
        (length,) = struct.unpack_from("!I", msg, 9)
        if C2S_HDR + length != len(msg):
            await ws.close(1002, "one binary chat frame per message")
            return
        writer.write(msg)
        await writer.drain()


async def pump_to_browser(ws, reader):
    while True:
        try:
            hdr = await reader.readexactly(S2C_HDR)
            (length,) = struct.unpack_from("!I", hdr, 5)
            if length > MAX_BODY:
                await ws.close(1009, "frame too large")
                return
            body = await reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError):
            await ws.close(1000, "server closed the connection")
            return
        await ws.send(hdr + body)


async def bridge(ws, _path, tcp_port):
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", tcp_port)
    except OSError as e:
        await ws.close(1011, f"chat server unreachable: {e.strerror}")
        return
    up = asyncio.ensure_future(pump_to_server(ws, writer))
    down = asyncio.ensure_future(pump_to_browser(ws, reader))
    try:
        await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (up, down):
            t.cancel()
        writer.close()
        try:
            await ws.close()
        except websockets.ConnectionClosed:
            pass


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tcp-port", type=int, required=True, help="chat-server's TCP port")
    ap.add_argument("--http-port", type=int, default=0, help="port to serve on (0: any free)")
    ap.add_argument("--web-dir", default=os.path.join(os.path.dirname(__file__), "..", "..", "web"))
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    web_dir = os.path.abspath(a.web_dir)
    server = await websockets.serve(
        lambda ws, path: bridge(ws, path, a.tcp_port),
        "127.0.0.1", a.http_port,
        process_request=lambda path, _headers: web_response(web_dir, path),
        subprotocols=["chat.v1"],
        max_size=C2S_HDR + MAX_BODY,
        max_queue=16,
        compression=None,
    )
    port = server.sockets[0].getsockname()[1]
    print(f"listening on 127.0.0.1:{port} (http devbridge)", file=sys.stderr, flush=True)
    await asyncio.Future()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
