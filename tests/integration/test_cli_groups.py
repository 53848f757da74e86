"""chat-client and groups and history (docs/PROTOCOL.md "Groups",
"History"), black-box against the real server: `group create|rename|add|
remove|leave|list|members`, `send --group`, `listen` showing "group",
`history --with|--group`, the interactive mode's /group, and the
one-sentence failures.

The tests that need CONV fail at once, saying so, against a server that
does not grant it; the history tests start the server with --history-ttl.

The client binary comes from $CHAT_CLIENT (default <repo>/build/chat-client).
"""

import json
import re

import pytest

# (listeners, terms and conv_server are fixtures: imported, they serve here too)
from test_cli_client import (assert_one_sentence, listen, listeners,  # noqa: F401
                             run, send)
from test_cli_devices import conv_server, finish, grants_conv  # noqa: F401
from test_cli_interactive import PNG, term, terms  # noqa: F401


# -- helpers ---------------------------------------------------------------------

def group(server, action, *args):
    return run("group", action, "--port", server.port, *args)


def lines(r):
    """The JSON lines a successful command printed (stderr empty)."""
    assert r.returncode == 0, r.stderr.decode()
    assert r.stderr == b"", r.stderr.decode()
    return [json.loads(l) for l in r.stdout.decode("utf-8").splitlines()]


def create(server, owner, name, *members, device=None):
    args = ["--id", owner, "--name", name]
    for m in members:
        args += ["--member", m]
    if device:
        args += ["--device", device]
    out = lines(group(server, "create", *args))
    assert len(out) == 1, out
    return out[0]


def history(server, user, *args):
    return run("history", "--port", server.port, "--id", user, *args)


def core(m):
    """A listen/history line without the server's id and time."""
    return {k: v for k, v in m.items() if k not in ("id", "time")}


@pytest.fixture
def history_server(start_server):
    s = start_server("--history-ttl", "1h")
    if not grants_conv(s):
        pytest.fail("the server does not grant CONV in routing mode", pytrace=False)
    return s


# -- usage (any server, or none) -------------------------------------------------

@pytest.mark.parametrize("args, phrase", [
    ([], "an action is required"),
    (["frobnicate", "--id", "1"], "unknown action 'frobnicate'"),
    (["create", "--id", "1"], "--name is required"),
    (["create", "--name", "x"], "--id is required"),
    (["create", "--id", "1", "--name", ""], "--name wants 1 to 64 bytes"),
    (["create", "--id", "1", "--name", "x" * 65], "--name wants 1 to 64 bytes"),
    (["create", "--id", "1", "--name", "x", "--group", "3"], "--group does not go"),
    (["add", "--id", "1", "--group", "3"], "at least one --member"),
    (["add", "--id", "1", "--member", "3"], "--group is required"),
    (["list", "--id", "1", "--member", "3"], "--member goes with"),
    (["leave", "--id", "1", "--group", "0"], "--group must not be 0"),
    (["members", "--id", "1", "--group", "3", "--name", "x"], "--name goes with"),
    (["list", "--id", "1", "--device", "my phone"], "--device"),
])
def test_group_usage_errors(args, phrase):
    r = run("group", *args)
    assert r.returncode == 2, r.stderr
    err = r.stderr.decode()
    assert phrase in err, err


@pytest.mark.parametrize("args, phrase", [
    (["--id", "1"], "exactly one of --with and --group"),
    (["--id", "1", "--with", "2", "--group", "3"], "exactly one of --with and --group"),
    (["--id", "1", "--with", "2", "--limit", "0"], "--limit must be at least 1"),
    (["--id", "1", "--with", "2", "--limit", "201"], "--limit wants a number"),
    (["--id", "1", "--with", "2", "--before", "x"], "--before wants a message id"),
])
def test_history_usage_errors(args, phrase):
    r = run("history", *args)
    assert r.returncode == 2
    line = assert_one_sentence(r)
    assert phrase in line, line


