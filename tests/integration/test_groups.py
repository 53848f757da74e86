"""Groups (docs/PROTOCOL.md, "Groups"): GROUP requests (create, rename,
add, remove, leave, list, members) and their answers and events, group
messages to every device of every member, membership changes racing
messages, deletion from the store, restarts, malformed frames.

Users: 1 creates the groups (their admin) and writes, 2 and up are members
or not. Every CONV connection is a GroupClient (convproto): answers and
events are set aside from the deliveries. A plain or article client is a
ConvClient, whose reads fail on a GROUPS frame: no frame of this protocol
may reach it. Absence is always shown by a marker (convproto.marker or
group_marker: a fresh message must be the next delivery) or a PING/PONG,
never by waiting.
"""

import re
import signal
import subprocess
import threading
import time

import pytest

from convproto import (ADD, ADDED, CONV_FLAG, CREATE, CREATED, DEVICE, E_GROUP,
                       GROUP_FLAG, GROUP_FRAME, LEAVE, LEFT, MEMBERS, NO_GROUP,
                       OWN, POST, REMOVE, REMOVED, RENAME, RENAMED, GroupInfo,
                       Groups, Member, StoreProbe, article, connect, device,
                       group_body, group_device, group_marker, marker, now_ms,
                       payload, plain, post_body, wait_messages)
from conftest import require_binary
from proto import BADTYPE, PICTURE, PROTO, TEXT, VIDEO, VOICE, c2s
from test_devices import CLOCK_SLACK_MS
from test_store import faults_binary  # noqa: F401 (a fixture)

PICTURE_BYTES = bytes(range(256)) * 40


@pytest.fixture
def srv(start_store_server):
    return start_store_server()


@pytest.fixture
def msrv(start_store_server):
    """A server whose /metrics shows what the store holds."""
    return start_store_server("--http-port", "auto")


def gdev(srv, user, name="phone", flags=DEVICE):
    return group_device(srv, user, name, flags)


def check_event(conn, what, by, group, name, users=None):
    """conn's next group event is `what` by `by` on `group`, with the
    group's name and (if given) exactly those users concerned."""
    g = conn.next_event()
    ev = g.data
    assert (g.req, g.group, ev.what, ev.by, ev.name) == (0, group, what, by, name.encode()), \
        f"user {conn.user}: event {g}, expected {what} by {by} on {group} ({name!r})"
    if users is not None:
        assert sorted(ev.users) == sorted(users), f"user {conn.user}: event users {ev.users}"
    return ev


def no_events(*conns):
    """Nothing came that the test did not read: after a PING/PONG, no
    delivery, answer or event is waiting."""
    for c in conns:
        assert c.sync() == [], f"user {c.user}: unexpected deliveries"
        assert not c.events and not c.answers, \
            f"user {c.user}: unexpected GROUPS {list(c.events) + list(c.answers)}"


def msgs_of(conn, group, until):
    """conn's deliveries up to the group message with payload `until`
    (included): every one a MSG of `group`."""
    out = []
    while True:
        m = conn.read_msg()
        assert m.to == group and m.flags & GROUP_FLAG, f"user {conn.user}: {m}"
        out.append(m)
        if m.payload == until:
            return out


def group_msgs_before_a_marker(conn):
    """conn's group messages up to a (1:1) marker, which ends them."""
    got = []
    while True:
        d = conn.read_msg()
        if not d.flags & GROUP_FLAG:
            assert payload(d).startswith(b"marker"), d
            return got
        got.append(d)


def run_of(seq, part):
    """The index in `seq` where `part` begins as a contiguous run (no
    message of seq missing between its first and last), or fail."""
    ids = [m.id for m in seq]
    got = [m.id for m in part]
    assert got, "no message at all"
    assert got[0] in ids, f"message {part[0]} was never posted to the group"
    i = ids.index(got[0])
    assert ids[i:i + len(got)] == got, \
        f"not a contiguous run of the group's messages: got ids {got}, the group has {ids}"
    return i


# -- CREATE --------------------------------------------------------------------

def test_create_makes_the_creator_admin_and_the_listed_users_members(srv):
    a = gdev(srv, 1)
    req = a.request(CREATE, name="team ✓", users=[2, 0, 3, 2, 1, 3, 0])
    ans = a.reply(req)
    assert isinstance(ans, Groups), f"CREATE refused: {ans}"
    assert (ans.op, ans.req, ans.data) == (CREATE, req, None) and ans.group != 0, ans
    gid = ans.group
    assert a.members(gid) == {Member(1, True), Member(2, False), Member(3, False)}
    assert a.groups() == {gid: GroupInfo(gid, True, 3, "team ✓".encode())}
    b = gdev(srv, 2)
    assert b.groups() == {gid: GroupInfo(gid, False, 3, "team ✓".encode())}
    assert b.members(gid) == a.members(gid)
    assert gdev(srv, 9).groups() == {}


def test_each_create_gives_a_new_group(srv):
    a = gdev(srv, 1)
    ids = [a.create("g%d" % i, [2]) for i in range(3)]
    assert len(set(ids)) == 3 and 0 not in ids, ids
    assert gdev(srv, 2).groups() == {
        g: GroupInfo(g, False, 2, b"g%d" % i) for i, g in enumerate(ids)}
    assert a.create("alone") not in ids


