"""History (docs/PROTOCOL.md, "History"): HISTORY requests read a
conversation with a user, or a group's since the asker joined, newest
first, a page at a time, within --history-ttl; nothing without it.

Users: 1 and 2 talk; 3 and up are others. Every CONV connection is a
GroupClient (convproto), which sets pages aside from the deliveries.
"""

import sqlite3
import time

import pytest

from convproto import (ADD, DEVICE, E_GROUP, GROUP_FLAG, HISTORY_FRAME,
                       HISTORY_HEAD, LEAVE, NO_GROUP, OWN, REMOVE, WITH_GROUP,
                       WITH_USER, Entry, Page, group_device, history_body,
                       marker, now_ms, payload, plain)
from proto import BADTYPE, PICTURE, PROTO, TEXT, VOICE, c2s
from test_devices import CLOCK_SLACK_MS

PAGE_BYTES = 256 * 1024        # "about 256 KiB of payload" a page


@pytest.fixture
def hsrv(start_store_server):
    return start_store_server("--history-ttl", "1h")


def gdev(srv, user, name="phone", flags=DEVICE):
    return group_device(srv, user, name, flags)


def entries(pages):
    return [e for p in pages for e in p.entries]


def as_entry(m, asker):
    """The history entry a delivered MSG m should have for user `asker`."""
    own = OWN if m.sender == asker else 0
    return Entry(m.id, m.sender, m.kind, (m.flags & GROUP_FLAG) | own, m.to, m.time, m.payload)


def talk(srv):
    """1 and 2 write to each other, from several devices and a bare client,
    and to and from 3; returns (1's phone, 2's phone, the conversation of
    1 and 2 as MSGs, in id order)."""
    p1, p2 = gdev(srv, 1), gdev(srv, 2)
    laptop1 = gdev(srv, 1, "laptop")
    bare2 = plain(srv, 2)                          # 2's default device
    d3 = gdev(srv, 3)
    script = [(laptop1, 2, TEXT, b"hello two"), (p2, 1, TEXT, b"hi one"),
              (p2, 3, TEXT, b"(to three)"), (laptop1, 2, PICTURE, bytes(range(256)) * 8),
              (bare2, 1, VOICE, b"from the default device"), (d3, 1, TEXT, b"(three to one)"),
              (p2, 1, TEXT, "ünïcode ✓".encode()), (laptop1, 2, TEXT, b"")]
    for cid, (conn, to, kind, body) in enumerate(script, 1):
        if conn is bare2:
            conn.send_data(to, kind, body)
        else:
            conn.post(to, kind, body, cid)
        conn.acked()
    # Every message of 1 reaches p1 (own ones too, as OWN): p1 sees them all.
    got = p1.read_msgs(7)
    conv = [m for m in got if {m.sender, m.to} == {1, 2}]
    assert [m.payload for m in got if m not in conv] == [b"(three to one)"]
    assert payload(d3.read_msg()) == b"(to three)"
    return p1, p2, conv


# -- a conversation with a user ------------------------------------------------

def test_a_conversation_is_given_newest_first_in_both_directions(hsrv):
    t0 = now_ms()
    p1, p2, conv = talk(hsrv)
    t1 = now_ms()
    for asker, peer in [(p1, 2), (p2, 1)]:
        page = asker.history(WITH_USER, peer)
        assert isinstance(page, Page) and not page.more, page
        assert page.entries == [as_entry(m, asker.user) for m in reversed(conv)], \
            f"user {asker.user}'s history with {peer}"
        assert all(t0 - CLOCK_SLACK_MS <= e.time <= t1 + CLOCK_SLACK_MS for e in page.entries)


def test_pages_follow_before_and_limit_and_say_when_more_remain(hsrv):
    p1, _, conv = talk(hsrv)
    newest = [as_entry(m, 1) for m in reversed(conv)]
    for limit in (1, 2, 4, 6, 200):
        pages = p1.whole_history(WITH_USER, 2, limit)
        assert entries(pages) == newest, f"limit {limit}"
        assert [len(p.entries) for p in pages[:-1]] == [limit] * (len(pages) - 1), \
            f"limit {limit}: a page short of its limit before the last"
    # before: strictly older than that id, from anywhere in the conversation
    mid = newest[2].id
    page = p1.history(WITH_USER, 2, before=mid, limit=200)
    assert page.entries == newest[3:] and not page.more
    assert p1.history(WITH_USER, 2, before=mid + 1, limit=200).entries == newest[2:]
    page = p1.history(WITH_USER, 2, before=newest[-1].id, limit=200)
    assert page == Page(page.req, False, []), page
    page = p1.history(WITH_USER, 2, before=0, limit=6)
    assert page.entries == newest and not page.more, "6 of 6: nothing more"