def test_send_to_and_group_are_exclusive():
    r = run("send", "--id", 1, "--to", 2, "--group", 3, "--text", "x")
    assert r.returncode == 2
    assert "exactly one of --to and --group" in assert_one_sentence(r)
    r = run("send", "--id", 1, "--group", 3, "--text", "x", "--no-acks")
    assert r.returncode == 2
    assert "--group needs control frames" in assert_one_sentence(r)


@pytest.mark.parametrize("mode", [["group", "create"], ["history"]])
def test_help_describes_the_commands(mode):
    r = run(*mode, "--help")
    assert r.returncode == 0
    out = r.stdout.decode()
    assert "--device NAME" in out and "--group G" in out


def test_groups_on_a_server_without_conv(echo_server):
    """An echo server never grants CONV: one sentence, exit 1."""
    for r in [group(echo_server, "list", "--id", 1),
              history(echo_server, 1, "--with", 2),
              send(echo_server, "--id", 1, "--group", 3, "--text", "x")]:
        line = assert_one_sentence(r)
        assert "does not support" in line and "CONV" in line, line
        assert r.returncode == 1


# -- groups ---------------------------------------------------------------------

def test_create_list_and_members(conv_server):
    s = conv_server
    g = create(s, 1, "friends ✓", 2, 3, 2, device="phone")  # a duplicate: ignored
    gid = g["group"]
    assert isinstance(gid, int) and gid > 0
    assert g["name"] == "friends ✓"
    assert sorted(g["members"]) == [1, 2, 3]
    other = create(s, 1, "solo")["group"]
    assert other != gid
    assert create(s, 2, "theirs", 1)["members"] in ([2, 1], [1, 2])

    mine = lines(group(s, "list", "--id", 1, "--device", "laptop"))
    by_id = {x["group"]: x for x in mine}
    assert len(mine) == 3, mine
    assert by_id[gid] == {"group": gid, "name": "friends ✓", "admin": True, "members": 3}
    assert by_id[other] == {"group": other, "name": "solo", "admin": True, "members": 1}
    theirs = [x for x in mine if x["name"] == "theirs"]
    assert theirs[0]["admin"] is False and theirs[0]["members"] == 2
    assert lines(group(s, "list", "--id", 3)) == \
        [{"group": gid, "name": "friends ✓", "admin": False, "members": 3}]
    assert lines(group(s, "list", "--id", 4)) == []

    members = lines(group(s, "members", "--id", 3, "--group", gid))
    assert sorted((m["user"], m["admin"]) for m in members) == \
        [(1, True), (2, False), (3, False)]


def test_refusals_are_one_sentence(conv_server):
    s = conv_server
    gid = create(s, 1, "club", 2)["group"]
    r = group(s, "add", "--id", 2, "--group", gid, "--member", 5)
    assert r.returncode == 1
    assert assert_one_sentence(r) == f"chat-client: only the admins of group {gid} may do this"
    r = group(s, "rename", "--id", 2, "--group", gid, "--name", "mine")
    assert assert_one_sentence(r) == f"chat-client: only the admins of group {gid} may do this"
    r = group(s, "members", "--id", 5, "--group", gid)
    assert r.returncode == 1
    assert assert_one_sentence(r) == f"chat-client: not a member of group {gid}"
    r = group(s, "leave", "--id", 5, "--group", gid)
    assert assert_one_sentence(r) == f"chat-client: not a member of group {gid}"
    r = group(s, "members", "--id", 1, "--group", 4000000)
    assert assert_one_sentence(r) == "chat-client: no group 4000000"
    # Nothing refused was done.
    assert lines(group(s, "list", "--id", 1)) == \
        [{"group": gid, "name": "club", "admin": True, "members": 2}]


def test_rename_add_remove(conv_server):
    s = conv_server
    gid = create(s, 1, "before", 2, 3)["group"]
    assert lines(group(s, "rename", "--id", 1, "--group", gid, "--name", "after")) == []
    assert lines(group(s, "add", "--id", 1, "--group", gid, "--member", 4,
                       "--member", 5)) == []
    assert lines(group(s, "remove", "--id", 1, "--group", gid, "--member", 3)) == []
    members = lines(group(s, "members", "--id", 4, "--group", gid))
    assert sorted(m["user"] for m in members) == [1, 2, 4, 5]
    assert lines(group(s, "list", "--id", 5))[0]["name"] == "after"
    assert lines(group(s, "list", "--id", 3)) == []


