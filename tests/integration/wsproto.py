"""HTTP and WebSocket (RFC 6455) test clients over plain blocking sockets,
written here so that a test controls every byte (masking, fragments,
protocol violations). The chat-level interface of WSClient is the one of
proto.Client (send_frame, hello, read_frame, ...), so the helpers of
proto.py (wait_for_ack, read_data, ping_sync) work over WebSocket too.
"""

import base64
import hashlib
import os
import re
import socket
import struct
import time

import pytest

from proto import (DEFAULT_TIMEOUT, HELLO, S2C, ConnectionClosed, Frame, c2s,
                   hello_body, parse_error, parse_welcome, ERROR, WELCOME)

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
HTTP_LISTENING = re.compile(r"listening on (\S+):(\d+) \(http:")
HTTPS_LISTENING = re.compile(r"listening on (\S+):(\d+) \(https:")

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


def http_port(srv):
    """The HTTP listener's port from the server's log."""
    m = srv.wait_for_log(HTTP_LISTENING)
    return int(m.group(2))


def https_port(srv):
    return int(srv.wait_for_log(HTTPS_LISTENING).group(2))


class HTTPResponse:
    def __init__(self, status, reason, headers, body):
        self.status, self.reason, self.headers, self.body = status, reason, headers, body

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return f"HTTPResponse({self.status} {self.reason}, {self.headers}, {self.body[:200]!r})"


