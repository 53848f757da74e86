"""Receipts, typing and presence (docs/PROTOCOL.md, "Receipts, typing and
presence"): the SIGNALS flag, DELIVERED marks as receivers' devices confirm
messages, READ marks kept and passed on, QUERY, TYPING passed through,
PRESENCE subscriptions, their limits and refusals, malformed frames.

Users: 1 writes (its devices are SigClients), 2 and up receive. Absence is
always shown after a point the server provably reached: a PING answered
(SigClient.sync_signals) sent after the event that would have caused the
signal, or a marker delivery.
"""

import subprocess
import time

import pytest

from conftest import require_binary
from convproto import (ACKS_FLAG, CONV_FLAG, DEVICE, E_GROUP, article, connect,
                       device, marker, now_ms, payload, plain)
from proto import BADTYPE, PROTO, TEXT
from sigproto import (DELIVERED, E_DENIED, END, GROUP, PRESENCE, READ, SigClient,
                      RECEIPT, SIG_DEVICE, SIGNALS_FLAG, TYPING, UNSUBSCRIBE,
                      Posted, Presence, Rcpt, Typing, presence_body, receipt_body,
                      sig_device, typing_body)


@pytest.fixture
def srv(start_store_server):
    return start_store_server()


def delivered(conn):
    r = conn.next_signal(Rcpt)
    assert r.what == DELIVERED, r
    return r


def next_read(conn):
    """The next READ mark conn was sent (DELIVERED marks before it are
    skipped: how many come depends on how many devices confirmed)."""
    while True:
        r = conn.next_signal(Rcpt)
        if r.what == READ:
            return r
        assert r.what == DELIVERED, r


# -- the flag ----------------------------------------------------------------

def test_signals_is_granted_with_conv_only(srv):
    c = connect(srv)
    w = c.hello_conv(1, "phone", SIG_DEVICE)
    assert w.flags == SIG_DEVICE
    p = connect(srv)
    p.send_hello(2, ACKS_FLAG | SIGNALS_FLAG)   # no CONV: not granted
    assert p.welcome(2).flags == ACKS_FLAG


def test_signal_frames_from_a_connection_without_signals_are_badtype(srv):
    c = device(srv, 1, "phone", DEVICE)
    for t, body in ((RECEIPT, receipt_body(READ, 2, 1)), (TYPING, typing_body(2)),
                    (PRESENCE, presence_body(1, [2]))):
        c.send_frame(1, 0, t, body)
        assert c.expect_error(BADTYPE).ref == 0
    assert c.sync() == []


# -- DELIVERED ---------------------------------------------------------------

def test_delivered_comes_as_the_receiver_acknowledges_in_order(srv):
    a = sig_device(srv, 1)
    b = device(srv, 2, "phone")
    for i in range(3):
        a.post(2, TEXT, b"m%d" % i)
    a.acked()
    got = b.read_msgs(3)
    assert a.sync_signals() == [], "DELIVERED before the receiver acknowledged"
    for i, m in enumerate(got):
        b.ack(i + 1)
        r = delivered(a)
        assert r == Rcpt(DELIVERED, 0, 2, 2, m.id, r.time), r
        assert abs(r.time - now_ms()) < 5000
    b.ack_sync()
    assert a.sync_signals() == []


def test_delivered_for_an_article_receiver_once_written(srv):
    a = sig_device(srv, 1)
    w = plain(srv, 9)
    b = article(srv, 2, w)
    a.post(2, TEXT, b"to the article")
    a.acked()
    assert b.next_delivery().body == b"to the article"
    r = delivered(a)
    assert (r.conv, r.by) == (2, 2) and r.upto > 0


def test_delivered_when_an_offline_receiver_connects(srv):
    a = sig_device(srv, 1)
    a.post(2, TEXT, b"while you were away")
    a.acked()
    assert a.sync_signals() == []
    b = device(srv, 2, "phone")
    m = b.read_msg()
    b.ack()
    r = delivered(a)
    assert (r.conv, r.by, r.upto) == (2, 2, m.id)