def test_send_group_reaches_every_device_of_every_member(conv_server, listeners, tmp_path):
    s = conv_server
    gid = create(s, 1, "team", 2, 3)["group"]
    phone = listen(listeners, s, 2, "--device", "phone", "--count", 2,
                   "--save-dir", tmp_path)
    laptop = listen(listeners, s, 2, "--device", "laptop", "--count", 2,
                    "--save-dir", tmp_path)
    three = listen(listeners, s, 3, "--count", 2, "--save-dir", tmp_path)
    own = listen(listeners, s, 1, "--device", "tablet", "--count", 2,
                 "--save-dir", tmp_path)
    r = send(s, "--id", 1, "--group", gid, "--text", "hello team ✓", "--device", "desk")
    assert r.returncode == 0, r.stderr.decode()
    assert r.stderr == b"" and r.stdout == b""
    pic = tmp_path / "p.png"
    pic.write_bytes(PNG)
    r = send(s, "--id", 1, "--group", gid, "--file", pic, "--device", "desk")
    assert r.returncode == 0, r.stderr.decode()
    got = {name: finish(l) for name, l in
           [("phone", phone), ("laptop", laptop), ("three", three), ("own", own)]}
    for name, msgs in got.items():
        text, media = msgs
        want = {"from": 1, "to": gid, "group": gid, "type": "text", "text": "hello team ✓"}
        if name == "own":
            want["own"] = True
        assert core(text) == want, (name, msgs)
        assert media["group"] == gid and media["type"] == "picture", (name, msgs)
        assert media["bytes"] == len(PNG)
        assert open(media["file"], "rb").read() == PNG
    assert len({m[0]["id"] for m in got.values()}) == 1  # one message, one id


def test_leave_then_send_fails(conv_server, listeners):
    s = conv_server
    gid = create(s, 1, "leavers", 2, 3)["group"]
    assert lines(group(s, "leave", "--id", 3, "--group", gid)) == []
    two = listen(listeners, s, 2, "--count", 1)
    r = send(s, "--id", 3, "--group", gid, "--text", "still here?")
    assert r.returncode == 1
    assert assert_one_sentence(r) == \
        f"chat-client: the server refused the message: not a member of group {gid}"
    # The marker: 2 gets the next group message, not 3's.
    r = send(s, "--id", 1, "--group", gid, "--text", "marker")
    assert r.returncode == 0, r.stderr.decode()
    assert [core(m) for m in finish(two)] == \
        [{"from": 1, "to": gid, "group": gid, "type": "text", "text": "marker"}]
    members = lines(group(s, "members", "--id", 1, "--group", gid))
    assert sorted(m["user"] for m in members) == [1, 2]


# -- history --------------------------------------------------------------------

def test_history_with_a_user_pages_newest_first(history_server):
    s = history_server
    for sender, to, text in [(1, 2, "a"), (1, 2, "b"), (2, 1, "c"), (1, 2, "d"),
                             (1, 3, "not ours")]:
        r = send(s, "--id", sender, "--to", to, "--text", text)
        assert r.returncode == 0, r.stderr.decode()
    whole = lines(history(s, 1, "--with", 2, "--device", "phone"))
    assert [m["text"] for m in whole] == ["d", "c", "b", "a"]
    assert [m.get("own", False) for m in whole] == [True, False, True, True]
    assert [(m["from"], m["to"]) for m in whole] == [(1, 2), (2, 1), (1, 2), (1, 2)]
    ids = [m["id"] for m in whole]
    assert ids == sorted(ids, reverse=True)
    times = [m["time"] for m in whole]
    assert times == sorted(times, reverse=True) and times[-1] > 1_600_000_000_000
    assert all(m["type"] == "text" and "group" not in m for m in whole)
    # The other side sees the same conversation, with "own" on its part.
    theirs = lines(history(s, 2, "--with", 1))
    assert [m["id"] for m in theirs] == ids
    assert [m.get("own", False) for m in theirs] == [False, True, False, False]

    # A page at a time: the note on stderr names the next --before.
    r = history(s, 1, "--with", 2, "--limit", 2)
    assert r.returncode == 0, r.stderr.decode()
    assert [json.loads(l)["text"] for l in r.stdout.decode().splitlines()] == ["d", "c"]
    assert r.stderr.decode() == \
        f"chat-client: older messages remain: use --before {ids[1]}\n"
    rest = lines(history(s, 1, "--with", 2, "--limit", 2, "--before", ids[1]))
    assert [m["text"] for m in rest] == ["b", "a"]
    # (and a last, empty, page)
    assert lines(history(s, 1, "--with", 2, "--before", ids[3])) == []