def test_create_is_told_to_the_members_conv_connections_only(srv):
    laptop, phone = gdev(srv, 1, "laptop"), gdev(srv, 1, "phone")
    p2, t2 = gdev(srv, 2, "phone"), gdev(srv, 2, "tablet")
    bare3 = plain(srv, 3)                     # a member without CONV
    other = device(srv, 9, "phone")           # not a member (a GROUPS fails its reads)
    gid = laptop.create("news", [2, 3])
    for c in (laptop, phone, p2, t2):
        check_event(c, CREATED, 1, gid, "news", [2, 3])
    w = plain(srv, 8)
    marker(w, 3, bare3)
    marker(w, 9, other)
    no_events(laptop, phone, p2, t2)


@pytest.mark.parametrize("name", ["x", "é" * 32, "g" * 64], ids=["1 byte", "64 bytes utf-8", "64"])
def test_names_of_1_to_64_bytes_are_kept_exactly(srv, name):
    a = gdev(srv, 1)
    gid = a.create(name, [2])
    assert a.groups()[gid].name == name.encode()
    a.done(RENAME, gid, name[::-1])
    assert gdev(srv, 2).groups()[gid].name == name[::-1].encode()


BAD_NAMES = {"empty": b"", "65 bytes": b"n" * 65, "255 bytes": b"n" * 255}


@pytest.mark.parametrize("name", BAD_NAMES.values(), ids=BAD_NAMES.keys())
def test_a_name_missing_or_too_long_is_refused_with_error_group(srv, name):
    """PROTOCOL.md lists "name missing or too long" among the reasons of
    ERROR GROUP (the request is refused; the connection stays)."""
    a = gdev(srv, 1)
    gid = a.create("kept", [2])
    e = a.refused(CREATE, 0, name, [2])
    assert e.code == E_GROUP, e
    a.refused(RENAME, gid, name)
    assert a.groups() == {gid: GroupInfo(gid, True, 2, b"kept")}


def test_group_ids_are_apart_from_user_ids(srv):
    """A group's id is a number of its own: the user with that id is
    another party, told apart by the GROUP flag."""
    a = gdev(srv, 7, "laptop")
    m8 = gdev(srv, 8)
    gid = a.create("ids", [8])
    assert gid not in (7, 8), f"group id {gid}: pick other user ids for this test"
    u = gdev(srv, gid)                        # the user whose id is the group's
    a.post(gid, TEXT, b"to the user", cid=1)  # no GROUP flag: the user
    a.post_group(gid, TEXT, b"to the group", cid=2)
    a.acked()
    m = u.read_msg()
    assert (m.sender, m.to, m.flags, m.payload) == (7, gid, 0, b"to the user"), m
    g = m8.read_msg()
    assert (g.sender, g.to, g.flags, g.payload) == (7, gid, GROUP_FLAG, b"to the group"), g
    marker(plain(srv, 9), gid, u)             # no group message for the user
    group_marker(a, gid, m8)                  # no 1:1 message for the member
    assert u.refused(MEMBERS, gid).code == E_GROUP   # not a member of "its" group
    no_events(u)


def test_group_events_are_live_only_never_stored(srv):
    """EVENTs go to the members' CONV connections live: a device that was
    away when the group changed gets none of them when it comes back."""
    a = gdev(srv, 1)
    gdev(srv, 2, "phone").close()             # seen, away
    gid = a.create("quiet", [2])
    a.done(RENAME, gid, "renamed")
    a.done(ADD, gid, users=[3])
    a.done(REMOVE, gid, users=[3])
    p2 = gdev(srv, 2, "phone")
    marker(plain(srv, 8), 2, p2)
    no_events(p2)
    assert p2.groups() == {gid: GroupInfo(gid, False, 2, b"renamed")}


def test_a_group_operation_the_store_cannot_commit_is_refused(faults_binary,
                                                              start_store_server, tmp_path):
    """A GROUPS answer means done and committed; a store failure is ERROR
    GROUP (ref = req, with a reason), and nothing changed."""
    fault = tmp_path / "diskfull"
    s = start_store_server(env={"CHAT_FAULT_DISKFULL": str(fault)})
    s.wait_for_log(re.compile(r" WARN .*fault", re.I))
    a, b = gdev(s, 1), gdev(s, 2)
    gid = a.create("kept", [2])
    check_event(a, CREATED, 1, gid, "kept")
    check_event(b, CREATED, 1, gid, "kept")
    fault.touch()
    for op, group, kw in [(CREATE, 0, {"name": "not made", "users": [2]}),
                          (RENAME, gid, {"name": "not renamed"}),
                          (ADD, gid, {"users": [3]}), (REMOVE, gid, {"users": [2]}),
                          (LEAVE, gid, {})]:
        e = b.refused(op, group, **kw) if op == LEAVE else a.refused(op, group, **kw)
        assert e.code == E_GROUP, e
    fault.unlink()
    no_events(a, b)
    assert a.groups() == {gid: GroupInfo(gid, True, 2, b"kept")}
    assert b.members(gid) == {Member(1, True), Member(2, False)}
    assert s.terminate() == 0, s.log()
    s = start_store_server()                  # what the store holds: the same
    assert gdev(s, 1).groups() == {gid: GroupInfo(gid, True, 2, b"kept")}


# -- RENAME, ADD, REMOVE: admins only -------------------------------------------

def test_an_admin_renames_and_the_members_are_told(srv):
    a, b = gdev(srv, 1), gdev(srv, 2)
    gid = a.create("old", [2])
    check_event(b, CREATED, 1, gid, "old")
    check_event(a, CREATED, 1, gid, "old")
    a.done(RENAME, gid, "new name")
    for c in (a, b):
        check_event(c, RENAMED, 1, gid, "new name")
    assert b.groups()[gid].name == b"new name"