def test_delivered_reaches_every_signals_device_of_the_author_only(srv):
    a1 = sig_device(srv, 1, "laptop")
    a2 = sig_device(srv, 1, "phone")
    a3 = device(srv, 1, "tablet", DEVICE)          # no SIGNALS
    b = device(srv, 2, "phone")
    a1.post(2, TEXT, b"hi")
    a1.acked()
    m = b.read_msg()
    assert a2.read_msg().flags & 1 and a3.read_msg().flags & 1   # own copies
    b.ack()
    for a in (a1, a2):
        assert delivered(a).upto == m.id
    marker(b, 1, a3)                # a3 never got a RECEIPT (its reads fail on one)


# -- READ and QUERY -----------------------------------------------------------

def test_read_goes_to_the_other_user_and_to_the_readers_other_devices(srv):
    a = sig_device(srv, 1)
    b1 = sig_device(srv, 2, "phone")
    b2 = sig_device(srv, 2, "laptop")
    a.post(2, TEXT, b"read me")
    a.acked()
    m = b1.read_msg()
    assert b2.read_msg().id == m.id
    b1.ack()
    b2.ack()
    b1.read_mark(1, m.id)
    r = next_read(a)
    assert r[:5] == (READ, 0, 2, 2, m.id), r
    r = next_read(b2)
    assert r[:5] == (READ, 0, 1, 2, m.id), r
    assert b1.sync_signals() == [], "the reader's own connection got its READ back"


def test_read_above_the_highest_id_is_lowered(srv):
    a = sig_device(srv, 1)
    b = sig_device(srv, 2)
    a.post(2, TEXT, b"x")
    a.acked()
    m = b.read_msg()
    b.ack()
    assert delivered(a).upto == m.id
    b.read_mark(1, 2**63)
    r = next_read(a)
    assert m.id <= r.upto < 2**63, r


def test_query_answers_the_marks_kept_while_the_author_was_away(srv):
    a = sig_device(srv, 1, "laptop")
    a.post(2, TEXT, b"one")
    a.post(2, TEXT, b"two")
    a.acked()
    a.close()
    b = sig_device(srv, 2)
    m1, m2 = b.read_msgs(2)
    b.ack()
    b.read_mark(1, m1.id)
    b.sync_signals()
    a = sig_device(srv, 1, "phone")   # another device, later
    marks = a.query(2)
    assert [(r.what, r.by) for r in marks] == [(DELIVERED, 2), (READ, 2), (READ, 1)], marks
    assert marks[0].upto >= m2.id and marks[1].upto == m1.id and marks[2].upto == 0
    assert marks[1].time > 0


def test_query_survives_a_restart(start_store_server):
    s = start_store_server()
    a = sig_device(s, 1)
    b = sig_device(s, 2)
    a.post(2, TEXT, b"kept")
    a.acked()
    m = b.read_msg()
    b.ack()
    b.read_mark(1, m.id)
    assert next_read(a).upto == m.id
    s.terminate()
    s = start_store_server()
    a = sig_device(s, 1)
    marks = a.query(2)
    assert [(r.what, r.upto) for r in marks[:2]] == [(DELIVERED, m.id), (READ, m.id)], marks


# -- groups ---------------------------------------------------------------------

def group_of_three(srv, *args):
    a = sig_device(srv, 1)
    b = sig_device(srv, 2)
    c = sig_device(srv, 3)
    g = a.create("three", [2, 3])
    b.next_event()
    c.next_event()
    return a, b, c, g


