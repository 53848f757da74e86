"""chat-client and signals (docs/PROTOCOL.md "Receipts, typing and
presence", the SIGNALS flag), black-box against the real server: `listen
--signals` and `--presence ID` printing receipts, typing and presence as
their own JSON lines, `read`, `receipts`, `typing`, ERROR DENIED, and the
interactive mode's ticks (exact: by the ids POSTED gives), "is typing"
lines, TYPING and READ.

The tests marked by the `signals_server` fixture need a server that grants
SIGNALS; they fail at once, saying so, against one that does not. The
others (usage, a server without SIGNALS) run against any server.

The client binary comes from $CHAT_CLIENT (default <repo>/build/chat-client).
"""

import json
import os
import re
import select
import time

import pytest

from convproto import GroupClient, device
from proto import HELLO, TEXT, WELCOME, Client, parse_welcome
# (listeners and terms are fixtures: imported, they serve here too)
from test_cli_client import (DEADLINE, assert_one_sentence, listen,  # noqa: F401
                             listeners, run, send)
from test_cli_devices import finish
from test_cli_groups import create
from test_cli_interactive import term, terms  # noqa: F401

FLAG_ACKS, FLAG_CONV, FLAG_SIGNALS = 0x01, 0x02, 0x04


# -- fixtures and helpers --------------------------------------------------------

def grants_signals(server):
    """Does `server` grant SIGNALS? Asked with a raw HELLO (ACKS, CONV,
    SIGNALS, the default device) from user 99, who then leaves."""
    c = Client(server.host, server.port)
    try:
        c.send_frame(99, 0, HELLO, bytes([1, FLAG_ACKS | FLAG_CONV | FLAG_SIGNALS, 0]))
        f = c.read_frame()
        assert f.type == WELCOME, f"expected WELCOME, got {f}"
        return bool(parse_welcome(f.body).flags & FLAG_SIGNALS)
    finally:
        c.close()


def need_signals(server):
    if not grants_signals(server):
        pytest.fail("the server does not grant SIGNALS (docs/PROTOCOL.md, \"Receipts, "
                    "typing and presence\"): its side of signals is missing",
                    pytrace=False)
    return server


@pytest.fixture
def signals_server(server):
    """The routing server, which must grant SIGNALS."""
    return need_signals(server)


def cmd(server, sub, user, *args):
    return run(sub, "--port", server.port, "--id", user, *args)


def ok(r):
    """A command that succeeded silently: its JSON lines (none for read and
    typing)."""
    assert r.returncode == 0, r.stderr.decode()
    assert r.stderr == b"", r.stderr.decode()
    return [json.loads(l) for l in r.stdout.decode("utf-8").splitlines()]


def say(server, sender, to, text, *args):
    r = send(server, "--id", sender, "--to", to, "--text", text, *args)
    assert r.returncode == 0, r.stderr.decode()


def next_line(listener, want=None, timeout=DEADLINE, **fields):
    """The next JSON line listen prints that has the key `want` and the
    values `fields` (others are skipped: messages, marks of other kinds).
    Reads the pipe itself (os.read into a buffer of its own), so that lines
    that came together are not hidden from select() in a stdio buffer."""
    fd = listener.proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    while True:
        buf = getattr(listener, "sig_buf", b"")
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            listener.sig_buf = buf
            obj = json.loads(line)
            if (want is None or want in obj) and \
                    all(obj.get(k) == v for k, v in fields.items()):
                return obj
        left = deadline - time.monotonic()
        r, _, _ = select.select([fd], [], [], max(left, 0))
        if not r:
            pytest.fail(f"listen printed no {want!r} line {fields} within {timeout}s "
                        f"(stderr {listener.stderr_lines!r})")
        chunk = os.read(fd, 65536)
        assert chunk, f"listen exited: {listener.stderr_lines!r}"
        listener.sig_buf = buf + chunk


