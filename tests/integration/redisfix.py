"""A real redis-server for the cluster tests (docs/CLUSTER.md 6.6), and a
minimal RESP2 client written here (no redis-py on the test machines).

    RedisServer(tmpdir)    start redis-server on a free loopback port with
                           the persistence the cluster requires (AOF,
                           appendfsync always); kill() (SIGKILL), restart()
                           (same directory and port), stop() / cont()
                           (SIGSTOP / SIGCONT), terminate();
                           tls=RedisTLS(cert, key, ca): TLS only (no
                           plain TCP port), clients not asked for a
                           certificate
    Resp(port)             one connection: cmd(*args) -> the reply (tls=
                           an ssl.SSLContext: over TLS)
    Subscriber(port, ...)  a pub/sub connection: get(timeout) -> (channel,
                           data) or None

Replies: simple string -> str, error -> a RespError raised by cmd() (or
returned by read_reply()), integer -> int, bulk -> bytes, nil -> None,
array -> list (nil array -> None). Arguments: bytes as they are, str as
UTF-8, int as decimal.

Fixtures: `redis_server` (one per test module) and `redis_path` (skips the
module, cleanly, only when redis-server is not installed).
"""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections import namedtuple

import pytest

START_DEADLINE = 10.0   # until PING answers PONG (a restart loads the AOF)
PORT_TRIES = 5


class RespError(Exception):
    """An error reply (-ERR ..., -NOSCRIPT ..., -CHATARG ...)."""

    def __init__(self, text):
        super().__init__(text)
        self.text = text


def encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, bool):
            raise TypeError("say 0 or 1, not a bool")
        if isinstance(a, int):
            a = b"%d" % a
        elif isinstance(a, str):
            a = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Resp:
    """One RESP2 connection (blocking, with a timeout per reply)."""

    def __init__(self, port, host="127.0.0.1", timeout=5.0, tls=None):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        if tls is not None:
            # (verified against the CA, the name as the nodes check it)
            self.sock = tls.wrap_socket(self.sock, server_hostname=host)
        self.buf = b""

    def close(self):
        self.sock.close()

    def send(self, *args):
        self.sock.sendall(encode(args))

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("redis closed the connection")
        self.buf += data

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            self._fill()

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def read_reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self.read_reply() for _ in range(n)]
        raise ConnectionError("not RESP2: %r" % line)

    def cmd(self, *args):
        """Send one command and return its reply; an error reply raises."""
        self.send(*args)
        r = self.read_reply()
        if isinstance(r, RespError):
            raise r
        return r


class Subscriber(Resp):
    """A connection in pub/sub mode on the channels given."""

    def __init__(self, port, *channels, host="127.0.0.1", tls=None):
        super().__init__(port, host, tls=tls)
        self.send("SUBSCRIBE", *channels)
        for _ in channels:
            r = self.read_reply()
            assert r[0] == b"subscribe", r

    def get(self, timeout=2.0):
        """The next message as (channel str, data bytes), or None when none
        came within timeout seconds."""
        self.sock.settimeout(timeout)
        try:
            while True:
                r = self.read_reply()
                if r[0] == b"message":
                    return r[1].decode(), r[2]
        except socket.timeout:
            return None
        finally:
            self.sock.settimeout(5.0)

    def drain(self, quiet=0.2):
        """Every message until none comes for `quiet` seconds."""
        out = []
        while True:
            m = self.get(quiet)
            if m is None:
                return out
            out.append(m)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


RedisTLS = namedtuple("RedisTLS", "cert key ca")


class RedisServer:
    """redis-server on 127.0.0.1:port, its data and log in directory (with
    tls: port is its TLS port, and it has no other)."""

    def __init__(self, directory, binary="redis-server", extra=(), tls=None):
        self.dir = str(directory)
        os.makedirs(self.dir, exist_ok=True)
        self.binary = binary
        self.extra = list(extra)
        self.tls = tls
        self.tls_ctx = (ssl.create_default_context(cafile=tls.ca)
                        if tls else None)
        # (a --requirepass in extra: the fixture's own connections AUTH)
        self.password = (self.extra[self.extra.index("--requirepass") + 1]
                         if "--requirepass" in self.extra else None)
        self.log_path = os.path.join(self.dir, "redis.log")
        self.proc = None
        for _ in range(PORT_TRIES):
            self.port = free_port()
            if self._start():
                return
        raise RuntimeError("redis-server found no free port in %d tries:\n%s"
                           % (PORT_TRIES, self.log()))

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def _ports(self):
        if self.tls is None:
            return ["--port", str(self.port)]
        return ["--port", "0", "--tls-port", str(self.port),
                "--tls-cert-file", self.tls.cert, "--tls-key-file",
                self.tls.key, "--tls-ca-cert-file", self.tls.ca,
                "--tls-auth-clients", "no"]

    def _start(self):
        """Start on self.port and wait for PONG: True, or False when the
        port was taken (the log says so)."""
        mark = len(self.log())
        self.proc = subprocess.Popen(
            [self.binary, *self._ports(), "--bind", "127.0.0.1",
             "--dir", self.dir, "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--daemonize", "no",
             "--logfile", self.log_path, *self.extra],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_DEADLINE
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if "Address already in use" in self.log()[mark:]:
                    return False
                raise RuntimeError("redis-server exited (%s):\n%s"
                                   % (self.proc.returncode, self.log()))
            if self._pong():
                return True
            time.sleep(0.01)
        self.proc.kill()
        self.proc.wait()
        raise RuntimeError("redis-server did not answer PONG within %.0f s:\n%s"
                           % (START_DEADLINE, self.log()))

    def _pong(self):
        try:
            c = Resp(self.port, timeout=1.0, tls=self.tls_ctx)
        except OSError:  # (ssl.SSLError too)
            return False
        try:
            if self.password is not None:
                c.cmd("AUTH", self.password)
            return c.cmd("PING") == "PONG"
        except (OSError, RespError):  # LOADING while it reads the AOF
            return False
        finally:
            c.close()

    def client(self):
        c = Resp(self.port, tls=self.tls_ctx)
        if self.password is not None:
            c.cmd("AUTH", self.password)
        return c

    def kill(self):
        """SIGKILL, and wait for the process to go."""
        self.proc.kill()
        self.proc.wait()

    def restart(self):
        """Start again on the same directory and port (after kill or
        terminate); a port taken meanwhile fails with that sentence."""
        if self.proc and self.proc.poll() is None:
            raise RuntimeError("redis-server is still running")
        if not self._start():
            raise RuntimeError("port %d was taken while redis-server was down"
                               % self.port)

    def stop(self):
        self.proc.send_signal(signal.SIGSTOP)

    def cont(self):
        self.proc.send_signal(signal.SIGCONT)

    def terminate(self, timeout=5.0):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGCONT)  # (a stopped one cannot exit)
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def redis_path():
    path = shutil.which("redis-server")
    if not path:
        pytest.skip("redis-server is not installed (Debian package "
                    "redis-server; make deps installs it)")
    return path


@pytest.fixture(scope="module")
def redis_server(redis_path, tmp_path_factory):
    srv = RedisServer(tmp_path_factory.mktemp("redis"), redis_path)
    yield srv
    srv.terminate()
