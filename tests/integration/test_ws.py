"""WebSocket at /ws (docs/PROTOCOL.md "WebSocket"): the handshake's checks,
each close code, fragments, ping, the close handshake, and chat between a
WebSocket user and a TCP user, live, stored, acknowledged; with Debian's
python3-websockets as the client where it can speak what is tested, and
wsproto's byte-level client where a test needs to break the protocol.
"""

import asyncio
import os
import socket
import struct

import pytest
import websockets

from proto import (ACK, ACKS_FLAG, ERROR, HELLO, PICTURE, TEXT, WELCOME, c2s,
                   hello_body, parse_ack, parse_welcome, read_data,
                   wait_for_ack, ping_sync, send_ack)
from wsproto import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,
                     HTTPConn, WSClient, http_port, upgrade_request, ws_frame,
                     ws_key)


@pytest.fixture
def web(start_server):
    return start_server("--http-port", "auto")


def handshake(srv, **kw):
    c = HTTPConn(srv.host, http_port(srv))
    c.send(upgrade_request(srv.host, http_port(srv), **kw))
    r = c.response()
    return c, r


# -- the handshake ---------------------------------------------------------

def test_handshake_is_checked(web):
    port = http_port(web)
    for kw, status in (
            ({"drop": ("Sec-WebSocket-Key",)}, 400),
            ({"key": "c2hvcnQ="}, 400),                      # 5 bytes, not 16
            ({"extra": {"Sec-WebSocket-Version": "8"}}, 426),
            ({"drop": ("Upgrade",)}, 426),
            ({"extra": {"Connection": "keep-alive"}}, 400),
            ({"extra": {"Sec-WebSocket-Protocol": "mqtt"}}, 400),
            ({"extra": {"Origin": "http://evil.example"}}, 403),
            ({"extra": {"Origin": "null"}}, 403)):
        c, r = handshake(web, **kw)
        assert r.status == status, (kw, r)
        c.expect_eof()
        c.close()
    c = HTTPConn(web.host, port)  # HTTP/1.0: 400
    c.send(upgrade_request(web.host, port).replace(b"HTTP/1.1", b"HTTP/1.0"))
    r = c.response()
    assert r.status == 400 and b"HTTP/1.1" in r.body, r
    c.close()
    c, r = handshake(web, extra={"Sec-WebSocket-Version": "12"})
    assert r.header("sec-websocket-version") == "13"
    c.close()
    # The page's own origin is allowed; so is no Origin (not a browser).
    c, r = handshake(web, extra={"Origin": f"http://{web.host}:{port}"})
    assert r.status == 101, r
    c.close()
    c, r = handshake(web, drop=("Origin",))
    assert r.status == 101, r
    c.close()
    assert web.log_lines("HTTP 403: this Origin may not open /ws")


def test_allowed_origins_flag(start_server):
    srv = start_server("--http-port", "auto", "--http-allow-origin",
                       "https://chat.example.com, http://localhost:3000")
    for origin, status in (("https://chat.example.com", 101),
                           ("http://localhost:3000", 101),
                           (f"http://{srv.host}:{http_port(srv)}", 403)):
        c, r = handshake(srv, extra={"Origin": origin})
        assert r.status == status, (origin, r)
        c.close()


def test_python_websockets_client_chats_with_a_tcp_client(web):
    """Debian's python3-websockets, subprotocol chat.v1, both ways."""
    tcp = web.client()
    tcp.hello(2)
    port = http_port(web)

    async def run():
        async with websockets.connect(f"ws://{web.host}:{port}/ws",
                                      subprotocols=["chat.v1"]) as ws:
            assert ws.subprotocol == "chat.v1"
            await ws.send(c2s(1, 0, HELLO, hello_body()))
            w = await ws.recv()
            assert w[4] == WELCOME and parse_welcome(w[9:]).user == 1
            await ws.send(c2s(1, 2, TEXT, "héllo 👋".encode()))
            f = await asyncio.get_running_loop().run_in_executor(None, tcp.read_frame)
            assert (f.sender, f.type, f.body) == (1, TEXT, "héllo 👋".encode())
            tcp.send_frame(2, 1, TEXT, b"and back")
            m = await ws.recv()
            assert isinstance(m, bytes) and m == struct.pack("!IBI", 2, TEXT, 8) + b"and back"
            pong = await ws.ping(b"are you there")
            await asyncio.wait_for(pong, 5)
            await ws.close(1000)
            assert ws.close_code == 1000
    asyncio.run(run())


# -- close codes -------------------------------------------------------------

def test_text_message_closes_with_1003(web):
    c = WSClient(web)
    c.send_ws(OP_TEXT, b"hello")
    assert "binary" in c.expect_close(1003)
    assert web.log_lines("text message")