def test_group_receipts_per_member(srv):
    a, b, c, g = group_of_three(srv)
    a.post_group(g, TEXT, b"to all")
    a.acked()
    mb, mc = b.read_msg(), c.read_msg()
    assert mb.id == mc.id
    b.ack()
    r = delivered(a)
    assert (r.flags, r.conv, r.by, r.upto) == (GROUP, g, 2, mb.id)
    c.ack()
    r = delivered(a)
    assert (r.flags, r.conv, r.by) == (GROUP, g, 3)
    b.read_mark(g, mb.id, group=True)
    for x in (a, c):
        r = next_read(x)
        assert r[:5] == (READ, GROUP, g, 2, mb.id), r
    assert c.sync_signals() == [], "a DELIVERED went to a member, not the author"
    marks = a.query(g, group=True)
    by = {(r.what, r.by): r.upto for r in marks}
    assert by[(DELIVERED, 2)] >= mb.id and by[(DELIVERED, 3)] >= mb.id
    assert by[(READ, 2)] == mb.id and by[(READ, 3)] == 0 and (READ, 1) in by
    assert len(marks) == 6


def test_group_receipts_refused_to_a_non_member(srv):
    a, b, c, g = group_of_three(srv)
    d = sig_device(srv, 4)
    d.read_mark(g, 1, group=True)
    assert d.expect_error(E_GROUP).ref == 0
    d.send_frame(4, 0, RECEIPT, receipt_body(3, g, 0, GROUP))
    assert d.expect_error(E_GROUP).ref == 0
    d.typing(g, group=True)
    assert d.expect_error(E_GROUP).ref == 0
    assert a.sync_signals() == []


def test_a_group_over_receipt_group_max_gets_no_live_receipts(start_store_server):
    s = start_store_server("--receipt-group-max", "2")
    a, b, c, g = group_of_three(s)
    a.post_group(g, TEXT, b"big group")
    a.acked()
    m = b.read_msg()
    b.ack()
    b.read_mark(g, m.id, group=True)
    b.read_mark(1, m.id)     # a 1:1 mark after them: the next signal a gets
    r = a.next_signal(Rcpt)
    assert r[:4] == (READ, 0, 2, 2), f"a live group receipt came: {r}"
    assert c.sync_signals() == [], f"a live group READ came to a member"
    marks = a.query(g, group=True)                     # kept all the same
    assert {(r.what, r.by): r.upto for r in marks}[(READ, 2)] == m.id


# -- TYPING ---------------------------------------------------------------------

def test_typing_passes_to_the_receivers_signals_connections_only(srv):
    a = sig_device(srv, 1)
    b1 = sig_device(srv, 2, "phone")
    b2 = device(srv, 2, "old", DEVICE)
    a.typing(2)
    assert b1.next_signal(Typing) == Typing(1, 0, 2, 1)
    a.typing(2, 0)
    assert b1.next_signal(Typing) == Typing(1, 0, 2, 0)
    marker(a, 2, b2)        # b2 got no TYPING before the marker
    assert a.sync_signals() == []


def test_typing_in_a_group_reaches_the_other_members(srv):
    a, b, c, g = group_of_three(srv)
    b.typing(g, group=True)
    for x in (a, c):
        assert x.next_signal(Typing) == Typing(2, GROUP, g, 1)
    assert b.sync_signals() == []


def test_typing_is_not_stored(srv):
    a = sig_device(srv, 1)
    a.typing(2)
    a.sync_signals()
    b = sig_device(srv, 2)
    marker(a, 2, b)
    assert b.sync_signals() == []


# -- PRESENCE -------------------------------------------------------------------

def test_presence_online_offline_and_last_seen(srv):
    a = sig_device(srv, 1)
    a.subscribe(2)
    assert a.next_signal(Presence) == Presence(2, 0, 0)     # never seen
    b = sig_device(srv, 2)
    assert a.next_signal(Presence) == Presence(2, 1, 0)
    b2 = plain(srv, 2)                                      # a second one
    assert a.sync_signals() == [], "a second connection is no change"
    b2.close()
    b.close()
    p = a.next_signal(Presence)
    assert (p.user, p.state) == (2, 0) and abs(p.last_seen - now_ms()) < 5000, p
    assert a.sync_signals() == []