def test_a_conversation_without_messages_is_an_empty_page(hsrv):
    p1, _, _ = talk(hsrv)
    page = p1.history(WITH_USER, 99)
    assert (page.more, page.entries) == (False, [])


def test_the_answer_echoes_req_and_pipelined_requests_are_answered_each(hsrv):
    p1, _, conv = talk(hsrv)
    asks = [(0xFFFFFFFF, 1), (0, 2), (77, 3)]
    p1.send_raw(b"".join(c2s(1, 0, HISTORY_FRAME, history_body(req, WITH_USER, 2, 0, lim))
                         for req, lim in asks))
    for req, lim in asks:
        page = p1.reply(req)
        assert isinstance(page, Page) and page.req == req, page
        assert [e.id for e in page.entries] == [m.id for m in reversed(conv)][:lim]


def test_history_neither_acknowledges_nor_moves_a_cursor(hsrv):
    a = gdev(hsrv, 1)
    gdev(hsrv, 2).close()                              # seen, away
    a.post(2, TEXT, b"unread 1", cid=1)
    a.post(2, TEXT, b"unread 2", cid=2)
    a.acked()
    b = gdev(hsrv, 2)
    got = b.read_msgs(2)
    page = b.history(WITH_USER, 1)
    assert [e.id for e in page.entries] == [m.id for m in reversed(got)]
    b.close()                                          # never acknowledged
    b = gdev(hsrv, 2)
    assert b.read_msgs(2) == got, "the history moved the device's cursor"
    b.history(WITH_USER, 1)
    b.ack_sync(2)                                      # two MSGs; the page is not counted
    b.ack(3)
    assert b.expect_error(PROTO).ref == 0
    b.expect_eof()


def test_a_page_holds_about_256_kib_of_payload_and_at_least_one_message(hsrv):
    a = gdev(hsrv, 1)
    b = gdev(hsrv, 2)
    sizes = [300 * 1024, 100 * 1024, 100 * 1024, 100 * 1024, 100 * 1024]
    for i, n in enumerate(sizes):
        a.post(2, PICTURE, bytes([i]) * n, cid=i + 1)
    a.acked()
    msgs = b.read_msgs(5)
    pages = a.whole_history(WITH_USER, 2, 200)
    assert entries(pages) == [as_entry(m, 1) for m in reversed(msgs)]
    for p in pages:
        assert p.entries, "an empty page"
        assert sum(len(e.payload) for e in p.entries[:-1]) < PAGE_BYTES, \
            f"a page went on past {PAGE_BYTES} bytes: {[len(e.payload) for e in p.entries]}"
    assert len(pages) >= 2, f"pages of {[len(p.entries) for p in pages]} messages"
    first_big = a.history(WITH_USER, 2, before=msgs[1].id, limit=200)
    assert [len(e.payload) for e in first_big.entries] == [300 * 1024]


# -- a group ---------------------------------------------------------------------