def test_an_admin_adds_and_removes_and_everyone_concerned_is_told(srv):
    a, b, d = gdev(srv, 1), gdev(srv, 2), gdev(srv, 4)
    gid = a.create("team", [2])
    check_event(a, CREATED, 1, gid, "team")
    check_event(b, CREATED, 1, gid, "team")
    a.done(ADD, gid, users=[4])
    for c in (a, b, d):                       # the added user too
        check_event(c, ADDED, 1, gid, "team", [4])
    assert a.members(gid) == {Member(1, True), Member(2, False), Member(4, False)}
    assert d.groups() == {gid: GroupInfo(gid, False, 3, b"team")}
    a.done(ADD, gid, users=[5, 0, 5, 6])      # 0 and repeats ignored
    for c in (a, b, d):
        ev = check_event(c, ADDED, 1, gid, "team")
        assert {5, 6} <= set(ev.users) <= {0, 5, 6}, ev
    assert {m.user for m in a.members(gid)} == {1, 2, 4, 5, 6}
    a.done(REMOVE, gid, users=[4, 5])
    for c in (a, b, d):                       # the removed user too
        check_event(c, REMOVED, 1, gid, "team", [4, 5])
    assert a.members(gid) == {Member(1, True), Member(2, False), Member(6, False)}
    assert d.groups() == {}
    assert d.refused(MEMBERS, gid).code == E_GROUP


def test_only_admins_rename_add_and_remove(srv):
    a, b = gdev(srv, 1), gdev(srv, 2)
    gid = a.create("team", [2, 3])
    before = a.members(gid)
    for op, kw in [(RENAME, {"name": "mine"}), (ADD, {"users": [5]}),
                   (REMOVE, {"users": [3]}), (REMOVE, {"users": [1]})]:
        e = b.refused(op, gid, **kw)
        assert e.code == E_GROUP, e
    assert b.members(gid) == before
    assert a.groups()[gid].name == b"team"
    b.events.clear()
    a.events.clear()
    no_events(a, b)                           # refused: nothing to tell


@pytest.mark.parametrize("op,kw", [
    (RENAME, {"name": "x"}), (ADD, {"users": [9]}), (REMOVE, {"users": [2]}),
    (LEAVE, {}), (MEMBERS, {})], ids=["rename", "add", "remove", "leave", "members"])
def test_a_non_member_and_no_such_group_are_refused(srv, op, kw):
    a = gdev(srv, 1)
    gid = a.create("team", [2])
    outsider = gdev(srv, 9)
    e1 = outsider.refused(op, gid, **kw)
    e2 = a.refused(op, NO_GROUP, **kw)
    assert e1.code == e2.code == E_GROUP
    assert e1.reason != e2.reason.replace(str(NO_GROUP), str(gid)), \
        "'not a member' and 'no such group' give the same reason"
    assert a.members(gid) == {Member(1, True), Member(2, False)}
    assert outsider.sync() == []


# -- LEAVE -------------------------------------------------------------------------

def test_remove_of_oneself_is_leave_for_any_member(srv):
    a, b = gdev(srv, 1), gdev(srv, 2)
    gid = a.create("team", [2, 3])
    b.done(REMOVE, gid, users=[2])            # not an admin: allowed for itself
    check_event(a, CREATED, 1, gid, "team")
    check_event(a, REMOVED, 2, gid, "team", [2])   # told as a removal
    assert a.members(gid) == {Member(1, True), Member(3, False)}
    assert b.groups() == {}


def test_leave_is_told_and_the_last_admin_makes_the_longest_standing_member_admin(srv):
    a = gdev(srv, 1)
    gid = a.create("succession")
    for u in (9, 4, 7):                       # 9 has stood longest, then 4, then 7
        a.done(ADD, gid, users=[u])
    d9, d4 = gdev(srv, 9), gdev(srv, 4)
    a.done(LEAVE, gid)
    for c in (d9, d4):
        check_event(c, LEFT, 1, gid, "succession", [1])
    assert d4.members(gid) == {Member(9, True), Member(4, False), Member(7, False)}
    assert d4.refused(ADD, gid, users=[5]).code == E_GROUP
    d9.done(ADD, gid, users=[5])              # 9 is an admin now
    assert a.groups() == {}
    assert a.refused(MEMBERS, gid).code == E_GROUP


def test_the_last_member_leaving_deletes_the_group(srv):
    a, b = gdev(srv, 1), gdev(srv, 2)
    gid = a.create("short-lived", [2])
    other = a.create("other", [])             # exists, 2 is not in it
    b.done(LEAVE, gid)
    a.done(LEAVE, gid)
    assert a.groups() == {other: GroupInfo(other, True, 1, b"other")}
    gone = a.refused(MEMBERS, gid)
    never = a.refused(MEMBERS, NO_GROUP)
    not_member = b.refused(MEMBERS, other)
    assert gone.reason == never.reason.replace(str(NO_GROUP), str(gid)), \
        f"MEMBERS of a deleted group: {gone.reason!r}; of no group: {never.reason!r}"
    assert not_member.reason != never.reason.replace(str(NO_GROUP), str(other))
    a.post_group(gid, TEXT, b"to nobody")
    errors = a.wait_acked()
    assert [(e.code, e.ref) for e in errors] == [(E_GROUP, 1)], errors
    assert a.refused(ADD, gid, users=[1]).code == E_GROUP


