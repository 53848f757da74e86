"""Wire-protocol helpers for the black-box tests (docs/PROTOCOL.md).

Client -> server frames: 13-byte header "!IIBI" (sender, receiver, type, len).
Server -> client frames: 9-byte header "!IBI" (sender, type, len).
"""

import socket
import struct
import threading
import time
from collections import namedtuple

import pytest

C2S = struct.Struct("!IIBI")
S2C = struct.Struct("!IBI")

TEXT, PICTURE, VOICE, VIDEO = 1, 2, 3, 4
HELLO, WELCOME, ACK, ERROR, PING, PONG = 0x80, 0x81, 0x82, 0x83, 0x84, 0x85

# ERROR codes
TOOBIG, BADTYPE, SPOOF, PROTO, AUTH, NOLOGIN = 1, 2, 3, 4, 5, 6
QUOTA, STORE, RATE, BUSY, SHUTDOWN, BADRCPT, SLOW = 7, 8, 9, 10, 11, 12, 13

DEFAULT_TIMEOUT = 10.0

Frame = namedtuple("Frame", "sender type body")
Welcome = namedtuple("Welcome", "version flags user max_frame")
Error = namedtuple("Error", "code ref reason")


def c2s(sender, receiver, ftype, body=b""):
    """Encode one client -> server frame."""
    return C2S.pack(sender, receiver, ftype, len(body)) + body


def hello_body(flags=0, password=b"", version=1):
    return bytes([version, flags]) + password


def parse_welcome(body):
    assert len(body) == 10, f"WELCOME body must be 10 bytes, got {len(body)}: {body!r}"
    return Welcome(*struct.unpack("!BBII", body))


def parse_error(body):
    assert len(body) >= 10, f"ERROR body must be >= 10 bytes, got {len(body)}: {body!r}"
    code, ref = struct.unpack("!HQ", body[:10])
    reason = body[10:]
    assert len(reason) <= 200, f"ERROR reason over 200 bytes ({len(reason)})"
    return Error(code, ref, reason.decode("utf-8"))


class ConnectionClosed(AssertionError):
    """The server closed the connection while we expected more bytes."""

    def __init__(self, msg, partial=b""):
        super().__init__(msg)
        self.partial = partial


class Client:
    """A test client over a plain blocking socket. Every read has a deadline
    and fails the test instead of hanging."""

    def __init__(self, host, port, timeout=DEFAULT_TIMEOUT, rcvbuf=None, nodelay=False):
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if nodelay:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.local_port = self.sock.getsockname()[1]
        self._buf = bytearray()

    # -- sending ---------------------------------------------------------
    def send_raw(self, data):
        self.sock.sendall(data)

    def send_frame(self, sender, receiver, ftype, body=b""):
        self.sock.sendall(c2s(sender, receiver, ftype, body))

    def send_bytewise(self, data):
        """Send `data` one byte per send() call (use with nodelay=True)."""
        for i in range(len(data)):
            self.sock.sendall(data[i:i + 1])

    def send_hello(self, user, flags=0, password=b"", version=1):
        self.send_frame(user, 0, HELLO, hello_body(flags, password, version))

    def hello(self, user, flags=0, password=b""):
        """Bind to `user` with HELLO; return the parsed WELCOME."""
        self.send_hello(user, flags, password)
        f = self.read_frame()
        assert f.type == WELCOME, f"expected WELCOME after HELLO, got {f}"
        assert f.sender == 0, f"WELCOME sender must be 0, got {f.sender}"
        w = parse_welcome(f.body)
        assert w.version == 1 and w.user == user, f"unexpected WELCOME {w}"
        return w

    # -- receiving -------------------------------------------------------
    def _fill(self, n, deadline, what):
        while len(self._buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"timed out waiting for {what}: have {len(self._buf)}/{n} bytes")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                continue
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                partial = bytes(self._buf)
                raise ConnectionClosed(
                    f"connection closed while waiting for {what} "
                    f"({len(partial)}/{n} bytes received)", partial)
            self._buf += chunk

    def _take(self, n):
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def read_frame(self, timeout=None):
        """Read exactly one server -> client frame."""
        deadline = time.monotonic() + (timeout or self.timeout)
        self._fill(S2C.size, deadline, "a frame header")
        sender, ftype, length = S2C.unpack(bytes(self._buf[:S2C.size]))
        self._fill(S2C.size + length, deadline,
                   f"a {length}-byte body (sender={sender} type={ftype:#x})")
        self._take(S2C.size)
        return Frame(sender, ftype, self._take(length))

    def read_error(self, timeout=None):
        """Read one frame, assert it is an ERROR from the server, parse it."""
        f = self.read_frame(timeout)
        assert f.type == ERROR, f"expected an ERROR frame, got {f.type:#x} {f.body[:80]!r}"
        assert f.sender == 0, f"ERROR sender must be 0, got {f.sender}"
        return parse_error(f.body)

    def expect_no_frame(self, within=0.3):
        """Assert nothing arrives within `within` s and the connection stays open.
        (Short timeouts are only used to assert absence.)"""
        assert not self._buf, f"unexpected buffered data {bytes(self._buf[:64])!r}"
        self.sock.settimeout(within)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return
        except ConnectionResetError:
            data = b""
        finally:
            self.sock.settimeout(self.timeout)
        if data:
            pytest.fail(f"expected no data within {within}s, got {data[:64]!r}")
        pytest.fail("expected the connection to stay open, but the server closed it")

    def expect_eof(self, timeout=5.0):
        """Assert the server closes the connection without sending anything more."""
        assert not self._buf, f"expected EOF, have buffered data {bytes(self._buf[:64])!r}"
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"server did not close the connection within {timeout}s")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                return
            if not data:
                return
            pytest.fail(f"expected EOF, got data {data[:64]!r}")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Sender(threading.Thread):
    """sendall() `data` on `client` in a background thread, so a test can read
    concurrently; join with `finish()`, which fails if it did not complete."""

    def __init__(self, client, data, timeout=DEFAULT_TIMEOUT):
        super().__init__(daemon=True)
        self.client, self.data, self.exc = client, data, None
        self.timeout = timeout
        self.start()

    def run(self):
        # A dup'ed socket has its own timeout, independent of the reader's.
        try:
            with self.client.sock.dup() as s:
                s.settimeout(self.timeout)
                s.sendall(self.data)
        except BaseException as e:  # reported by finish()
            self.exc = e

    def finish(self, timeout=DEFAULT_TIMEOUT):
        self.join(timeout)
        assert not self.is_alive(), f"sendall of {len(self.data)} bytes still blocked after {timeout}s"
        if self.exc is not None:
            raise AssertionError(f"sendall failed: {self.exc!r}") from self.exc