def test_history_of_a_group(history_server, tmp_path):
    s = history_server
    gid = create(s, 1, "archive", 2)["group"]
    for sender, text in [(1, "one"), (2, "two"), (1, "three")]:
        r = send(s, "--id", sender, "--group", gid, "--text", text)
        assert r.returncode == 0, r.stderr.decode()
    pic = tmp_path / "p.png"
    pic.write_bytes(PNG)
    r = send(s, "--id", 2, "--group", gid, "--file", pic)
    assert r.returncode == 0, r.stderr.decode()
    save = tmp_path / "saved"
    save.mkdir()
    got = lines(history(s, 2, "--group", gid, "--save-dir", save))
    assert [core(m) for m in got[1:]] == [
        {"from": 1, "to": gid, "group": gid, "type": "text", "text": "three"},
        {"from": 2, "to": gid, "group": gid, "own": True, "type": "text", "text": "two"},
        {"from": 1, "to": gid, "group": gid, "type": "text", "text": "one"}]
    assert got[0]["type"] == "picture" and got[0].get("own") is True
    assert open(got[0]["file"], "rb").read() == PNG
    # A user added later sees what was posted since it joined.
    assert lines(group(s, "add", "--id", 1, "--group", gid, "--member", 3)) == []
    r = send(s, "--id", 1, "--group", gid, "--text", "welcome")
    assert r.returncode == 0, r.stderr.decode()
    assert [m["text"] for m in lines(history(s, 3, "--group", gid))] == ["welcome"]
    # Not a member: refused.
    r = history(s, 4, "--group", gid)
    assert r.returncode == 1
    assert assert_one_sentence(r) == f"chat-client: not a member of group {gid}"


def test_history_without_history_ttl_is_empty(conv_server):
    r = send(conv_server, "--id", 1, "--to", 2, "--text", "kept only until delivered")
    assert r.returncode == 0, r.stderr.decode()
    assert lines(history(conv_server, 1, "--with", 2)) == []


# -- interactive ---------------------------------------------------------------

def test_interactive_group_messages_and_events(conv_server, terms, listeners):
    s = conv_server
    gid = create(s, 1, "crew", 2, 3)["group"]
    label = f"crew({gid})"
    t = term(terms, s, 2)
    t.type(f"/group {gid}\r")
    t.expect(f"to {label}> ")
    three = listen(listeners, s, 3, "--count", 1)
    t.type("from the terminal\r")
    assert [core(m) for m in finish(three)] == \
        [{"from": 2, "to": gid, "group": gid, "type": "text", "text": "from the terminal"}]
    r = send(s, "--id", 1, "--group", gid, "--text", "to the crew")
    assert r.returncode == 0, r.stderr.decode()
    shown = t.expect(f"1 @ {label}: to the crew")
    assert re.search(rb"\[\d\d:\d\d\] 1 @ " + re.escape(label.encode()) + rb": to the crew$",
                     shown), shown
    # An event, as one line.
    assert lines(group(s, "add", "--id", 1, "--group", gid, "--member", 7)) == []
    t.expect(f"1 added 7 to {label}")
    # /groups lists them.
    t.type("/groups\r")
    t.expect(f"{label}: 4 members")
    # A group it is not in: the refusal is shown, the session goes on.
    t.type("/group 4000000\r")
    t.type("nobody hears this\r")
    t.expect("chat-client: the server refused a message: no group 4000000")
    assert t.expect("\n").strip() == b""  # the server's reason alone
    t.type("/quit\r")
    assert t.wait_exit() == 0