def nothing_more(listener, wait=0.5):
    """listen prints nothing more within `wait` seconds."""
    assert b"\n" not in getattr(listener, "sig_buf", b""), listener.sig_buf
    r, _, _ = select.select([listener.proc.stdout.fileno()], [], [], wait)
    if r:
        chunk = os.read(listener.proc.stdout.fileno(), 65536)
        assert not chunk, f"unexpected output {chunk!r}"


# -- usage (any server, or none) -------------------------------------------------

@pytest.mark.parametrize("args, phrase", [
    (["read", "--id", "1", "--upto", "5"], "exactly one of --with and --group"),
    (["read", "--id", "1", "--with", "2", "--group", "3", "--upto", "5"],
     "exactly one of --with and --group"),
    (["read", "--id", "1", "--with", "2"], "--upto is required"),
    (["read", "--id", "1", "--with", "2", "--upto", "0"], "--upto wants a message id"),
    (["read", "--id", "1", "--with", "2", "--upto", "x"], "--upto wants a message id"),
    (["read", "--id", "1", "--with", "2", "--upto", "5", "--stop"], "--stop goes with typing"),
    (["read", "--with", "2", "--upto", "5"], "--id is required"),
    (["receipts", "--id", "1"], "exactly one of --with and --group"),
    (["receipts", "--id", "1", "--with", "0"], "--with must not be 0"),
    (["receipts", "--id", "1", "--with", "2", "--upto", "3"], "--upto goes with read"),
    (["typing", "--id", "1", "--group", "0"], "--group must not be 0"),
    (["typing", "--id", "1"], "exactly one of --with and --group"),
    (["typing", "--id", "1", "--with", "2", "--upto", "3"], "--upto goes with read"),
    (["typing", "--id", "1", "--with", "2", "--device", "a b"], "--device"),
    (["listen", "--id", "1", "--presence", "0"], "--presence must not be 0"),
    (["listen", "--id", "1", "--presence", "2", "--no-acks"], "--presence needs control frames"),
    (["listen", "--id", "1", "--signals", "--no-acks"], "--signals needs control frames"),
])
def test_usage_errors(args, phrase):
    r = run(*args)
    assert r.returncode == 2, r.stderr
    line = assert_one_sentence(r)
    assert phrase in line, line


@pytest.mark.parametrize("sub, flags", [
    ("read", ["--with ID", "--group G", "--upto MSGID", "--device NAME"]),
    ("receipts", ["--with ID", "--group G", "\"receipt\": \"delivered\""]),
    ("typing", ["--with ID", "--group G", "--stop"]),
    ("listen", ["--signals", "--presence ID", "\"typing\": true", "\"presence\": \"online\"",
                "\"receipt\": \"delivered\""]),
])
def test_help(sub, flags):
    r = run(sub, "--help")
    assert r.returncode == 0
    out = r.stdout.decode()
    for f in flags:
        assert f in out, (sub, f)


def test_main_help_lists_the_commands():
    r = run("--help")
    assert r.returncode == 0
    out = r.stdout.decode()
    for c in ("chat-client read", "chat-client receipts", "chat-client typing", "--signals"):
        assert c in out, c


@pytest.mark.parametrize("mode", [
    ["read", "--with", "2", "--upto", "5"],
    ["receipts", "--with", "2"],
    ["typing", "--with", "2"],
])
def test_commands_on_a_server_without_signals(echo_server, mode):
    """An echo server grants neither CONV nor SIGNALS: one sentence."""
    r = cmd(echo_server, mode[0], 1, *mode[1:])
    assert r.returncode == 1
    line = assert_one_sentence(r)
    assert "does not support receipts, typing and presence" in line, line


def test_listen_signals_on_a_server_without_signals(echo_server):
    r = cmd(echo_server, "listen", 1, "--signals")
    assert r.returncode == 1 and r.stdout == b""
    line = assert_one_sentence(r)
    assert "does not support receipts, typing and presence" in line, line


# -- typing ----------------------------------------------------------------------

