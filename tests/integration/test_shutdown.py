"""Graceful shutdown on SIGTERM / SIGINT."""

import signal
import time

from proto import C2S, SHUTDOWN, TEXT, ConnectionClosed


def test_sigterm_with_clients_connected(server):
    idle_hello = server.client()
    idle_hello.hello(2)
    idle_article = server.client()
    idle_article.send_frame(1, 2, TEXT, b"hi")
    assert idle_hello.read_frame().body == b"hi"
    idle_raw = server.client()                    # connected, never sent a byte
    mid_frame = server.client()
    mid_frame.send_raw(C2S.pack(3, 2, TEXT, 10)[:6])   # half a header

    t0 = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)

    # A control-frame client may be told why (ERROR SHUTDOWN); then EOF.
    try:
        assert idle_hello.read_error().code == SHUTDOWN
        idle_hello.expect_eof()
    except ConnectionClosed as e:
        assert e.partial == b""
    for c in (idle_article, idle_raw, mid_frame):
        c.expect_eof()
    for c in (idle_hello, idle_article, idle_raw, mid_frame):
        c.close()

    assert server.wait_exit(timeout=5 - (time.monotonic() - t0)) == 0
    assert "shutting down" in server.log().lower()


def test_sigint_exits_0(server):
    server.client().hello(2)
    assert server.terminate(timeout=5, sig=signal.SIGINT) == 0
    assert "shutting down" in server.log().lower()