def test_presence_of_a_user_seen_before_a_restart(start_store_server):
    s = start_store_server()
    b = sig_device(s, 2)
    b.sync()
    b.close()
    s.terminate()
    s = start_store_server()
    a = sig_device(s, 1)
    a.subscribe(2)
    p = a.next_signal(Presence)
    assert (p.user, p.state) == (2, 0) and 0 < p.last_seen <= now_ms(), p


def test_unsubscribe_stops_the_events(srv):
    a = sig_device(srv, 1)
    a.subscribe(2, 3)
    got = {a.next_signal(Presence).user for _ in range(2)}
    assert got == {2, 3}
    a.subscribe(2, op=UNSUBSCRIBE)
    a.sync_signals()
    b = sig_device(srv, 2)
    c = sig_device(srv, 3)
    b.sync()
    c.sync()
    assert a.sync_signals() == [Presence(3, 1, 0)]


def test_max_subscriptions(start_store_server):
    s = start_store_server("--max-subscriptions", "2")
    a = sig_device(s, 1)
    a.subscribe(2, 3, 4)
    e = a.expect_error_ref(E_DENIED, 4)
    assert "--max-subscriptions" in e.reason
    assert {a.next_signal(Presence).user for _ in range(2)} == {2, 3}


def test_presence_is_not_sent_to_a_connection_that_ended(srv):
    a = sig_device(srv, 1)
    a.subscribe(2)
    a.next_signal(Presence)
    a.close()
    b = sig_device(srv, 2)
    b.close()
    c = sig_device(srv, 3)        # the server is alive and well
    c.sync()


# -- --auth on: only users one shares a conversation with --------------------