def test_typing_reaches_the_receiver(signals_server, listeners):
    s = signals_server
    one = listen(listeners, s, 1, "--signals")
    assert ok(cmd(s, "typing", 2, "--with", 1)) == []
    assert next_line(one, "typing") == {"typing": True, "from": 2, "to": 1, "group": False}
    assert ok(cmd(s, "typing", 2, "--with", 1, "--stop")) == []
    assert next_line(one, "typing") == {"typing": False, "from": 2, "to": 1, "group": False}
    # Typing to someone else does not reach user 1.
    assert ok(cmd(s, "typing", 2, "--with", 3)) == []
    nothing_more(one)


def test_typing_in_a_group(signals_server, listeners):
    s = signals_server
    gid = create(s, 1, "typists", 2, 3)["group"]
    three = listen(listeners, s, 3, "--signals")
    two = listen(listeners, s, 2, "--signals")
    assert ok(cmd(s, "typing", 2, "--group", gid)) == []
    assert next_line(three, "typing") == {"typing": True, "from": 2, "to": gid, "group": True}
    nothing_more(two)  # every member but the typist
    # Not a member: refused, one sentence.
    r = cmd(s, "typing", 9, "--group", gid)
    assert r.returncode == 1
    assert_one_sentence(r)
    nothing_more(three)


def test_listen_without_signals_prints_messages_only(signals_server, listeners):
    """The existing output is unchanged: no receipt, typing or presence line."""
    s = signals_server
    one = listen(listeners, s, 1, "--count", 1)
    assert ok(cmd(s, "typing", 2, "--with", 1)) == []
    say(s, 2, 1, "plain")
    msgs = finish(one)
    assert [(m["from"], m["text"]) for m in msgs] == [(2, "plain")], msgs


def test_count_counts_messages_only(signals_server, listeners):
    s = signals_server
    one = listen(listeners, s, 1, "--signals", "--count", 1)
    assert ok(cmd(s, "typing", 2, "--with", 1)) == []
    assert next_line(one, "typing")["from"] == 2
    assert one.proc.poll() is None  # still there: a typing line is not a message
    say(s, 2, 1, "now")
    rc, lines = one.finish()
    assert rc == 0
    assert lines[-1]["text"] == "now", lines


# -- receipts --------------------------------------------------------------------

def test_delivered_then_read(signals_server, listeners):
    s = signals_server
    author = listen(listeners, s, 1, "--signals", "--device", "watch")
    reader = listen(listeners, s, 2, "--count", 1)
    say(s, 1, 2, "tick me")
    (m,) = finish(reader)
    mid = m["id"]
    d = next_line(author, "receipt", receipt="delivered", by=2)
    assert (d["conv"], d["group"], d["by"]) == (2, False, 2), d
    assert d["upto"] >= mid and d["time"] > 0, d
    # The reader marks it read: the author hears it.
    assert ok(cmd(s, "read", 2, "--with", 1, "--upto", mid)) == []
    r = next_line(author, "receipt", receipt="read", by=2)
    assert r["receipt"] == "read" and (r["conv"], r["group"], r["by"], r["upto"]) == \
        (2, False, 2, mid), r
    assert r["time"] > 0, r
    # The marks as the server keeps them: the other's, then the asker's.
    marks = ok(cmd(s, "receipts", 1, "--with", 2))
    by_kind = {(x["receipt"], x["by"]): x for x in marks}
    assert all(x["conv"] == 2 and x["group"] is False for x in marks), marks
    assert by_kind[("delivered", 2)]["upto"] >= mid, marks
    assert by_kind[("read", 2)]["upto"] == mid, marks
    assert by_kind[("read", 1)]["upto"] == 0, marks  # user 1 never read anything
    # From the reader's side: user 1's marks, and its own read mark.
    marks = ok(cmd(s, "receipts", 2, "--with", 1))
    assert {(x["receipt"], x["by"], x["upto"]) for x in marks} >= {("read", 2, mid)}, marks


def test_read_reaches_the_readers_other_devices(signals_server, listeners):
    s = signals_server
    phone = listen(listeners, s, 2, "--signals", "--device", "phone")
    say(s, 1, 2, "seen on the laptop")
    m = next_line(phone, "text")
    assert ok(cmd(s, "read", 2, "--with", 1, "--upto", m["id"], "--device", "laptop")) == []
    r = next_line(phone, "receipt", receipt="read")
    assert (r["receipt"], r["conv"], r["by"], r["upto"]) == ("read", 1, 2, m["id"]), r


