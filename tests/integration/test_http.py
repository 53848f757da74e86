"""The HTTP listener (docs/OPERATIONS.md "HTTP, WebSocket and metrics"):
statuses, keep-alive, bounds, slow clients, /healthz, protected mode.
/metrics has tests of its own (test_metrics.py), WebSocket too (test_ws.py).
"""

import re
import subprocess

import pytest

from conftest import require_binary
from proto import TEXT, wait_for_ack
from test_store import faults_binary, acked_sender  # noqa: F401 (fixture)
from wsproto import HTTPConn, get, http_port


@pytest.fixture
def web(start_server):
    return start_server("--http-port", "auto")


def req(path, method="GET", version="1.1", extra=""):
    return (f"{method} {path} HTTP/{version}\r\nHost: x\r\n{extra}\r\n").encode()


def test_http_is_off_by_default(server):
    assert not server.log_lines("(http:")


def test_web_client_is_served(web):
    r = get(web, "/")
    assert r.status == 200, r
    assert r.header("content-type") == "text/html; charset=utf-8"
    assert b"<html" in r.body.lower()
    assert r.header("x-content-type-options") == "nosniff"
    assert r.header("cache-control") == "no-cache"
    assert "default-src 'self'" in r.header("content-security-policy")
    h = get(web, "/", method="HEAD")
    assert h.status == 200 and h.body == b""
    assert h.header("content-length") == str(len(r.body))
    assert get(web, "/index.html").body == r.body


def test_statuses(web):
    assert get(web, "/no-such-page").status == 404
    r = get(web, "/", method="POST")
    assert r.status == 405 and r.header("allow") == "GET, HEAD"
    r = get(web, "/ws", method="PUT")
    assert r.status == 405 and r.header("allow") == "GET"
    r = get(web, "/ws")  # no Upgrade
    assert r.status == 426 and r.header("upgrade") == "websocket"
    port = http_port(web)

    def one(raw):
        c = HTTPConn(web.host, port)
        c.send(raw)
        r = c.response()
        assert r.header("connection") == "close", r
        c.expect_eof()
        c.close()
        return r.status

    assert one(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n") == 400
    assert one(b"GET /\r\n\r\n") == 400
    assert one(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n") == 505
    assert one(b"GET / HTTP/1.1\r\n\r\n") == 400  # no Host
    assert one(req("/", extra="Content-Length: 5\r\n") + b"hello") == 413
    assert one(req("/", extra="Transfer-Encoding: chunked\r\n")) == 413
    assert one(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n") == 414
    assert one(req("/", extra="".join(f"X-{i}: {'v' * 100}\r\n"
                                      for i in range(40)))) == 431
    assert one(req("/", extra="".join(f"X-{i}: v\r\n" for i in range(33)))) == 431
    assert web.log_lines("HTTP 413: this server takes no request bodies")


def test_keep_alive_and_pipelining(web):
    c = HTTPConn(web.host, http_port(web))
    c.send(req("/healthz"))
    assert c.response().status == 200
    c.send(req("/healthz"))  # the same connection, again
    assert c.response().status == 200
    c.send(req("/healthz") + req("/", method="HEAD") + req("/nope"))
    a, b, n = c.response(), c.response(head=True), c.response()
    assert (a.status, b.status, n.status) == (200, 200, 404)
    c.expect_eof()  # 404 closes
    c.close()
    # HTTP/1.0 closes after the response unless it asks to keep alive.
    c = HTTPConn(web.host, http_port(web))
    c.send(req("/healthz", version="1.0"))
    assert c.response().status == 200
    c.expect_eof()
    c.close()
    c = HTTPConn(web.host, http_port(web))
    c.send(req("/healthz", extra="Connection: close\r\n"))
    assert c.response().status == 200
    c.expect_eof()
    c.close()


def test_slow_and_silent_clients_are_closed(start_server):
    srv = start_server("--http-port", "auto", "--login-timeout", "1s")
    port = http_port(srv)
    silent = HTTPConn(srv.host, port)
    slow = HTTPConn(srv.host, port)
    slow.send(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never finished
    idle = HTTPConn(srv.host, port)
    idle.send(req("/healthz"))
    assert idle.response().status == 200  # then nothing more
    r = slow.response(timeout=10)
    assert r.status == 408, r
    slow.expect_eof()
    silent.expect_eof(timeout=10)
    idle.expect_eof(timeout=10)
    assert srv.log_lines("no whole HTTP request within 1000 ms")
    # Meanwhile and after, others are served.
    assert get(srv, "/healthz").status == 200


def test_healthz_turns_503_when_the_disk_is_full(faults_binary, start_store_server,
                                                 tmp_path):
    fault = tmp_path / "diskfull"
    s = start_store_server("--http-port", "auto",
                           env={"CHAT_FAULT_DISKFULL": str(fault)})
    r = get(s, "/healthz")
    assert (r.status, r.body) == (200, b'{"status":"ok"}\n')
    assert r.header("content-type") == "application/json"
    a = acked_sender(s)
    fault.touch()
    a.send_frame(1, 3, TEXT, b"for an offline user")
    wait_for_ack(a, 1)  # answered (with an ERROR STORE): the write failed
    r = get(s, "/healthz")
    assert r.status == 503, r
    assert re.fullmatch(rb'\{"status":"unavailable","reason":"the store cannot '
                        rb'write: [^"]+"\}\n', r.body), r.body
    fault.unlink()
    a.send_frame(1, 3, TEXT, b"again")
    wait_for_ack(a, 2)
    assert get(s, "/healthz").status == 200


def test_http_flags_are_checked(tmp_path):
    binary = require_binary()

    def run(*args):
        return subprocess.run([binary, "--data-dir", str(tmp_path / "d"), *args],
                              capture_output=True, text=True, timeout=10)
    r = run("--http-port", "http")
    assert r.returncode == 2 and "--http-port: 'http' is not a port number" in r.stderr
    r = run("--https-port", "8443")
    assert r.returncode == 2 and "--https-port: needs --tls-cert and --tls-key" in r.stderr
    r = run("--port", "9000", "--http-port", "9000")
    assert r.returncode == 2 and "--http-port: 9000 is also --port" in r.stderr
    r = run("--help")
    for flag in ("--http-port", "--https-port", "--http-allow-origin"):
        assert flag in r.stdout


def test_pipelining_without_reading_is_bounded(start_server):
    """A client that pipelines requests and never reads the answers is
    closed once more than --max-outbuf bytes of them wait (a log line says
    so); the server keeps serving others."""
    import socket
    srv = start_server("--http-port", "auto", "--max-frame", "1K",
                       "--max-outbuf", "70K", "--rate-bytes", "0",
                       "--rate-msgs", "0")
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)  # (a send that never ends fails the test)
    s.connect((srv.host, http_port(srv)))
    from conftest import flood
    flood(srv, s.sendall, req("/") * 1000,
          "HTTP requests while its answers pile up unread (over 71680 "
          "bytes, --max-outbuf); closing")
    s.close()
    assert get(srv, "/healthz").status == 200
