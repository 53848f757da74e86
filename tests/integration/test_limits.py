"""Bounds on what a connection may hold or cost (docs/OPERATIONS.md,
"Flags and limits"): the idle timeout with PING keepalive."""

import time

from proto import PING, PONG, TEXT, WELCOME, read_data


def test_silent_control_client_is_pinged_then_closed(start_server):
    srv = start_server("--idle-timeout", "1s")
    c = srv.client()
    c.send_hello(1)
    assert c.read_frame().type == WELCOME
    t0 = time.monotonic()
    f = c.read_frame(timeout=5)
    assert f.type == PING, f  # after about half the timeout
    pinged = time.monotonic() - t0
    assert 0.4 <= pinged <= 1.0, pinged
    c.expect_eof(timeout=5)  # never answered
    assert time.monotonic() - t0 >= 0.95
    srv.wait_for_log("no answer to PING")


def test_client_that_answers_pings_stays(start_server):
    srv = start_server("--idle-timeout", "1s")
    c = srv.client()
    c.send_hello(1)
    assert c.read_frame().type == WELCOME
    for _ in range(3):  # 3 PINGs: 1.5 s or more, past the timeout
        f = c.read_frame(timeout=5)
        assert f.type == PING
        c.send_frame(1, 0, PONG, f.body)
    other = srv.client()
    other.send_frame(2, 1, TEXT, b"still connected")
    assert read_data(c, 1)[0].body == b"still connected"


def test_article_style_client_is_not_closed_for_silence(start_server):
    """A client that never speaks control frames cannot answer a PING: it is
    left to TCP keepalive, not closed for being quiet."""
    srv = start_server("--idle-timeout", "400ms")
    c = srv.client()
    c.send_frame(1, 1, TEXT, b"bind")  # routed to itself
    assert read_data(c, 1)[0].body == b"bind"
    c.expect_no_frame(within=1.5)  # nearly 4 timeouts, no PING, no close
    other = srv.client()
    other.send_frame(2, 1, TEXT, b"hi")
    assert read_data(c, 1)[0].body == b"hi"