def test_read_above_the_highest_id_is_lowered(signals_server):
    s = signals_server
    say(s, 1, 2, "one")
    assert ok(cmd(s, "read", 2, "--with", 1, "--upto", 10 ** 15)) == []
    marks = ok(cmd(s, "receipts", 1, "--with", 2))
    (r,) = [x for x in marks if x["receipt"] == "read" and x["by"] == 2]
    assert 0 < r["upto"] < 10 ** 15, r


def test_group_receipts(signals_server, listeners):
    s = signals_server
    gid = create(s, 1, "readers", 2, 3)["group"]
    two = listen(listeners, s, 2, "--count", 1)
    r = send(s, "--id", 1, "--group", gid, "--text", "to all")
    assert r.returncode == 0, r.stderr.decode()
    (m,) = finish(two)
    assert ok(cmd(s, "read", 2, "--group", gid, "--upto", m["id"])) == []
    marks = ok(cmd(s, "receipts", 1, "--group", gid))
    assert all(x["conv"] == gid and x["group"] is True for x in marks), marks
    kinds = {(x["receipt"], x["by"]) for x in marks}
    assert kinds == {(k, u) for k in ("delivered", "read") for u in (1, 2, 3)}, marks
    read = {x["by"]: x["upto"] for x in marks if x["receipt"] == "read"}
    assert read[2] == m["id"] and read[3] == 0, marks
    # Not a member: refused with the server's reason, one sentence.
    for sub, extra in (("receipts", []), ("read", ["--upto", m["id"]])):
        r = cmd(s, sub, 9, "--group", gid, *extra)
        assert r.returncode == 1, (sub, r.stderr)
        assert_one_sentence(r)


def test_receipts_of_an_empty_conversation(signals_server):
    marks = ok(cmd(signals_server, "receipts", 5, "--with", 6))
    assert all(x["upto"] == 0 for x in marks), marks
    assert {(x["receipt"], x["by"]) for x in marks} == \
        {("delivered", 6), ("read", 6), ("read", 5)}, marks


# -- presence --------------------------------------------------------------------

def test_presence_subscribe_and_changes(signals_server, listeners):
    s = signals_server
    watcher = listen(listeners, s, 1, "--presence", 2)
    assert next_line(watcher, "presence") == {"presence": "offline", "user": 2,
                                              "last_seen": 0}
    two = listen(listeners, s, 2)
    assert next_line(watcher, "presence") == {"presence": "online", "user": 2,
                                              "last_seen": 0}
    before = int(time.time() * 1000)
    two.kill()
    p = next_line(watcher, "presence")
    assert p["presence"] == "offline" and p["user"] == 2, p
    assert p["last_seen"] >= before - 1000, p


def test_presence_past_max_subscriptions_is_denied(start_server, listeners):
    s = need_signals(start_server("--max-subscriptions", "1"))
    watcher = listen(listeners, s, 1, "--presence", 2, "--presence", 3)
    p = next_line(watcher, "presence")
    assert p["user"] == 2, p
    deadline = time.monotonic() + DEADLINE
    while not any("user 3" in l for l in watcher.stderr_lines):
        assert time.monotonic() < deadline, watcher.stderr_lines
        time.sleep(0.05)
    line = [l for l in watcher.stderr_lines if "user 3" in l][0]
    assert line.startswith("chat-client: the server refused the presence of user 3"), line
    assert watcher.proc.poll() is None  # the connection stays


# -- interactive -----------------------------------------------------------------