def test_the_last_admin_removing_itself_is_leave(srv):
    """REMOVE of oneself is LEAVE, for an admin too: the last admin's makes
    the longest-standing member an admin, the last member's deletes the
    group."""
    a = gdev(srv, 1)
    gid = a.create("handover")
    for u in (9, 4):                          # 9 has stood longest
        a.done(ADD, gid, users=[u])
    a.done(REMOVE, gid, users=[1])
    assert a.groups() == {}
    d9, d4 = gdev(srv, 9), gdev(srv, 4)
    assert d4.members(gid) == {Member(9, True), Member(4, False)}
    d4.done(REMOVE, gid, users=[4])
    d9.done(REMOVE, gid, users=[9])
    gone = a.refused(MEMBERS, gid)
    never = a.refused(MEMBERS, NO_GROUP)
    assert gone.reason == never.reason.replace(str(NO_GROUP), str(gid)), \
        f"MEMBERS of a deleted group: {gone.reason!r}; of no group: {never.reason!r}"


# -- --max-group-members ----------------------------------------------------------------

@pytest.fixture
def small(start_store_server):
    return start_store_server("--max-group-members", "3")


def test_a_group_never_has_more_than_max_group_members(small):
    a = gdev(small, 1)
    assert a.refused(CREATE, 0, "four", [2, 3, 4]).code == E_GROUP
    assert a.groups() == {}
    gid = a.create("three", [2, 3])
    assert a.refused(ADD, gid, users=[4]).code == E_GROUP
    assert a.refused(ADD, gid, users=[4, 5]).code == E_GROUP
    assert {m.user for m in a.members(gid)} == {1, 2, 3}
    gdev(small, 3).done(LEAVE, gid)
    a.done(ADD, gid, users=[4])               # room again
    assert {m.user for m in a.members(gid)} == {1, 2, 4}


def test_repeated_ids_do_not_count_against_max_group_members(small):
    a = gdev(small, 1)
    gid = a.create("three", [2, 3] * 20 + [1, 0] * 5)
    assert {m.user for m in a.members(gid)} == {1, 2, 3}


def test_a_long_list_over_max_group_members_is_refused_not_malformed(small):
    """Too many members is an ERROR GROUP reason: the request is refused,
    the connection stays, whatever the length of the list."""
    a = gdev(small, 1)
    assert a.refused(CREATE, 0, "crowd", list(range(2, 42))).code == E_GROUP
    gid = a.create("three", [2])
    assert a.refused(ADD, gid, users=list(range(10, 50))).code == E_GROUP
    assert a.members(gid) == {Member(1, True), Member(2, False)}


def test_max_group_members_is_1024_by_default(srv):
    a = gdev(srv, 1)
    assert a.refused(CREATE, 0, "crowd", list(range(2, 1026))).code == E_GROUP
    gid = a.create("full", list(range(2, 1025)))    # 1,024 with its creator
    assert len(a.members(gid)) == 1024
    assert a.refused(ADD, gid, users=[1025]).code == E_GROUP
    assert len(a.members(gid)) == 1024