def test_message_over_max_frame_closes_with_1009(start_server):
    srv = start_server("--http-port", "auto", "--max-frame", "1K")
    c = WSClient(srv)
    c.hello(1)
    c.send_frame(1, 1, TEXT, b"x" * 1024)  # at the bound: fine
    f = c.read_frame()
    assert f.body == b"x" * 1024
    # a WebSocket message may carry a POST: 13 + 10 + --max-frame bytes
    c.send_frame(1, 1, TEXT, b"x" * (1024 + 10 + 1))
    c.expect_close(1009)
    assert srv.log_lines("message over --max-frame")


def test_unmasked_frame_closes_with_1002(web):
    c = WSClient(web)
    c.send_ws(OP_BINARY, c2s(1, 0, HELLO, hello_body()), mask=False)
    c.expect_close(1002)


def test_message_that_is_not_one_chat_frame_closes_with_1002(web):
    c = WSClient(web)
    c.hello(1)
    c.send_ws(OP_BINARY, c2s(1, 1, TEXT, b"a") + c2s(1, 1, TEXT, b"b"))
    c.expect_close(1002)
    c = WSClient(web)
    c.send_ws(OP_BINARY, b"\x00\x00\x00\x01")  # not even a header
    c.expect_close(1002)
    assert web.log_lines("exactly one chat frame")


def test_reserved_bits_and_unknown_opcodes_close_with_1002(web):
    for frame in (ws_frame(OP_BINARY, c2s(1, 0, HELLO, hello_body()), rsv=4),
                  ws_frame(0x3, b"reserved opcode"),
                  ws_frame(OP_PING, b"fragmented ping", fin=False),
                  ws_frame(OP_CONT, b"a continuation out of nowhere")):
        c = WSClient(web)
        c.send(frame)
        c.expect_close(1002)


def test_no_subprotocol_offered_is_accepted_without_one(web):
    c, r = handshake(web, drop=("Sec-WebSocket-Protocol",))
    assert r.status == 101 and r.header("sec-websocket-protocol") is None, r
    c.close()


def test_fragmented_message_is_reassembled(web):
    c = WSClient(web)
    c.hello(1)
    msg = c2s(1, 1, TEXT, b"one frame in three fragments")
    c.send_ws(OP_BINARY, msg[:5], fin=False)
    c.send_ws(OP_PING, b"between fragments")  # control frames may interleave
    c.send_ws(OP_CONT, msg[5:20], fin=False)
    c.send_ws(OP_CONT, msg[20:])
    f = c.read_frame()
    assert f.body == b"one frame in three fragments"
    if not c.messages:  # (the pong may come after the chat frame)
        c.messages.append(c.recv_ws()[1:])
    assert c.messages == [(OP_PONG, b"between fragments")]


def test_fragments_are_bounded_by_max_frame(start_server):
    srv = start_server("--http-port", "auto", "--max-frame", "1K")
    c = WSClient(srv)
    c.hello(1)
    for _ in range(3):
        c.send_ws(OP_BINARY if _ == 0 else OP_CONT, b"y" * 600, fin=False)
    c.expect_close(1009)


def test_ping_is_answered_and_close_handshake_done(web):
    c = WSClient(web)
    c.send_ws(OP_PING, b"token")
    fin, op, payload = c.recv_ws()
    assert (fin, op, payload) == (True, OP_PONG, b"token")
    c.send_ws(OP_CLOSE, struct.pack("!H", 1000) + b"bye")
    fin, op, payload = c.recv_ws()
    assert op == OP_CLOSE and struct.unpack("!H", payload[:2])[0] == 1000
    c.expect_eof()


def test_keepalive_is_the_chat_ping_not_a_websocket_ping(start_server):
    """The server sends no WebSocket pings of its own: an idle client that
    speaks control frames gets the chat's PING, in a binary message."""
    from proto import PING, PONG
    srv = start_server("--http-port", "auto", "--idle-timeout", "1s")
    c = WSClient(srv)
    c.hello(1)
    f = c.read_frame(timeout=10)
    assert f.type == PING and c.messages == [], (f, c.messages)
    c.send_frame(1, 0, PONG, f.body)


def test_login_timeout_closes_with_a_close_frame(start_server):
    srv = start_server("--http-port", "auto", "--login-timeout", "1s")
    c = WSClient(srv)
    assert "no first frame" in c.expect_close(1008, timeout=10)


def test_shutdown_says_going_away(start_server):
    srv = start_server("--http-port", "auto")
    c = WSClient(srv)
    c.hello(1)
    ping_sync(c, 1)
    srv.proc.send_signal(__import__("signal").SIGTERM)
    e = c.read_error()
    assert "shutting down" in e.reason
    c.expect_close(1001)
    assert srv.wait_exit() == 0


# -- chat over WebSocket -----------------------------------------------------