def test_a_groups_history_is_for_members_since_they_joined(hsrv):
    a, b = gdev(hsrv, 1), gdev(hsrv, 2)
    gid = a.create("history", [2])
    a.post_group(gid, TEXT, b"g1", cid=1)
    b.post_group(gid, TEXT, b"g2", cid=2)
    a.post(2, TEXT, b"not the group's", cid=3)
    a.acked()
    b.acked()
    a.done(ADD, gid, users=[3])
    c = gdev(hsrv, 3)
    a.post_group(gid, PICTURE, b"g3", cid=4)
    c.post_group(gid, TEXT, b"g4", cid=5)
    a.acked()
    c.acked()
    every = b.read_msgs(4)                     # g1, the 1:1, g3, g4
    group = [m for m in every if m.flags & GROUP_FLAG]
    assert [m.payload for m in group] == [b"g1", b"g3", b"g4"]
    g2 = a.read_msg()
    assert g2.payload == b"g2"
    group = sorted(group + [g2], key=lambda m: m.id)
    for asker in (a, b):
        page = asker.history(WITH_GROUP, gid)
        assert page.entries == [as_entry(m, asker.user) for m in reversed(group)]
        assert not page.more
    page = c.history(WITH_GROUP, gid)
    assert page.entries == [as_entry(m, 3) for m in reversed(group[2:])], \
        "a member's group history reaches back before it joined"
    # The group's messages are not in the conversation of 1 and 2.
    assert [e.payload for e in b.history(WITH_USER, 1).entries] == [b"not the group's"]
    # Not a member, no such group, removed, left: ERROR GROUP, ref = req.
    d = gdev(hsrv, 9)
    for asker, group_id in [(d, gid), (d, NO_GROUP)]:
        e = asker.history(WITH_GROUP, group_id, req=4242)
        assert (e.code, e.ref) == (E_GROUP, 4242), e
    a.done(REMOVE, gid, users=[3])
    assert c.history(WITH_GROUP, gid).code == E_GROUP
    b.done(LEAVE, gid)
    assert b.history(WITH_GROUP, gid).code == E_GROUP
    a.done(ADD, gid, users=[2])                # back: from now on only
    assert b.history(WITH_GROUP, gid).entries == []
    a.post_group(gid, TEXT, b"g5", cid=6)
    a.acked()
    assert [e.payload for e in b.history(WITH_GROUP, gid).entries] == [b"g5"]
    assert d.sync() == []


def test_history_survives_sigkill_and_restart(start_store_server):
    s = start_store_server("--history-ttl", "1h")
    a, b = gdev(s, 1), gdev(s, 2)
    gid = a.create("kept", [2])
    a.post(2, TEXT, b"direct", cid=1)
    a.post_group(gid, TEXT, b"before 3", cid=2)
    a.acked()
    a.done(ADD, gid, users=[3])
    a.post_group(gid, TEXT, b"after 3", cid=3)
    a.acked()
    b.read_msgs(3)
    b.ack_sync()                               # delivered everywhere: kept for history
    before = [(a.history(WITH_USER, 2).entries, a.history(WITH_GROUP, gid).entries)]
    assert [e.payload for e in before[0][1]] == [b"after 3", b"before 3"]
    assert s.kill() < 0
    s = start_store_server("--history-ttl", "1h")
    a = gdev(s, 1)
    assert [(a.history(WITH_USER, 2).entries, a.history(WITH_GROUP, gid).entries)] == before
    c = gdev(s, 3)
    assert [e.payload for e in c.history(WITH_GROUP, gid).entries] == [b"after 3"], \
        "after a restart, a member's group history reaches back before it joined"


# -- --history-ttl -----------------------------------------------------------------

def test_without_history_ttl_pages_are_empty(start_store_server):
    s = start_store_server()
    a = gdev(s, 1)
    gdev(s, 2).close()                         # away: the messages stay stored
    gid = a.create("no history", [2])
    a.post(2, TEXT, b"stored", cid=1)
    a.post_group(gid, TEXT, b"stored too", cid=2)
    a.acked()
    for kind, peer in [(WITH_USER, 2), (WITH_GROUP, gid)]:
        page = a.history(kind, peer)
        assert (page.more, page.entries) == (False, []), page
    b = gdev(s, 2)
    assert [m.payload for m in b.read_msgs(2)] == [b"stored", b"stored too"]
    assert b.history(WITH_USER, 1).entries == []


def test_messages_older_than_history_ttl_are_not_given(start_store_server):
    s = start_store_server("--history-ttl", "1s")
    a, b = gdev(s, 1), gdev(s, 2)
    sent = time.monotonic()
    a.post(2, TEXT, b"old", cid=1)
    a.acked()
    old = b.read_msg()
    b.ack_sync()
    assert [e.payload for e in a.history(WITH_USER, 2).entries] == [b"old"]
    # Ask again until "old" is gone; a fresh message is there each time.
    for i in range(2, 200):
        a.post(2, TEXT, b"new %d" % i, cid=i)
        a.acked()
        b.read_msg()
        got = [e.payload for e in a.history(WITH_USER, 2).entries]
        assert got[0] == b"new %d" % i, got
        if b"old" not in got:
            break
        assert time.monotonic() - sent < 5, "still given 5 s after a --history-ttl of 1 s"
        time.sleep(0.05)
    else:
        pytest.fail("the old message was always given")
    assert time.monotonic() - sent >= 1.0, "gone before --history-ttl passed"
    assert old.id not in [e.id for e in b.history(WITH_USER, 1).entries]