@pytest.mark.parametrize("value", ["0", "4097", "many"])
def test_max_group_members_outside_1_to_4096_stops_the_start(tmp_path, value):
    try:
        r = subprocess.run([require_binary(), "--port", "0", "--data-dir", str(tmp_path),
                            "--max-group-members", value],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail(f"--max-group-members {value}: the server started")
    assert r.returncode != 0 and "--max-group-members" in r.stderr, (r.returncode, r.stderr)


@pytest.mark.parametrize("limit", [1, 4096])
def test_max_group_members_takes_1_to_4096(start_store_server, limit):
    s = start_store_server("--max-group-members", str(limit))
    a = gdev(s, 1)
    others = list(range(2, limit + 1))
    gid = a.create("at the limit", others)
    assert len(a.members(gid)) == limit
    assert a.refused(ADD, gid, users=[limit + 1]).code == E_GROUP


# -- group messages ------------------------------------------------------------------------

def test_a_group_message_reaches_every_device_of_every_member(srv):
    laptop, phone = gdev(srv, 1, "laptop"), gdev(srv, 1, "phone")
    own_default = plain(srv, 1)               # the author's default device
    p2, t2 = gdev(srv, 2, "phone"), gdev(srv, 2, "tablet")
    w = plain(srv, 8)
    art3 = article(srv, 3, w)                 # the article's client
    bare4 = plain(srv, 4, flags=0)            # HELLO without CONV or ACKS
    outsider = device(srv, 9, "phone")
    gid = laptop.create("all", [2, 3, 4])
    sent = [(TEXT, "ünïcode ✓".encode()), (PICTURE, PICTURE_BYTES), (VOICE, b"v" * 3000),
            (VIDEO, b"")]
    t0 = now_ms()
    for i, (kind, body) in enumerate(sent):
        laptop.post_group(gid, kind, body, cid=i + 1)
    laptop.acked()
    got = {c: c.read_msgs(4) for c in (phone, p2, t2)}
    t1 = now_ms()
    ids = [m.id for m in got[phone]]
    assert ids == sorted(set(ids)), ids
    for c, msgs in got.items():
        flags = GROUP_FLAG | (OWN if c is phone else 0)
        assert [(m.sender, m.to, m.flags, m.kind, m.payload) for m in msgs] == \
            [(1, gid, flags, k, p) for k, p in sent], f"user {c.user}"
        assert [m.id for m in msgs] == ids, "one message, several ids"
        assert all(t0 - CLOCK_SLACK_MS <= m.time <= t1 + CLOCK_SLACK_MS for m in msgs)
    for c in (art3, bare4):
        assert [(f.sender, f.type, f.body) for f in c.read_bare(4)] == \
            [(1, k, p) for k, p in sent]
    # The sending device and the author's default device get no copy, the
    # outsider nothing; no member gets one twice.
    marker(w, 1, laptop, phone, own_default)
    marker(w, 9, outsider)
    group_marker(laptop, gid, phone, p2, t2, art3, bare4)


def test_any_member_posts_and_the_others_get_it(srv):
    a = gdev(srv, 1)
    b2 = gdev(srv, 2)
    gid = a.create("talk", [2, 3])
    c3 = gdev(srv, 3)
    b2.post_group(gid, TEXT, b"from two", cid=9)
    b2.acked()
    for c in (a, c3):
        m = c.read_msg()
        assert (m.sender, m.to, m.flags, m.payload) == (2, gid, GROUP_FLAG, b"from two"), m
    group_marker(b2, gid, a, c3)


def test_offline_members_get_group_messages_when_they_connect(srv):
    a = gdev(srv, 1, "laptop")
    gdev(srv, 2, "phone").close()             # seen, away
    gdev(srv, 2, "tablet").close()
    plain(srv, 4).close()                     # a default device with ACKS, away
    gid = a.create("offline", [2, 3, 4])      # 3 has no device yet
    bodies = [b"while away %d" % i for i in range(3)]
    for i, body in enumerate(bodies):
        a.post_group(gid, TEXT, body, cid=i + 1)
    a.acked()
    devs = [gdev(srv, user, name) for user, name in [(2, "phone"), (2, "tablet"), (3, "pc")]]
    d4 = plain(srv, 4)
    ids = None
    for d in devs:
        msgs = d.read_msgs(3)
        assert [(m.sender, m.to, m.flags, m.payload) for m in msgs] == \
            [(1, gid, GROUP_FLAG, b) for b in bodies], f"user {d.user}"
        ids = ids or [m.id for m in msgs]
        assert [m.id for m in msgs] == ids, "one message, several ids"
        d.ack()
    assert [(f.sender, f.body) for f in d4.read_bare(3)] == [(1, b) for b in bodies]
    d4.ack()
    group_marker(a, gid, *devs, d4)


def test_only_members_post_to_a_group(srv):
    a = gdev(srv, 1)
    b = gdev(srv, 2)
    gid = a.create("closed", [2])
    outsider = gdev(srv, 9)
    outsider.send_data(2, TEXT, b"one")                   # 1
    outsider.post_group(gid, TEXT, b"intruder", cid=5)    # 2: not a member
    outsider.post_group(NO_GROUP, TEXT, b"nowhere")       # 3: no such group
    outsider.send_data(2, TEXT, b"four")                  # 4
    errors = outsider.wait_acked(4)
    assert [(e.code, e.ref) for e in errors] == [(E_GROUP, 2), (E_GROUP, 3)], errors
    assert [(m.payload, m.flags) for m in b.read_msgs(2)] == [(b"one", 0), (b"four", 0)]
    group_marker(a, gid, b)                   # the intruder's post never came
    assert a.sync() == []


def test_a_client_id_is_delivered_once_in_a_group(srv):
    a, b = gdev(srv, 1), gdev(srv, 2)
    gid = a.create("once", [2])
    a.post_group(gid, TEXT, b"once", cid=77)
    a.post_group(gid, TEXT, b"once", cid=77)
    a.acked()
    a.close()
    a = gdev(srv, 1)                          # the same device again
    a.post_group(gid, TEXT, b"once", cid=77)
    a.acked()
    assert payload(b.read_msg()) == b"once"
    group_marker(a, gid, b)


def team_with_an_away_tablet(srv):
    """Group "team" of 1 (laptop), 2 (a live phone, a tablet seen and away)
    and 3; "before" posted and read by the phone and 3. Returns (a, live,
    gid, c3)."""
    a = gdev(srv, 1, "laptop")
    live = gdev(srv, 2, "phone")
    gdev(srv, 2, "tablet").close()            # seen, away
    gid = a.create("team", [2, 3])
    c3 = gdev(srv, 3)
    a.post_group(gid, TEXT, b"before", cid=1)
    a.acked()
    assert payload(live.read_msg()) == b"before"
    assert payload(c3.read_msg()) == b"before"
    return a, live, gid, c3


def test_a_removed_member_gets_nothing_more(srv):
    a, live, gid, c3 = team_with_an_away_tablet(srv)
    a.done(REMOVE, gid, users=[2])
    check_event(live, CREATED, 1, gid, "team", [2, 3])
    check_event(live, REMOVED, 1, gid, "team", [2])
    a.post_group(gid, TEXT, b"after 1", cid=2)
    a.post_group(gid, TEXT, b"after 2", cid=3)
    a.acked()
    assert [payload(m) for m in c3.read_msgs(2)] == [b"after 1", b"after 2"]
    tablet = gdev(srv, 2, "tablet")
    # Neither "after" for the live phone; nothing for the tablet: not what
    # came after, nor "before", which it had not fetched when 2 was removed.
    marker(plain(srv, 8), 2, live, tablet)
    live.post_group(gid, TEXT, b"not a member")
    assert [(e.code, e.ref) for e in live.wait_acked()] == [(E_GROUP, 1)]
    # Added again: what comes from then on, not what came between.
    a.done(ADD, gid, users=[2])
    group_marker(a, gid, live, tablet, c3)


def test_a_member_that_leaves_gets_nothing_more(srv):
    """As for a removed member: nothing posted after it left, on any
    device, nor what its away device had not fetched."""
    a, live, gid, c3 = team_with_an_away_tablet(srv)
    live.done(LEAVE, gid)
    a.post_group(gid, TEXT, b"after", cid=2)
    a.acked()
    assert payload(c3.read_msg()) == b"after"
    tablet = gdev(srv, 2, "tablet")
    marker(plain(srv, 8), 2, live, tablet)
    live.post_group(gid, TEXT, b"gone")
    assert [(e.code, e.ref) for e in live.wait_acked()] == [(E_GROUP, 1)]


# -- membership changes racing messages -----------------------------------------------------
#
# The server orders every message (its id) and every membership change; a
# member gets exactly the group's messages between its addition and its
# removal in that order: a contiguous run of what a member that stayed got,
# the same on each of its devices. What the test can pin down from outside:
# a message posted on a connection before it sent the ADD (resp. after the
# answer came) is before (after) the change; one pipelined between the
# request and its answer may fall on either side.

def race(srv, members, change):
    """User 1 makes a group of `members` (3 among them: a member
    throughout), then, in one write, posts p0-p2, sends `change` (op on
    user 2, whose phone is connected) and posts q0-q2; after the answer,
    r0-r2 and "end". Returns (user 2's phone, the group, what 3 got, p, q,
    r)."""
    a = gdev(srv, 1, "laptop")
    c3 = gdev(srv, 3)
    live = gdev(srv, 2, "phone")
    gid = a.create("race", members)
    p, q, r = ([b"%s%d" % (x, i) for i in range(3)] for x in (b"p", b"q", b"r"))
    req = 900000
    frames = [c2s(1, gid, POST, post_body(TEXT, b, i + 1, GROUP_FLAG)) for i, b in enumerate(p)]
    frames.append(c2s(1, 0, GROUP_FRAME, group_body(change, req, gid, users=[2])))
    frames += [c2s(1, gid, POST, post_body(TEXT, b, 100 + i, GROUP_FLAG)) for i, b in enumerate(q)]
    a.send_raw(b"".join(frames))
    a.sent += len(p) + len(q)
    ans = a.reply(req)
    assert isinstance(ans, Groups) and ans.op == change, ans
    for i, body in enumerate(r + [b"end"]):
        a.post_group(gid, TEXT, body, cid=200 + i)
    a.acked()
    every = msgs_of(c3, gid, b"end")
    assert [m.payload for m in every] == p + q + r + [b"end"]
    return live, gid, every, p, q, r


def test_posts_pipelined_around_an_add_reach_the_new_members_devices_alike(srv):
    gdev(srv, 2, "tablet").close()            # the new member's other device, away
    live, gid, every, p, q, r = race(srv, [3], ADD)
    got_live = msgs_of(live, gid, b"end")
    run_of(every, got_live)
    assert not {m.payload for m in got_live} & set(p), \
        f"posted before the ADD was sent, yet delivered: {got_live}"
    assert set(r) <= {m.payload for m in got_live}, "posted after the answer, not delivered"
    tablet = gdev(srv, 2, "tablet")
    got_stored = msgs_of(tablet, gid, b"end")
    assert [(m.id, m.payload) for m in got_stored] == [(m.id, m.payload) for m in got_live], \
        "the new member's two devices got different messages of the group: " \
        f"live {[m.payload for m in got_live]}, stored {[m.payload for m in got_stored]}"


def test_posts_pipelined_around_a_remove_stop_at_one_point(srv):
    live, gid, every, p, q, r = race(srv, [2, 3], REMOVE)
    marker(plain(srv, 8), 2)                  # to the phone, after them all
    got = group_msgs_before_a_marker(live)
    assert run_of(every, got) == 0, f"not from the first message: {got}"
    assert set(p) <= {m.payload for m in got}, "posted before the REMOVE, not delivered"
    assert not {m.payload for m in got} & set(r + [b"end"]), \
        f"posted after the answer, delivered: {got}"


class Stream(threading.Thread):
    """Posts "w<n>" to a group, one frame per write, from its own thread,
    until stop() (at most LIMIT), so that a membership change made
    meanwhile falls amid them. started is set after the first STARTED."""

    STARTED, LIMIT = 20, 5000

    def __init__(self, conn, group, first):
        super().__init__(daemon=True)
        self.conn, self.group, self.first = conn, group, first
        self.bodies, self.exc = [], None
        self.started, self.halt = threading.Event(), threading.Event()
        self.start()

    def run(self):
        try:
            with self.conn.sock.dup() as sock:
                for n in range(self.first, self.first + self.LIMIT):
                    if self.halt.is_set():
                        break
                    body = b"w%d" % n
                    sock.sendall(c2s(self.conn.user, self.group, POST,
                                     post_body(TEXT, body, n, GROUP_FLAG)))
                    self.bodies.append(body)
                    if len(self.bodies) == self.STARTED:
                        self.started.set()
        except BaseException as e:   # reported by stop()
            self.exc = e
        self.started.set()

    def stop(self):
        """Stop; returns the bodies posted (the connection counts them)."""
        self.halt.set()
        self.join(10)
        assert not self.is_alive() and self.exc is None, f"stream failed: {self.exc!r}"
        self.conn.sent += len(self.bodies)
        return self.bodies


def test_a_member_added_and_removed_amid_a_stream_gets_one_unbroken_run(srv):
    a = gdev(srv, 1, "admin")
    writer = gdev(srv, 4, "laptop")
    c3 = gdev(srv, 3)
    u = gdev(srv, 2)
    gid = a.create("stream", [3, 4])

    def during(op):
        """A stream of posts with `op` on u made amid it."""
        st = Stream(writer, gid, writer.sent + 1)
        st.started.wait(10)
        a.done(op, gid, users=[2])
        return st.stop()

    def burst(count):
        bodies = [b"w%d" % n for n in range(writer.sent + 1, writer.sent + 1 + count)]
        writer.send_raw(b"".join(c2s(4, gid, POST, post_body(TEXT, b, int(b[1:]), GROUP_FLAG))
                                 for b in bodies))
        writer.sent += count
        writer.acked()
        return bodies

    b1 = during(ADD)
    b2 = burst(50)                            # after the ADD's answer, before the REMOVE
    b3 = during(REMOVE)
    b4 = burst(50)                            # after the REMOVE's answer
    every = msgs_of(c3, gid, b4[-1])
    assert [m.payload for m in every] == b1 + b2 + b3 + b4
    marker(plain(srv, 8), 2)
    got = group_msgs_before_a_marker(u)
    run_of(every, got)
    bodies = {m.payload for m in got}
    assert set(b2) <= bodies, "messages between the ADD's answer and the REMOVE missing"
    assert not bodies & set(b4), "messages after the REMOVE's answer delivered"


# -- deletion from the store (chat_stored_messages) ----------------------------------------

def test_a_group_message_is_deleted_once_every_members_device_has_it(msrv):
    s = msrv
    laptop, phone = gdev(s, 1, "laptop"), gdev(s, 1, "phone")
    p2, t2 = gdev(s, 2, "phone"), gdev(s, 2, "tablet")
    d3 = plain(s, 3)                          # a default device with ACKS
    gdev(s, 4, "phone").close()               # seen, away
    gid = laptop.create("deletion", [2, 3, 4])
    probe = StoreProbe(s, plain(s, 9))
    laptop.post_group(gid, TEXT, b"kept", cid=1)
    laptop.acked()
    wait_messages(s, 1)
    for c in (phone, p2, t2):
        assert payload(c.read_msg()) == b"kept"
    assert d3.read_bare(1)[0].body == b"kept"
    probe.start()
    for c in (p2, t2, d3):
        c.ack_sync()
    n, _ = probe.finish()
    assert n == 1, "deleted while user 4's phone and the author's phone lacked it"
    d4 = gdev(s, 4, "phone")
    assert payload(d4.read_msg()) == b"kept"
    probe.start()
    d4.ack_sync()
    n, _ = probe.finish()
    assert n == 1, "deleted while the author's other device lacked it"
    phone.ack_sync()
    wait_messages(s, 0)


def test_a_member_without_a_device_holds_messages_until_removed(msrv):
    s = msrv
    a = gdev(s, 1)
    b = gdev(s, 2)
    gid = a.create("held", [2, 5])            # 5 never connected
    probe = StoreProbe(s, plain(s, 9))
    a.post_group(gid, TEXT, b"for 5 too", cid=1)
    a.acked()
    assert payload(b.read_msg()) == b"for 5 too"
    probe.start()
    b.ack_sync()
    n, _ = probe.finish()
    assert n == 1, "deleted while user 5 had no device"
    a.done(REMOVE, gid, users=[5])
    wait_messages(s, 0)


def test_the_last_member_leaving_deletes_the_groups_messages(msrv):
    s = msrv
    a = gdev(s, 1)
    gid = a.create("gone", [5])
    a.post_group(gid, TEXT, b"unread", cid=1)
    a.acked()
    wait_messages(s, 1)
    a.done(LEAVE, gid)
    d5 = gdev(s, 5)
    assert payload(d5.read_msg()) == b"unread"   # read, never acknowledged
    d5.done(LEAVE, gid)
    wait_messages(s, 0)


def test_group_messages_do_not_count_against_the_offline_quota(start_store_server):
    s = start_store_server("--offline-max-messages", "2")
    a = gdev(s, 1)
    gdev(s, 2).close()
    gid = a.create("quota", [2])
    for i in range(5):
        a.post_group(gid, TEXT, b"q%d" % i, cid=i + 1)
    a.acked()                                 # no ERROR QUOTA
    b = gdev(s, 2)
    assert [payload(m) for m in b.read_msgs(5)] == [b"q%d" % i for i in range(5)]


def test_group_messages_are_kept_for_history_ttl(start_store_server):
    """Kept until every device of every member has it and --history-ttl
    has passed: then deleted, as a 1:1 message is (test_devices.py:
    test_history_ttl_keeps_acknowledged_messages_that_long)."""
    s = start_store_server("--http-port", "auto", "--history-ttl", "1s")
    a, b = gdev(s, 1), gdev(s, 2)
    gid = a.create("kept a while", [2])
    sent = time.monotonic()
    a.post_group(gid, TEXT, b"kept", cid=1)
    a.acked()
    assert payload(b.read_msg()) == b"kept"
    b.ack_sync()
    deleted = wait_messages(s, 0, timeout=5)
    assert deleted - sent >= 1.0, f"deleted {deleted - sent:.2f} s after it was sent"


def test_offline_ttl_purges_group_messages(start_store_server):
    s = start_store_server("--offline-ttl", "1s")
    a = gdev(s, 1)
    gdev(s, 2).close()                        # seen, away
    gid = a.create("expiring", [2])
    a.post_group(gid, TEXT, b"expires", cid=1)
    a.acked()
    s.wait_for_log("purged", timeout=5)
    b = gdev(s, 2)
    group_marker(a, gid, b)


def test_the_authors_device_has_its_group_message_once_it_has_what_came_before(msrv):
    """The author's device is counted as having its own group message once
    it has everything before it: here it lacked m0 when it posted; once it
    acknowledges m0, nothing holds the group message back."""
    s = msrv
    laptop, b = gdev(s, 1, "laptop"), gdev(s, 2)
    gid = laptop.create("floor", [2])
    w = plain(s, 9)
    w.send_data(1, TEXT, b"m0")
    w.acked()
    assert payload(laptop.read_msg()) == b"m0"     # read, not acknowledged
    laptop.post_group(gid, TEXT, b"g", cid=1)
    laptop.acked()
    assert payload(b.read_msg()) == b"g"
    b.ack_sync()
    wait_messages(s, 2)                            # m0, and g: the laptop lacks m0
    laptop.ack_sync()
    wait_messages(s, 0)


# -- restarts -------------------------------------------------------------------------------

def test_groups_and_their_messages_survive_sigkill_and_restart(start_store_server):
    s = start_store_server()
    a = gdev(s, 1)
    gdev(s, 2).close()                        # seen, away
    g1 = a.create("first", [2, 3])
    g2 = a.create("second ✓", [4])
    a.done(RENAME, g1, "renamed")
    a.done(ADD, g1, users=[5])
    a.done(REMOVE, g1, users=[3])
    a.post_group(g1, TEXT, b"stored 1", cid=1)
    a.post_group(g1, PICTURE, PICTURE_BYTES, cid=2)
    a.acked()
    before = (a.groups(), a.members(g1), a.members(g2))
    assert before[0] == {g1: GroupInfo(g1, True, 3, b"renamed"),
                         g2: GroupInfo(g2, True, 2, "second ✓".encode())}
    assert s.kill() == -signal.SIGKILL
    s = start_store_server()
    a = gdev(s, 1)
    assert (a.groups(), a.members(g1), a.members(g2)) == before
    b = gdev(s, 2)
    msgs = b.read_msgs(2)
    assert [(m.sender, m.to, m.flags, m.kind, m.payload) for m in msgs] == \
        [(1, g1, GROUP_FLAG, TEXT, b"stored 1"), (1, g1, GROUP_FLAG, PICTURE, PICTURE_BYTES)]
    b.ack()
    group_marker(a, g1, b)
    assert a.create("third") not in (g1, g2), "a group id given twice"
    c3 = gdev(s, 3)
    c3.post_group(g1, TEXT, b"removed before the kill")
    assert [(e.code, e.ref) for e in c3.wait_acked()] == [(E_GROUP, 1)]


def test_the_longest_standing_member_is_remembered_across_a_restart(start_store_server):
    """9 was added before 4 (no message between the two ADDs): after a
    restart, 9 is still the longest-standing member."""
    s = start_store_server()
    a = gdev(s, 1)
    gid = a.create("succession")
    a.done(ADD, gid, users=[9])
    a.done(ADD, gid, users=[4])
    a.close()
    assert s.terminate() == 0, s.log()
    s = start_store_server()
    a = gdev(s, 1)
    a.done(LEAVE, gid)
    assert gdev(s, 4).members(gid) == {Member(9, True), Member(4, False)}


# -- malformed and misplaced GROUP frames -------------------------------------------------------

def _pre(op, group=0):
    return group_body(op, 7, group)


MALFORMED = {
    "empty body": b"",
    "8 bytes": bytes(8),
    "op 0": _pre(0),
    "op 8 (EVENT)": _pre(8),
    "op 9": _pre(9),
    "op 255": _pre(255),
    "CREATE: name past the body": _pre(CREATE) + b"\x0aabc",
    "CREATE: no count": _pre(CREATE) + b"\x03abc",
    "CREATE: count past the body": _pre(CREATE) + b"\x03abc" + b"\x00\x03" + bytes(4),
    "CREATE: half a user id": _pre(CREATE) + b"\x03abc" + b"\x00\x01" + bytes(2),
    "RENAME: name past the body": _pre(RENAME, 1) + b"\x05ab",
    "ADD: no count": _pre(ADD, 1),
    "ADD: count past the body": _pre(ADD, 1) + b"\x00\x02" + bytes(4),
    "REMOVE: count past the body": _pre(REMOVE, 1) + b"\xff\xff" + bytes(8),
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_group_frame_is_a_protocol_error(srv, body):
    a = gdev(srv, 1, "laptop")
    gid = a.create("target", [2])             # group 1 or later: ops name a real one
    assert gid >= 1
    b = gdev(srv, 2)
    a.post_group(gid, TEXT, b"before")
    a.send_frame(1, 0, GROUP_FRAME, body)
    e = a.expect_error(PROTO)
    assert e.ref == 0, e
    a.expect_eof()
    assert payload(b.read_msg()) == b"before"
    a = gdev(srv, 1, "laptop")                # the server goes on, nothing changed
    assert a.groups() == {gid: GroupInfo(gid, True, 2, b"target")}
    group_marker(a, gid, b)


@pytest.mark.parametrize("kind", ["hello", "conv refused"])
def test_group_without_conv_is_badtype_and_skipped(start_store_server, kind):
    if kind == "hello":
        s = start_store_server()
        c = plain(s, 1)                       # HELLO without CONV
    else:
        s = start_store_server("--echo")      # never grants CONV
        c = connect(s)
        assert not c.hello_conv(1, "phone", flags=CONV_FLAG).flags & CONV_FLAG
    c.send_frame(1, 0, GROUP_FRAME, group_body(CREATE, 5, 0, "nope", [2]))
    e = c.expect_error(BADTYPE)
    assert e.ref == 0, e
    assert c.sync() == []                     # skipped; the connection stays
    if kind == "hello":
        assert gdev(s, 1).groups() == {}