def test_offline_messages_reach_a_websocket_user_at_login(web):
    tcp = web.client()
    tcp.hello(7)
    for i in range(3):
        tcp.send_frame(7, 8, TEXT, b"while you were away %d" % i)
    big = os.urandom(200_000)
    tcp.send_frame(7, 8, PICTURE, big)
    ping_sync(tcp, 7)
    c = WSClient(web)
    c.hello(8, flags=ACKS_FLAG)
    got = read_data(c, 4)
    assert [f.body for f in got[:3]] == [b"while you were away %d" % i for i in range(3)]
    assert got[3].type == PICTURE and got[3].body == big
    send_ack(c, 8, 4)
    ping_sync(c, 8)
    # Acknowledged: not delivered again.
    c.close()
    c = WSClient(web)
    c.hello(8, flags=ACKS_FLAG)
    ping_sync(c, 8)  # PONG first: nothing stored was waiting


def test_acknowledgements_over_websocket(web):
    rx = web.client()
    rx.hello(2)
    c = WSClient(web)
    c.hello(1, flags=ACKS_FLAG)
    for i in range(20):
        c.send_frame(1, 2, TEXT, b"%d" % i)
    r = wait_for_ack(c, 20)
    assert r.errors == []
    assert [f.body for f in read_data(rx, 20)] == [b"%d" % i for i in range(20)]


def test_killed_websocket_sender_loses_nothing_acknowledged(web):
    """A browser-side sender killed mid-stream (no close frame, a reset):
    every frame the server acknowledged reaches the receiver, once."""
    c = WSClient(web)
    c.hello(1, flags=ACKS_FLAG)
    n = 2000
    data = b"".join(ws_frame(OP_BINARY, c2s(1, 9, TEXT, b"m%06d" % i)) for i in range(n))
    cut = len(data) * 2 // 3 + 5  # in the middle of a WebSocket frame
    c.send(data[:cut])
    acked = 0
    while acked < n * 2 // 3 - 5:
        f = c.read_frame()
        if f.type == ACK:
            acked = parse_ack(f.body)
        else:
            assert f.type != ERROR, f
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()  # RST
    rx = web.client()
    rx.hello(9)
    bodies = [f.body for f in read_data(rx, acked, timeout=30)]
    assert bodies == [b"m%06d" % i for i in range(acked)]


def test_auth_over_websocket(start_server, tmp_path):
    import subprocess
    from conftest import require_binary
    srv_dir = tmp_path / "authdata"
    srv_dir.mkdir()
    r = subprocess.run([require_binary(), "user", "--data-dir", str(srv_dir),
                        "add", "5"], input="secret5\n", capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    srv = start_server("--http-port", "auto", "--auth", "on",
                       "--data-dir", str(srv_dir))
    c = WSClient(srv)
    c.send_hello(5, password=b"wrong")
    e = c.read_error()
    assert e.code == 5  # AUTH
    c.expect_close(1008)
    c = WSClient(srv)
    assert c.hello(5, password=b"secret5").user == 5


def test_https_and_wss_share_the_tls_engine(start_server, tmp_path):
    """--https-port alone (no --tls-port): HTTP and WebSocket over TLS,
    the certificate verified by the client; a wss user and a TCP user chat."""
    import ssl
    import tls_certs
    from wsproto import https_port
    certs = tls_certs.make(tmp_path / "certs")
    srv = start_server("--https-port", "auto", "--tls-cert", certs["server"],
                       "--tls-key", certs["server-key"])
    assert not srv.log_lines("TLS listening")  # no chat TLS port asked for
    ctx = ssl.create_default_context(cafile=certs["ca"])
    port = https_port(srv)
    c = HTTPConn(srv.host, port, tls=ctx)
    c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert c.response().status == 200
    c.close()
    w = WSClient(srv, port=port, tls=ctx)
    w.hello(1)
    tcp = srv.client()
    tcp.hello(2)
    w.send_frame(1, 2, TEXT, b"over wss")
    assert tcp.read_frame().body == b"over wss"
    tcp.send_frame(2, 1, TEXT, b"back")
    assert w.read_frame().body == b"back"
    with pytest.raises(ssl.SSLError):  # a client that does not trust it
        HTTPConn(srv.host, port, tls=ssl.create_default_context())


def test_ping_flood_without_reading_closes_with_1008(start_server):
    """Pings whose pongs pile up unread past --max-outbuf: close 1008."""
    srv = start_server("--http-port", "auto", "--max-frame", "1K",
                       "--max-outbuf", "70K")
    c = WSClient(srv)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    from conftest import flood
    flood(srv, c.send, ws_frame(OP_PING, b"p" * 125) * 1000,
          "WebSocket closed: pings while the pongs pile up unread")
    c.close()
    tcp = srv.client()
    tcp.hello(5)
    ping_sync(tcp, 5)
