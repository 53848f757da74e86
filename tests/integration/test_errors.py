"""Refused frames: spoofing, oversize, unknown types, garbage, bad control frames."""

import random

import pytest

from proto import (BADRCPT, BADTYPE, C2S, ERROR, HELLO, PICTURE, PING, PONG,
                   PROTO, SPOOF, TEXT, TOOBIG, ConnectionClosed, c2s,
                   parse_error)


def hello_pair(server, receiver=2, sender=5):
    """A receiver and a sender, both bound with HELLO."""
    b = server.client()
    b.hello(receiver)
    c = server.client()
    c.hello(sender)
    return b, c


# -- spoofed sender ------------------------------------------------------

def test_spoofed_frame_gets_error_and_is_not_delivered(server):
    b, c = hello_pair(server)
    c.send_frame(6, 2, TEXT, b"spoofed")
    err = c.read_error()
    assert (err.code, err.ref) == (SPOOF, 1) and err.reason
    c.send_frame(5, 2, TEXT, b"genuine")
    assert b.read_frame() == (5, TEXT, b"genuine")   # and not the spoofed one


def test_spoofing_is_logged_once_per_connection(server):
    b, c = hello_pair(server)
    c.send_raw(b"".join(c2s(6, 2, TEXT, b"spoof %d" % i) for i in range(5)))
    errors = [c.read_error() for _ in range(5)]
    assert [(e.code, e.ref) for e in errors] == [(SPOOF, i) for i in range(1, 6)]
    c.send_frame(5, 2, TEXT, b"genuine")
    assert b.read_frame() == (5, TEXT, b"genuine")
    server.wait_for_log("spoofed sender")
    lines = server.log_lines("spoofed sender")
    assert len(lines) == 1, "\n".join(lines)
    assert f"peer=127.0.0.1:{c.local_port}" in lines[0]


def test_article_client_spoofing_gets_nothing_and_stays_usable(server):
    b = server.client()
    b.hello(2)
    a = server.client()
    a.send_frame(1, 2, TEXT, b"first")            # binds A to user 1
    assert b.read_frame() == (1, TEXT, b"first")
    a.send_frame(6, 2, TEXT, b"spoofed")
    a.expect_no_frame()                           # no ERROR to an article client
    a.send_frame(1, 2, TEXT, b"after")
    assert b.read_frame() == (1, TEXT, b"after")  # the spoofed one was dropped
    server.wait_for_log("spoofed sender")


# -- oversize ------------------------------------------------------------

def test_oversize_header_gets_toobig_and_close(start_server):
    server = start_server("--max-frame", "1024")
    b = server.client()
    assert b.hello(2).max_frame == 1024
    a = server.client()
    a.send_frame(1, 2, PICTURE, bytes(1024))      # exactly the limit is fine
    assert b.read_frame() == (1, PICTURE, bytes(1024))

    c = server.client()
    c.hello(5)
    c.send_raw(C2S.pack(5, 2, PICTURE, 1025))     # header only
    assert c.read_error().code == TOOBIG
    c.expect_eof()

    a.send_frame(1, 2, TEXT, b"still flowing")
    assert b.read_frame() == (1, TEXT, b"still flowing")
    server.wait_for_log("frame too large")


def test_4_gib_header_from_article_client_closes_it(server):
    b = server.client()
    b.hello(2)
    a = server.client()
    a.send_frame(1, 2, TEXT, b"before")
    assert b.read_frame().body == b"before"

    x = server.client()
    x.send_raw(C2S.pack(7, 2, PICTURE, 0xFFFFFFFF))
    x.expect_eof()                                # nothing sent, just closed
    server.wait_for_log("frame too large")

    assert server.alive()
    a.send_frame(1, 2, TEXT, b"after")
    assert b.read_frame().body == b"after"
    server.client().hello(8)                      # still accepting


# -- unknown types -------------------------------------------------------

@pytest.mark.parametrize("ftype", [0, 5, 9, 0x7F, 0x81, 0x83, 0x86, 0x90, 0xFF])
def test_unknown_type_gets_badtype_and_its_body_is_skipped(server, ftype):
    b, c = hello_pair(server)
    c.send_raw(c2s(5, 2, ftype, bytes(range(100))) + c2s(5, 2, TEXT, b"right after"))
    err = c.read_error()
    assert (err.code, err.ref) == (BADTYPE, 0)
    assert b.read_frame() == (5, TEXT, b"right after")
    c.send_frame(5, 2, TEXT, b"still connected")
    assert b.read_frame() == (5, TEXT, b"still connected")