def test_with_history_ttl_messages_of_clients_without_acks_are_kept(start_store_server):
    """With --history-ttl every message is written to the store, even one
    between connections that would need none (no ACKS, no CONV, both
    live): the conversation's history has it."""
    s = start_store_server("--history-ttl", "1h")
    one, two = plain(s, 1, flags=0), plain(s, 2, flags=0)
    marker(plain(s, 5), 2, two)              # two is live: what follows goes to it live
    marker(plain(s, 5), 1, one)
    one.send_data(2, TEXT, b"bare to bare")
    assert payload(two.next_delivery()) == b"bare to bare"
    two.send_data(1, TEXT, b"and back")
    assert payload(one.next_delivery()) == b"and back"
    page = gdev(s, 1).history(WITH_USER, 2)
    assert [(e.sender, e.to, e.flags, e.payload) for e in page.entries] == \
        [(2, 1, 0, b"and back"), (1, 2, OWN, b"bare to bare")]


def _indexes(path):
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {n for (n,) in db.execute("SELECT name FROM sqlite_schema WHERE type = 'index'")}
    finally:
        db.close()


def test_the_history_index_is_made_with_history_ttl_and_dropped_without(start_store_server):
    """docs/OPERATIONS.md, --history-ttl: the index messages_conv is made
    at the first start with it set, and dropped at the first start
    without it; the history it serves is the same after a restart."""
    s = start_store_server()
    assert s.terminate() == 0, s.log()
    assert "messages_conv" not in _indexes(s.db_path)
    s = start_store_server("--history-ttl", "1h")
    a = gdev(s, 1)
    a.post(2, TEXT, b"indexed", cid=1)
    a.acked()
    assert s.terminate() == 0, s.log()
    assert "messages_conv" in _indexes(s.db_path)
    s = start_store_server("--history-ttl", "1h")   # made once: still there
    assert [e.payload for e in gdev(s, 1).history(WITH_USER, 2).entries] == [b"indexed"]
    assert s.terminate() == 0, s.log()
    assert "messages_conv" in _indexes(s.db_path)
    s = start_store_server()
    assert s.terminate() == 0, s.log()
    assert "messages_conv" not in _indexes(s.db_path)


# -- malformed and misplaced requests ------------------------------------------------

MALFORMED = {
    "empty": b"",
    "18 bytes": history_body(1, WITH_USER, 2)[:18],
    "20 bytes": history_body(1, WITH_USER, 2) + b"\0",
    "kind 0": history_body(1, 0, 2),
    "kind 3": history_body(1, 3, 2),
    "limit 0": history_body(1, WITH_USER, 2, limit=0),
    "limit 201": history_body(1, WITH_USER, 2, limit=201),
    "limit 65535": history_body(1, WITH_USER, 2, limit=65535),
    "peer 0": history_body(1, WITH_USER, 0),
    "group 0": history_body(1, WITH_GROUP, 0),
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_history_is_a_protocol_error(hsrv, body):
    assert HISTORY_HEAD.size == 19
    a = gdev(hsrv, 1)
    b = gdev(hsrv, 2)
    a.post(2, TEXT, b"before", cid=1)
    a.send_frame(1, 0, HISTORY_FRAME, body)
    e = a.expect_error(PROTO)
    assert e.ref == 0, e
    a.expect_eof()
    assert payload(b.read_msg()) == b"before"
    a = gdev(hsrv, 1)                          # the server goes on
    assert [e.payload for e in a.history(WITH_USER, 2).entries] == [b"before"]


def test_history_without_conv_is_badtype_and_skipped(hsrv):
    c = plain(hsrv, 1)
    c.send_frame(1, 0, HISTORY_FRAME, history_body(1, WITH_USER, 2))
    e = c.expect_error(BADTYPE)
    assert e.ref == 0, e
    assert c.sync() == []
    marker(plain(hsrv, 2), 1, c)