def add_users(data_dir, *ids):
    for i in ids:
        r = subprocess.run([require_binary(), "user", "--data-dir", str(data_dir),
                            "add", str(i)], input="pw\n", capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 0, r.stderr


def test_with_auth_presence_only_of_users_one_shares_a_conversation_with(
        start_store_server, store_dir):
    add_users(store_dir, 1, 2, 3, 4, 5)
    s = start_store_server("--auth", "on")
    a = sig_device(s, 1, password=b"pw")
    b = sig_device(s, 2, password=b"pw")
    c = sig_device(s, 3, password=b"pw")
    a.post(2, TEXT, b"hello 2")          # a message: a conversation with 2
    a.acked()
    b.read_msg()
    b.ack()
    g = a.create("with 3", [3])          # a group: a conversation with 3
    c.next_event()
    c.post(5, TEXT, b"5 is 3's contact, not 1's")
    c.acked()
    a.subscribe(2, 3, 4, 5)
    denied = {a.expect_error_ref(E_DENIED, u).ref for u in (4, 5)}
    assert denied == {4, 5}
    states = {a.next_signal(Presence).user for _ in range(2)}
    assert states == {2, 3}
    b.subscribe(1)                        # the other way round too
    assert b.next_signal(Presence) == Presence(1, 1, 0)
    assert g


# -- malformed frames ---------------------------------------------------------

@pytest.mark.parametrize("ftype,body", [
    (RECEIPT, receipt_body(READ, 2, 1)[:-1]),                 # 25 bytes
    (RECEIPT, receipt_body(DELIVERED, 2, 1)),                 # a server's what
    (RECEIPT, receipt_body(END, 2, 0)),
    (RECEIPT, receipt_body(READ, 0, 1)),                      # conv 0
    (RECEIPT, receipt_body(READ, 2, 1, flags=0x01)),          # unknown flag
    (RECEIPT, receipt_body(READ, 2, 1, by=7)),                # by set
    (TYPING, typing_body(2, 2)),                              # state 2
    (TYPING, typing_body(0)),                                 # to 0
    (TYPING, typing_body(2) + b"x"),
    (PRESENCE, presence_body(3, [2])),                        # op 3
    (PRESENCE, presence_body(1, [0])),                        # id 0
    (PRESENCE, b"\x01\x00\x00"),                              # count 0
    (PRESENCE, presence_body(1, [2])[:-1]),                   # cut
    (PRESENCE, presence_body(1, list(range(1, 258)))),        # 257 ids
])
def test_malformed_signal_frames_close_with_proto(srv, ftype, body):
    a = sig_device(srv, 1)
    other = sig_device(srv, 2)
    a.send_frame(1, 0, ftype, body)
    assert a.expect_error(PROTO)
    a.expect_eof()
    marker(other, 3, sig_device(srv, 3))   # nobody else paid for it


# -- a receiver that does not read ----------------------------------------------

def test_signals_for_a_receiver_that_does_not_read_are_dropped_not_closing_it(
        start_store_server):
    """TYPING floods a SIGNALS connection that reads nothing: once its queue
    is at --max-outbuf the signals are dropped (counted), it is not closed,
    and when it reads again it has a working connection."""
    from test_metrics import parse, scrape, value
    s = start_store_server("--http-port", "auto", "--max-frame", "4096",
                           "--max-outbuf", "70000", "--rate-msgs", "0")
    b = device(s, 2, "phone", SIG_DEVICE, cls=SigClientSmall)
    a = sig_device(s, 1)
    burst = b"".join(struct_typing(1, 2, i & 1) for i in range(2000))
    deadline = time.monotonic() + 60
    while value(parse(scrape(s)), "chat_signals_dropped_total") == 0:
        assert time.monotonic() < deadline, "no signal was ever dropped"
        a.send_raw(burst)
        a.sync()                       # the server has handled the burst
    # b was not closed: it reads what was queued, then its PING is answered
    b.sync_signals()
    marker(a, 2, b)


class SigClientSmall(SigClient):
    def __init__(self, host, port, **kw):
        super().__init__(host, port, rcvbuf=4096, **kw)


def struct_typing(sender, to, state):
    from proto import c2s
    return c2s(sender, 0, TYPING, typing_body(to, state))


# -- POSTED: the id of one's own message -----------------------------------------

def test_posted_gives_the_id_the_receiver_sees_before_the_ack(srv):
    a = sig_device(srv, 1)
    b = device(srv, 2, "phone")
    a.post(2, TEXT, b"one", cid=501)
    a.post(2, TEXT, b"two", cid=502)
    a.post(2, TEXT, b"no cid")               # cid 0: no POSTED
    a.acked()
    m1, m2, m3 = b.read_msgs(3)
    assert [a.next_signal(Posted) for _ in range(2)] == [Posted(501, m1.id), Posted(502, m2.id)]
    assert a.sync_signals() == [], "POSTED for a POST without a cid"


def test_posted_for_a_group_post(srv):
    a, b, c, g = group_of_three(srv)
    a.post_group(g, TEXT, b"to all", cid=77)
    a.acked()
    m = b.read_msg()
    assert a.next_signal(Posted) == Posted(77, m.id)


def test_a_resend_gets_posted_with_the_original_id(start_store_server):
    s = start_store_server()
    a = sig_device(s, 1, "laptop")
    a.post(2, TEXT, b"once", cid=900)         # user 2 offline: stored
    a.acked()
    first = a.next_signal(Posted)
    a.close()
    a = sig_device(s, 1, "laptop")            # the same device, a new connection
    a.post(2, TEXT, b"once", cid=900)         # a resend: acknowledged, dropped
    a.acked()
    assert a.next_signal(Posted) == first
    s.terminate()
    s = start_store_server()                  # the id outlives a restart
    a = sig_device(s, 1, "laptop")
    a.post(2, TEXT, b"once", cid=900)
    a.acked()
    assert a.next_signal(Posted) == first
    b = device(s, 2, "phone")
    assert b.read_msg().id == first.id
    marker(a, 2, b)                           # delivered once


def test_no_posted_without_signals(srv):
    a = device(srv, 1, "laptop", DEVICE)      # a ConvClient: POSTED would fail it
    b = device(srv, 2, "phone")
    a.post(2, TEXT, b"x", cid=5)
    a.acked()
    b.read_msg()
    marker(b, 1, a)