def test_interactive_ticks_typing_and_read(signals_server, terms, listeners):
    s = signals_server
    other = listen(listeners, s, 2, "--signals", "--device", "watch")
    t = term(terms, s, 1, "--to", 2)
    # Typing a line tells user 2, sending it says "stopped".
    t.type("hel")
    assert next_line(other, "typing") == {"typing": True, "from": 1, "to": 2, "group": False}
    t.type("lo there\r")
    assert next_line(other, "typing") == {"typing": False, "from": 1, "to": 2, "group": False}
    m = next_line(other, "text")
    assert m["text"] == "hello there", m
    # user 2's device got it: delivered; then read.
    t.expect("\u2713 delivered to 2: hello there")
    assert ok(cmd(s, "read", 2, "--with", 1, "--upto", m["id"])) == []
    t.expect("\u2713\u2713 read by 2: hello there")
    # Someone typing to user 1 shows.
    assert ok(cmd(s, "typing", 2, "--with", 1)) == []
    shown = t.expect("2 is typing")
    assert re.search(rb"\[\d\d:\d\d\] 2 is typing$", shown), shown
    # A message shown is marked read for its sender.
    say(s, 2, 1, "did you see this?")
    t.expect("2: did you see this?")
    r = next_line(other, "receipt", receipt="read", by=1)
    assert r["conv"] == 1 and r["upto"] > m["id"], r
    t.type("/quit\r")
    assert t.wait_exit() == 0


def test_interactive_ticks_are_exact(signals_server, terms):
    """A mark ticks the messages whose id (from POSTED) is at or below it,
    never one sent after them: two lines sent at once, a receiver (a raw
    device) that acknowledges only the first, then reads only the first.
    The guess the client made before POSTED (every message sent before the
    mark came) ticked both. Absence is shown by a marker: user 2 writes to
    user 1 after the tick came, and nothing but that message may show
    before it (a wrong tick would come from the same receipt, before the
    marker was even sent)."""
    s = signals_server
    two = device(s, 2, "raw")  # ACKS and CONV: it acknowledges when told
    t = term(terms, s, 1, "--to", 2)
    t.type("first\r")
    t.type("second\r")
    m1, m2 = two.read_msgs(2)
    assert (m1.payload, m2.payload) == (b"first", b"second")
    assert m1.id < m2.id

    def marker(text):
        """user 2 writes `text` to user 1; the terminal until it shows."""
        two.send_data(1, TEXT, text.encode())
        return t.expect(f"2: {text}")

    two.ack(1)  # the first only: user 2's DELIVERED mark moves to m1.id
    t.expect("\u2713 delivered to 2: first")
    seen = marker("after the first delivered")
    assert b"second" not in seen, seen
    two.ack(2)
    seen = t.expect("\u2713 delivered to 2: second")
    assert b"delivered to 2: first" not in seen, seen  # ticked once
    # READ up to the first only.
    assert ok(cmd(s, "read", 2, "--with", 1, "--upto", m1.id)) == []
    t.expect("\u2713\u2713 read by 2: first")
    seen = marker("after the first read")
    assert b"second" not in seen, seen
    assert ok(cmd(s, "read", 2, "--with", 1, "--upto", m2.id)) == []
    seen = t.expect("\u2713\u2713 read by 2: second")
    assert b"read by 2: first" not in seen, seen
    t.type("/quit\r")
    assert t.wait_exit() == 0


def test_interactive_ticks_in_a_group_are_exact(signals_server, terms):
    """The same in a group: member 2's marks tick the group's messages by
    their ids; member 3 never acknowledges."""
    s = signals_server
    gid = create(s, 1, "ticks", 2, 3)["group"]
    two = device(s, 2, "raw", cls=GroupClient)  # takes group messages
    t = term(terms, s, 1, "--to", 2)
    t.type(f"/group {gid}\r")
    t.expect("ticks(%d)> " % gid)
    t.type("one\r")
    t.type("two\r")
    m1, m2 = two.read_msgs(2)
    assert (m1.payload, m2.payload) == (b"one", b"two")
    two.ack(1)
    t.expect("\u2713 delivered to 2 @ ticks(%d): one" % gid)
    two.send_data(1, TEXT, b"group marker")
    seen = t.expect("2: group marker")
    assert b"delivered to 2 @ ticks(%d): two" % gid not in seen, seen
    two.ack(2)
    t.expect("\u2713 delivered to 2 @ ticks(%d): two" % gid)
    t.type("/quit\r")
    assert t.wait_exit() == 0
