"""Security: logins (--auth on), protected mode, connection limits, rate
limits. Each test checks a sentence of docs/OPERATIONS.md, "Security".

Accounts are made with `chat-server user add` on the server's data dir
before it starts (the password comes from standard input).
"""

import re
import subprocess
import time

import pytest

from conftest import require_binary
from proto import (ACK, ACKS_FLAG, AUTH, BUSY, ERROR, HELLO, NOLOGIN, PING,
                   PONG, PROTO, RATE, SPOOF, TEXT, WELCOME, Client,
                   ConnectionClosed, c2s, hello_body, parse_error,
                   parse_welcome, read_data, wait_for_ack)


def add_user(data_dir, uid, password):
    r = subprocess.run([require_binary(), "user", "--data-dir", str(data_dir),
                        "add", str(uid)], input=password + "\n",
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr


@pytest.fixture
def auth_server(start_store_server, store_dir):
    """A server with --auth on and accounts 1 (pw one), 2 (pw two)."""
    store_dir.mkdir(parents=True, exist_ok=True)
    add_user(store_dir, 1, "one")
    add_user(store_dir, 2, "two")

    def start(*args):
        return start_store_server("--auth", "on", *args)
    return start


def login(srv, uid, password, flags=0):
    c = srv.client()
    c.send_hello(uid, flags=flags, password=password.encode())
    f = c.read_frame()
    assert f.type == WELCOME, f"expected WELCOME, got {f.type:#x} {f.body!r}"
    assert parse_welcome(f.body).user == uid
    return c


def expect_error_then_eof(c, code, timeout=10.0):
    f = c.read_frame(timeout=timeout)
    assert f.type == ERROR, f"expected ERROR {code}, got {f.type:#x} {f.body!r}"
    e = parse_error(f.body)
    assert e.code == code, e
    c.expect_eof()
    return e


# -- logins ------------------------------------------------------------------

def test_login_then_route_between_two_accounts(auth_server):
    srv = auth_server()
    a = login(srv, 1, "one")
    b = login(srv, 2, "two")
    a.send_frame(1, 2, TEXT, b"hello two")
    f = read_data(b, 1)[0]
    assert (f.sender, f.body) == (1, b"hello two")
    assert srv.log_lines("logged in")


@pytest.mark.parametrize("uid,password", [(1, "wrong"), (99, "one")],
                         ids=["wrong-password", "no-such-account"])
def test_failed_login_answers_auth_after_a_fixed_delay_then_closes(
        auth_server, uid, password):
    srv = auth_server()
    c = srv.client()
    t0 = time.monotonic()
    c.send_hello(uid, password=password.encode())
    e = expect_error_then_eof(c, AUTH)
    waited = time.monotonic() - t0
    # The same answer, after the same delay, whether or not the id exists.
    assert e.reason == "wrong user id or password"
    assert waited >= 0.95, f"answered after {waited:.2f}s, delay is 1 s"
    assert srv.log_lines("login failed")


def test_frame_before_login_closes(auth_server):
    srv = auth_server()
    b = login(srv, 2, "two")
    c = srv.client()
    c.send_frame(1, 2, TEXT, b"no login")  # the article's client does this
    e = expect_error_then_eof(c, NOLOGIN)
    assert "log in first" in e.reason
    b.expect_no_frame()
    for t in (PING, ACK):  # control frames other than HELLO too
        c = srv.client()
        c.send_frame(1, 0, t, b"" if t == PING else bytes(8))
        expect_error_then_eof(c, NOLOGIN)


def test_hello_without_password_is_refused(auth_server):
    srv = auth_server()
    c = srv.client()
    c.send_hello(1)
    e = expect_error_then_eof(c, AUTH)
    assert "password" in e.reason


def test_oversized_first_frame_before_login_closes(auth_server):
    srv = auth_server()
    c = srv.client()
    c.send_raw(c2s(1, 0, HELLO, hello_body(password=b"x" * 2000)))
    expect_error_then_eof(c, PROTO)


def test_frames_pipelined_after_a_failed_login_are_never_delivered(auth_server):
    srv = auth_server()
    b = login(srv, 2, "two")
    c = srv.client()
    c.send_raw(c2s(1, 0, HELLO, hello_body(password=b"guess")) +
               b"".join(c2s(1, 2, TEXT, b"sneak %d" % i) for i in range(50)))
    expect_error_then_eof(c, AUTH)
    b.expect_no_frame()


def test_frames_pipelined_after_a_good_login_are_delivered_in_order(auth_server):
    srv = auth_server()
    b = login(srv, 2, "two")
    c = srv.client()
    c.send_raw(c2s(1, 0, HELLO, hello_body(password=b"one")) +
               b"".join(c2s(1, 2, TEXT, b"m%d" % i) for i in range(50)))
    assert c.read_frame().type == WELCOME
    got = read_data(b, 50)
    assert [f.body for f in got] == [b"m%d" % i for i in range(50)]


def test_logged_in_as_one_cannot_send_as_another(auth_server):
    srv = auth_server()
    a = login(srv, 1, "one")
    b = login(srv, 2, "two")
    a.send_frame(2, 1, TEXT, b"forged")  # claims to be user 2
    f = a.read_frame()
    assert f.type == ERROR and parse_error(f.body).code == SPOOF
    b.expect_no_frame()
    a.send_frame(1, 2, TEXT, b"honest")
    assert read_data(b, 1)[0].body == b"honest"


def test_stored_messages_never_reach_an_impostor(auth_server):
    srv = auth_server()
    a = login(srv, 1, "one", flags=ACKS_FLAG)
    for i in range(20):
        a.send_frame(1, 2, TEXT, b"secret %d" % i)
    wait_for_ack(a, 20)  # stored for the absent user 2
    for pw in ("one", "", "tw", "two2"):
        imp = srv.client()
        imp.send_hello(2, password=pw.encode())
        f = imp.read_frame(timeout=10)
        assert f.type == ERROR, f"impostor got {f.type:#x} {f.body[:40]!r}"
        assert parse_error(f.body).code == AUTH
        imp.expect_eof()
    # Without a login at all, claiming id 2 by its first frame:
    imp = srv.client()
    imp.send_frame(2, 2, TEXT, b"hi")
    expect_error_then_eof(imp, NOLOGIN)
    b = login(srv, 2, "two")
    got = read_data(b, 20)
    assert [f.body for f in got] == [b"secret %d" % i for i in range(20)]


def test_no_login_within_the_timeout_closes(auth_server):
    srv = auth_server("--login-timeout", "300ms")
    quiet = srv.client()
    t0 = time.monotonic()
    quiet.expect_eof(timeout=5)
    assert time.monotonic() - t0 >= 0.25
    srv.wait_for_log("not logged in within 300 ms")
    # A half-sent HELLO does not stop the clock either.
    half = srv.client()
    half.send_raw(c2s(1, 0, HELLO, hello_body(password=b"one"))[:7])
    half.expect_eof(timeout=5)
    # One that logs in in time stays.
    a = login(srv, 1, "one")
    time.sleep(0.5)  # past the login timeout (nothing to await: it must not happen)
    a.send_frame(1, 0, PING, b"still here")
    assert a.read_frame().type == PONG


def test_first_frame_timeout_without_auth(start_server):
    srv = start_server("--login-timeout", "300ms")
    quiet = srv.client()
    quiet.expect_eof(timeout=5)
    srv.wait_for_log("no first frame within 300 ms")
    c = srv.client()
    c.send_frame(5, 6, TEXT, b"bound")
    c.expect_no_frame(within=0.5)  # bound: the timeout no longer applies
    c.send_frame(5, 0, PING, b"x")
    assert c.read_frame().type == PONG


# -- protected mode ----------------------------------------------------------

@pytest.mark.parametrize("bind", ["0.0.0.0", "::", "10.1.2.3"])
def test_protected_mode_refuses_to_start_on_a_public_address(tmp_path, bind):
    r = subprocess.run([require_binary(), "--bind", bind, "--port", "0",
                        "--data-dir", str(tmp_path / "d")],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2
    msg = r.stderr.strip()
    assert msg.count("\n") == 0, msg
    assert f"--bind {bind}" in msg and "--auth on" in msg and \
        "--insecure-open" in msg, msg
    assert not (tmp_path / "d").exists()  # refused before touching anything


def test_make_run_defaults_are_loopback_only(start_server):
    srv = start_server()
    assert srv.host == "127.0.0.1"
    assert srv.log_lines("protected mode")


# -- connection limits --------------------------------------------------------

def test_max_connections_refuses_with_busy_and_recovers(start_server):
    srv = start_server("--max-connections", "3")
    held = [srv.client() for _ in range(3)]
    for i, c in enumerate(held):
        c.send_hello(10 + i)
        assert c.read_frame().type == WELCOME
    extra = srv.client()
    e = expect_error_then_eof(extra, BUSY)
    assert "server full" in e.reason and "--max-connections" in e.reason
    assert srv.log_lines("connection refused: server full")
    # A flood of refusals logs at most one line a second, then the count.
    for _ in range(10):
        expect_error_then_eof(srv.client(), BUSY)
    assert len(srv.log_lines("connection refused")) <= 2
    time.sleep(1.05)  # the log window is one second of wall time
    expect_error_then_eof(srv.client(), BUSY)
    srv.wait_for_log(re.compile(r"and \d+ more refusals not logged"))
    # The held ones keep working; once one leaves, a newcomer gets in.
    held[0].send_frame(10, 11, TEXT, b"still fine")
    assert read_data(held[1], 1)[0].body == b"still fine"
    held[0].close()
    deadline = time.monotonic() + 5
    while True:
        c = srv.client()
        c.send_hello(20)
        f = c.read_frame()
        if f.type == WELCOME:
            break
        assert f.type == ERROR and parse_error(f.body).code == BUSY
        assert time.monotonic() < deadline, "no room after a client left"
        c.close()


# -- rate limits -------------------------------------------------------------

def test_rate_limit_pauses_then_closes_a_flooder_others_unaffected(start_server):
    srv = start_server("--rate-msgs", "200", "--rate-grace", "1500ms")
    a = srv.client()
    a.send_hello(1)
    assert a.read_frame().type == WELCOME
    b = srv.client()
    b.send_hello(2)
    assert b.read_frame().type == WELCOME
    x = srv.client()
    x.send_hello(3)
    assert x.read_frame().type == WELCOME
    y = srv.client()
    y.send_hello(4)
    assert y.read_frame().type == WELCOME
    # Frames far over the burst of one second (200): warned, paused...
    flood = b"".join(c2s(1, 2, TEXT, b"f") for _ in range(2000))
    t0 = time.monotonic()
    a.sock.settimeout(10)
    try:
        a.sock.sendall(flood)
        while True:  # keep the pressure on until the server closes us
            a.sock.sendall(flood)
    except OSError:
        pass
    # ...while others route as usual
    x.send_frame(3, 4, TEXT, b"unaffected")
    assert read_data(y, 1)[0].body == b"unaffected"
    errors = []
    while True:
        try:
            f = a.read_frame(timeout=10)
        except ConnectionClosed:
            break
        if f.type == ERROR:
            errors.append(parse_error(f.body))
    closed_after = time.monotonic() - t0
    assert [e.code for e in errors] == [RATE, RATE], errors
    assert "reading paused" in errors[0].reason
    assert "closing" in errors[1].reason
    assert closed_after >= 1.4, f"closed after {closed_after:.2f}s, grace 1.5s"
    # User 2 got at most what the rate allowed: the burst, the rate over the
    # time, and one read (64 KiB) charged after it was parsed.
    x.send_frame(3, 2, TEXT, b"end")  # after everything the flooder sent
    got = []
    while True:
        f = b.read_frame()
        if f.sender == 3:
            break
        got.append(f)
    assert 0 < len(got) <= 200 + 200 * closed_after + 65536 // 14, len(got)
    assert srv.log_lines("over the rate limit")


def test_under_the_rate_nothing_happens(start_server):
    srv = start_server("--rate-msgs", "1000")
    b = srv.client()
    b.send_hello(2)
    assert b.read_frame().type == WELCOME
    a = srv.client()
    for i in range(10):
        a.send_raw(b"".join(c2s(1, 2, TEXT, b"%d" % (i * 50 + k))
                            for k in range(50)))
        time.sleep(0.1)  # pacing: 500 frames/s, half the limit
    got = read_data(b, 500)
    assert [f.body for f in got] == [b"%d" % n for n in range(500)]
    assert not srv.log_lines("rate limit")