def test_article_client_gets_no_control_frame_for_unknown_type(server):
    b = server.client()
    b.hello(2)
    a = server.client()
    a.send_raw(c2s(1, 2, TEXT, b"one") + c2s(1, 2, 9, b"x" * 100) + c2s(1, 2, TEXT, b"two"))
    assert b.read_frame().body == b"one"
    assert b.read_frame().body == b"two"
    a.expect_no_frame()                           # no ERROR, still connected
    server.wait_for_log("unknown frame type")


# -- garbage -------------------------------------------------------------

def assert_server_still_serves(server):
    assert server.alive()
    q = server.client()
    q.hello(31)
    p = server.client()
    p.send_frame(30, 31, TEXT, b"still serving")
    assert q.read_frame() == (30, TEXT, b"still serving")


@pytest.mark.parametrize("speaks_control", [True, False], ids=["hello", "article"])
def test_random_garbage_closes_the_connection_not_the_server(server, speaks_control):
    b = server.client()
    b.hello(2)
    g = server.client()
    if speaks_control:
        g.hello(1)
    g.send_frame(1, 2, TEXT, b"valid first")
    assert b.read_frame().body == b"valid first"

    garbage = random.Random(12).randbytes(64 * 1024)
    assert C2S.unpack(garbage[:13])[3] > 16 * 1024 * 1024   # seed: an oversize header
    try:
        g.send_raw(garbage)
    except (BrokenPipeError, ConnectionResetError):
        pass                                      # closed already: fine
    got = []
    with pytest.raises(ConnectionClosed):         # eventually closed
        while True:
            got.append(g.read_frame())
    if speaks_control:
        assert all(f.type == ERROR and f.sender == 0 for f in got), got
    else:
        assert got == []
    assert_server_still_serves(server)


def test_fuzzed_frames_never_crash_the_server(server):
    rng = random.Random(1234)
    g = server.client()
    g.hello(1)
    frames = []
    for _ in range(500):
        ftype = rng.choice([TEXT, PICTURE, 3, 4, HELLO, PING, 0x82, rng.randrange(256)])
        sender = rng.choice([1, 1, 1, 0, 6, 0xFFFFFFFF])
        receiver = rng.choice([0, 2, 3, 4, 5, 6])
        frames.append(c2s(sender, receiver, ftype, rng.randbytes(rng.randrange(100))))
    frames.append(c2s(1, 0, PING, b"end"))
    try:
        g.send_raw(b"".join(frames))
    except (BrokenPipeError, ConnectionResetError):
        pass
    # Read until the final PONG, or until the server closes the connection.
    try:
        while g.read_frame() != (0, PONG, b"end"):
            pass
    except ConnectionClosed:
        pass
    assert_server_still_serves(server)


# -- control frames ------------------------------------------------------

def test_ping_gets_pong_with_same_body(server):
    c = server.client()
    c.hello(5)
    c.send_frame(5, 0, PING, bytes(range(10)))
    assert c.read_frame() == (0, PONG, bytes(range(10)))
    c.send_frame(5, 0, PING, b"\xab" * 64)        # 64 bytes: the maximum
    assert c.read_frame() == (0, PONG, b"\xab" * 64)


def test_ping_over_64_bytes_gets_proto_and_close(server):
    c = server.client()
    c.hello(5)
    c.send_frame(5, 0, PING, bytes(65))
    assert c.read_error().code == PROTO
    c.expect_eof()


def test_receiver_0_gets_badrcpt_and_connection_stays(server):
    b, c = hello_pair(server)
    c.send_frame(5, 0, TEXT, b"to nobody")
    err = c.read_error()
    assert (err.code, err.ref) == (BADRCPT, 1)
    c.send_frame(5, 2, TEXT, b"to somebody")
    assert b.read_frame() == (5, TEXT, b"to somebody")


def test_hello_as_user_0_gets_proto_and_close(server):
    c = server.client()
    c.send_hello(0)
    assert c.read_error().code == PROTO
    c.expect_eof()


def test_article_client_binding_to_user_0_is_closed(server):
    a = server.client()
    a.send_frame(0, 2, TEXT, b"from the server?")
    a.expect_eof()


@pytest.mark.parametrize("body", [b"", b"\x01", b"\x02\x00"], ids=["empty", "short", "version2"])
def test_malformed_hello_gets_proto_and_close(server, body):
    c = server.client()
    c.send_frame(5, 0, HELLO, body)
    assert c.read_error().code == PROTO
    c.expect_eof()


def test_late_hello_gets_proto_and_is_ignored(server):
    b, c = hello_pair(server)
    c.send_hello(6)                               # tries to rebind: refused
    assert c.read_error().code == PROTO
    c.send_frame(5, 2, TEXT, b"still user 5")
    assert b.read_frame() == (5, TEXT, b"still user 5")