class HTTPConn:
    """One TCP connection to the HTTP listener; requests are raw bytes."""

    def __init__(self, host, port, timeout=DEFAULT_TIMEOUT, tls=None):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        if tls:  # an ssl.SSLContext: HTTPS / wss
            self.sock = tls.wrap_socket(self.sock, server_hostname=host)
        self.buf = bytearray()
        self.timeout = timeout

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"HTTP: timed out; have {bytes(self.buf[:300])!r}")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            pytest.fail(f"HTTP: timed out; have {bytes(self.buf[:300])!r}")
        if not chunk:
            raise ConnectionClosed("HTTP: connection closed", bytes(self.buf))
        self.buf += chunk

    def response(self, head=False, timeout=None):
        """Read one response (its body by Content-Length; none for HEAD or
        101)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\r\n\r\n" not in self.buf:
            self._fill(deadline)
        end = self.buf.index(b"\r\n\r\n")
        lines = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        del self.buf[:end + 4]
        m = re.match(r"HTTP/1\.1 (\d{3}) (.*)$", lines[0])
        assert m, f"bad status line {lines[0]!r}"
        headers = {}
        for l in lines[1:]:
            k, _, v = l.partition(":")
            assert k and k == k.strip(), f"bad header line {l!r}"
            assert k.lower() not in headers, f"duplicate header {k}"
            headers[k.lower()] = v.strip()
        status = int(m.group(1))
        n = 0 if head or status == 101 else int(headers.get("content-length", "0"))
        while len(self.buf) < n:
            self._fill(deadline)
        body = bytes(self.buf[:n])
        del self.buf[:n]
        return HTTPResponse(status, m.group(2), headers, body)

    def expect_eof(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._fill(deadline)
            except ConnectionClosed:
                return
            except ConnectionResetError:
                return

    def close(self):
        self.sock.close()


def get(srv, path, headers=None, method="GET"):
    """One request on a fresh connection (Connection: close)."""
    port = http_port(srv)
    c = HTTPConn(srv.host, port)
    try:
        h = {"Host": f"{srv.host}:{port}", "Connection": "close", **(headers or {})}
        req = f"{method} {path} HTTP/1.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
        c.send(req.encode())
        return c.response(head=method == "HEAD")
    finally:
        c.close()


def ws_key():
    return base64.b64encode(os.urandom(16)).decode()


def ws_accept(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def upgrade_request(host, port, key=None, path="/ws", extra=None, drop=()):
    h = {"Host": f"{host}:{port}", "Upgrade": "websocket", "Connection": "Upgrade",
         "Sec-WebSocket-Key": key or ws_key(), "Sec-WebSocket-Version": "13",
         "Sec-WebSocket-Protocol": "chat.v1", **(extra or {})}
    for d in drop:
        h.pop(d, None)
    return (f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items())
            + "\r\n").encode()


def ws_frame(opcode, payload, fin=True, mask=True, rsv=0):
    """One client frame: masked with a random key unless mask=False."""
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        h = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        h = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        h = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return h + payload
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload)) if n < 4096 else \
        (int.from_bytes(payload, "big") ^ int.from_bytes((key * (n // 4 + 1))[:n], "big")
         ).to_bytes(n, "big")
    return h + key + masked


class WSClient(HTTPConn):
    """A WebSocket connection to /ws speaking the chat protocol, one chat
    frame per binary message, with proto.Client's interface."""

    def __init__(self, srv, timeout=DEFAULT_TIMEOUT, extra=None, port=None,
                 tls=None):
        port = port or http_port(srv)
        super().__init__(srv.host, port, timeout, tls)
        key = ws_key()
        self.send(upgrade_request(srv.host, port, key, extra=extra))
        r = self.response()
        assert r.status == 101, f"upgrade refused: {r}"
        assert r.header("sec-websocket-accept") == ws_accept(key), r
        assert r.header("sec-websocket-protocol") == "chat.v1", r
        self.messages = []  # (opcode, payload) of control frames seen

    # -- WebSocket level ---------------------------------------------------
    def send_ws(self, opcode, payload, **kw):
        self.send(ws_frame(opcode, payload, **kw))

    def recv_ws(self, timeout=None):
        """The next frame from the server: (fin, opcode, payload). Server
        frames must be unmasked."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.buf) < 2:
            self._fill(deadline)
        b0, b1 = self.buf[0], self.buf[1]
        assert not b1 & 0x80, "a server frame must not be masked"
        assert not b0 & 0x70, "reserved bits set"
        n, off = b1 & 0x7F, 2
        if n == 126:
            while len(self.buf) < 4:
                self._fill(deadline)
            n, off = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            while len(self.buf) < 10:
                self._fill(deadline)
            n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
        while len(self.buf) < off + n:
            self._fill(deadline)
        payload = bytes(self.buf[off:off + n])
        del self.buf[:off + n]
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def expect_close(self, code, timeout=None):
        """Read until the server's close frame: its code must be `code`;
        answer it, then the server must close the TCP connection."""
        while True:
            fin, op, payload = self.recv_ws(timeout)
            if op == OP_CLOSE:
                got = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                assert got == code, f"close code {got} ({payload[2:]!r}), expected {code}"
                try:
                    self.send_ws(OP_CLOSE, payload[:2])
                except OSError:
                    pass
                self.expect_eof()
                return payload[2:].decode()
            self.messages.append((op, payload))

    # -- chat level (proto.Client's interface) ----------------------------
    def send_raw(self, data):
        self.send_ws(OP_BINARY, data)

    def send_frame(self, sender, receiver, ftype, body=b""):
        self.send_raw(c2s(sender, receiver, ftype, body))

    def send_hello(self, user, flags=0, password=b"", version=1):
        self.send_frame(user, 0, HELLO, hello_body(flags, password, version))

    def hello(self, user, flags=0, password=b""):
        self.send_hello(user, flags, password)
        f = self.read_frame()
        assert f.type == WELCOME, f"expected WELCOME after HELLO, got {f}"
        w = parse_welcome(f.body)
        assert w.user == user
        return w

    def read_frame(self, timeout=None):
        """The next chat frame: one binary message, exactly one s2c frame."""
        while True:
            fin, op, payload = self.recv_ws(timeout)
            if op == OP_BINARY:
                assert fin, "server messages are never fragmented"
                assert len(payload) >= S2C.size
                sender, ftype, n = S2C.unpack(payload[:S2C.size])
                assert len(payload) == S2C.size + n, "one chat frame per message"
                return Frame(sender, ftype, payload[S2C.size:])
            if op == OP_CLOSE:
                raise ConnectionClosed(f"WebSocket close {payload!r}")
            self.messages.append((op, payload))

    def read_error(self, timeout=None):
        f = self.read_frame(timeout)
        assert f.type == ERROR, f"expected ERROR, got {f}"
        return parse_error(f.body)