# -- acknowledgements (store tests) ----------------------------------------

ACKS_FLAG = 0x01
DATA_TYPES = (TEXT, PICTURE, VOICE, VIDEO)

AckResult = namedtuple("AckResult", "count errors frames")


def ack_body(count):
    return struct.pack("!Q", count)


def parse_ack(body):
    assert len(body) == 8, f"ACK body must be 8 bytes, got {len(body)}: {body!r}"
    return struct.unpack("!Q", body)[0]


def send_ack(client, user, count):
    """Client -> server ACK: `count` data frames received on this connection."""
    client.send_frame(user, 0, ACK, ack_body(count))


def wait_for_ack(client, count, sent=None, timeout=DEFAULT_TIMEOUT):
    """Read server frames on an opted-in sender's connection until an ACK
    covers `count` frames. Checks that ACKs come from the server, never go
    down and never count more than `sent` (default `count`) frames.
    Returns AckResult(count, errors, frames): errors as (Error, ack count
    when the ERROR arrived), frames = other frames seen meanwhile."""
    sent = count if sent is None else sent
    have = getattr(client, "ack_count", 0)
    errors, frames = [], []
    deadline = time.monotonic() + timeout
    while have < count:
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"no ACK covering {count} frames within {timeout}s "
                        f"(last ACK: {have}; errors: {errors})")
        f = client.read_frame(timeout=left)
        if f.type == ACK:
            assert f.sender == 0, f"ACK sender must be 0, got {f.sender}"
            n = parse_ack(f.body)
            assert n >= have, f"ACK count went down: {have} -> {n}"
            assert n <= sent, f"ACK of {n} frames, only {sent} were sent"
            have = client.ack_count = n
        elif f.type == ERROR:
            assert f.sender == 0, f"ERROR sender must be 0, got {f.sender}"
            errors.append((parse_error(f.body), have))
        else:
            frames.append(f)
    return AckResult(have, errors, frames)


def read_data(client, n, timeout=DEFAULT_TIMEOUT):
    """Read exactly `n` frames, each a data frame (types 1-4)."""
    deadline = time.monotonic() + timeout
    out = []
    for i in range(n):
        left = max(deadline - time.monotonic(), 0.001)
        f = client.read_frame(timeout=left)
        assert f.type in DATA_TYPES, \
            f"frame {i + 1}/{n}: expected a data frame, got type {f.type:#x} {f.body[:80]!r}"
        out.append(f)
    return out


def ping_sync(client, user, token=b"sync"):
    """PING and wait for its PONG: every frame this client sent before has
    been handled by the server (frames on one connection are handled in
    order). Data frames that arrive meanwhile are returned."""
    client.send_frame(user, 0, PING, token)
    got = []
    while True:
        f = client.read_frame()
        if f.type == PONG:
            assert f.body == token, f"PONG {f.body!r} does not answer PING {token!r}"
            return got
        assert f.type in DATA_TYPES, f"expected PONG, got type {f.type:#x} {f.body[:80]!r}"
        got.append(f)
