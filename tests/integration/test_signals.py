"""Receipts, typing and presence (docs/PROTOCOL.md, "Receipts, typing and
presence"): the SIGNALS flag, DELIVERED marks as receivers' devices confirm
messages, READ marks kept and passed on, QUERY, TYPING passed through,
PRESENCE subscriptions, POSTED, their limits and refusals, malformed frames,
--receipt-group-max, --max-subscriptions and the chat_signals_* metrics
(docs/OPERATIONS.md). Every sentence of that section has a test here.

Users: 1 writes (its devices are SigClients), 2 and up receive. Absence is
always shown after a point the server provably reached: a PING answered
(SigClient.sync_signals) sent after the event that would have caused the
signal, or a marker delivery.
"""

import subprocess
import time

import pytest

from conftest import require_binary
from convproto import (ACKS_FLAG, ADD, CONV_FLAG, DEVICE, E_GROUP, NO_GROUP,
                       ConvClient, article, connect, db_state, device, marker, now_ms,
                       payload, plain)
from proto import ACK, BADTYPE, PROTO, QUOTA, RATE, SPOOF, TEXT
from sigproto import (make_contacts, DELIVERED, E_DENIED, END, GROUP, POSTED, PRESENCE, QUERY,
                      READ, SigClient, RECEIPT, SIG_DEVICE, SIGNALS_FLAG, TYPING,
                      UNSUBSCRIBE, Posted, Presence, Rcpt, Typing, presence_body,
                      receipt_body, sig_device, typing_body)
from test_metrics import parse, scrape, value
from wsproto import WSClient


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



def read_in_a_group(srv, text, laptop=True):
    """A group of three (group_of_three) and, with `laptop`, a second
    device of 2 (b2, else None); 1 posts `text`, 2's phone (b) reads it
    and sends READ. Returns (a, b, c, b2, g, m)."""
    a, b, c, g = group_of_three(srv)
    b2 = sig_device(srv, 2, "laptop") if laptop else None
    a.post_group(g, TEXT, text)
    a.acked()
    m = b.read_msg()
    b.ack()
    b.read_mark(g, m.id, group=True)
    return a, b, c, b2, g, m


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
    a, b, c, _, g, m = read_in_a_group(s, b"big group", laptop=False)
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
    g = make_contacts(a, b, c, TEXT)
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
    (RECEIPT, receipt_body(READ, 2, 1) + b"x"),               # 27 bytes
    (RECEIPT, receipt_body(0, 2, 1)),                         # what 0
    (RECEIPT, receipt_body(5, 2, 1)),                         # what 5
    (RECEIPT, receipt_body(QUERY, 2, 0, flags=0x04)),         # unknown flag
    (TYPING, typing_body(2, 2)),                              # state 2
    (TYPING, typing_body(0)),                                 # to 0
    (TYPING, typing_body(2) + b"x"),
    (TYPING, typing_body(2)[:-1]),                            # 5 bytes
    (TYPING, typing_body(2, flags=0x01)),                     # unknown flag
    (PRESENCE, presence_body(3, [2])),                        # op 3
    (PRESENCE, presence_body(0, [2])),                        # op 0
    (PRESENCE, presence_body(UNSUBSCRIBE, [2, 0])),           # id 0
    (PRESENCE, presence_body(1, [2]) + bytes(4)),             # one id past count
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
    b.subscribe(3)
    assert b.next_signal(Presence) == Presence(3, 0, 0)
    a = sig_device(s, 1)
    burst = b"".join(struct_typing(1, 2, i & 1) for i in range(2000))
    deadline = time.monotonic() + 60
    while value(parse(scrape(s)), "chat_signals_dropped_total") == 0:
        assert time.monotonic() < deadline, "no signal was ever dropped"
        a.send_raw(burst)
        a.sync()                       # the server has handled the burst
    sent = value(parse(scrape(s)), "chat_signals_sent_total")
    c = sig_device(s, 3)            # a presence change for b's full queue: dropped
    c.sync()
    assert value(parse(scrape(s)), "chat_signals_sent_total") == sent
    # b was not closed: it reads what was queued, then its PING is answered
    got = b.sync_signals()
    assert got and all(isinstance(x, Typing) for x in got), "not dropped: " + \
        repr([x for x in got if not isinstance(x, Typing)])
    marker(a, 2, b)
    # ...and gets the state again: a QUERY's answer and a SUBSCRIBE's are sent
    assert [(r.what, r.by) for r in b.query(1)] == [(DELIVERED, 1), (READ, 1), (READ, 2)]
    b.subscribe(3, op=UNSUBSCRIBE)  # (a SUBSCRIBE of a user subscribed to: see
    b.subscribe(3)                  # test_subscribe_again_sends_the_state_again)
    assert b.next_signal(Presence) == Presence(3, 1, 0)


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


# -- the audit of docs/PROTOCOL.md, "Receipts, typing and presence": one test
# -- per sentence no test above enforced ------------------------------------

def test_signal_frames_take_no_sequence_number_and_are_not_acknowledged(srv):
    """Signal frames are not data frames: the first POST after signals of
    every kind is sequence number 1 (its ERROR's ref), the server's ACK
    counts the POSTs only, and a receiver's ACK counts its messages only."""
    a = sig_device(srv, 1)
    b = sig_device(srv, 2)
    a.typing(2)
    a.read_mark(2, 1)
    a.send_frame(1, 0, RECEIPT, receipt_body(QUERY, 2))
    a.subscribe(2)
    a.post_group(NO_GROUP, TEXT, b"not a member")   # refused: its ref is its number
    assert a.expect_error_ref(E_GROUP, 1)
    a.post(2, TEXT, b"counted")
    a.acked()                                        # (an ACK over 2 fails the read)
    assert a.ack_count == 2
    a.sync_signals()                                 # (the answers, POSTED none)
    assert b.next_signal(Typing) == Typing(1, 0, 2, 1)
    m = b.read_msg()                                 # after a TYPING and a READ
    b.ack(1)                                         # 1: the message, nothing else
    assert delivered(a).upto == m.id
    b.ack(2)                                         # more than the messages sent
    assert b.expect_error(PROTO)


def test_signal_frames_are_never_stored_as_messages(srv):
    a = sig_device(srv, 1)
    a.typing(2)
    a.read_mark(2, 1)
    a.query(2)
    a.subscribe(2)
    a.sync_signals()
    b = sig_device(srv, 2)          # user 2 was offline for all of them
    marker(a, 2, b)                 # its first delivery is the marker
    assert b.sync_signals() == []   # and no signal was kept for it either


def test_signal_frames_count_against_the_rate_limit(start_store_server):
    s = start_store_server("--rate-msgs", "100", "--rate-grace", "60s")
    a = sig_device(s, 1)
    sig_device(s, 2)
    a.send_raw(b"".join(struct_typing(1, 2, i & 1) for i in range(1000)))
    e = a.expect_error(RATE)
    assert "paused" in e.reason, e


def test_signals_sent_total_counts_the_signals_others_caused(start_store_server):
    """chat_signals_sent_total: receipts, TYPING and presence changes caused
    by another user; the answers to one's own QUERY and SUBSCRIBE, and
    POSTED, are not counted."""
    s = start_store_server("--http-port", "auto")

    def sent():
        return value(parse(scrape(s)), "chat_signals_sent_total")

    a = sig_device(s, 1)
    a.subscribe(2)
    assert a.next_signal(Presence) == Presence(2, 0, 0)
    assert len(a.query(2)) == 3
    a.post(2, TEXT, b"x", cid=1)
    a.acked()
    assert isinstance(a.next_signal(Posted), Posted)
    assert sent() == 0
    b = sig_device(s, 2)
    assert a.next_signal(Presence)[:2] == (2, 1)            # 1
    b.typing(1)
    assert a.next_signal(Typing) == Typing(2, 0, 1, 1)      # 2
    m = b.read_msg()
    b.ack()
    assert delivered(a).upto == m.id                        # 3
    b.read_mark(1, m.id)
    assert next_read(a).upto == m.id                        # 4
    assert a.sync_signals() == []
    assert sent() == 4
    assert value(parse(scrape(s)), "chat_signals_dropped_total") == 0


# -- DELIVERED and READ: who gets what -------------------------------------------

def test_delivered_goes_to_the_author_of_the_messages_confirmed_only(srv):
    a = sig_device(srv, 1)
    c = sig_device(srv, 3)
    b = device(srv, 2, "phone")
    a.post(2, TEXT, b"from 1")
    a.acked()
    m1 = b.read_msg()
    c.post(2, TEXT, b"from 3")
    c.acked()
    m3 = b.read_msg()
    b.ack(1)                            # 1's message only
    r = delivered(a)
    assert r[:5] == (DELIVERED, 0, 2, 2, m1.id), r
    assert c.sync_signals() == [], "a DELIVERED for a message 3 did not write"
    b.ack(2)
    r = delivered(c)
    assert r[:5] == (DELIVERED, 0, 2, 2, m3.id), r
    assert a.sync_signals() == [], "a DELIVERED for a message 1 did not write"


def test_read_reaches_the_signals_connections_of_the_other_user_only(srv):
    a = sig_device(srv, 1)
    a2 = device(srv, 1, "old", DEVICE)            # no SIGNALS
    c = sig_device(srv, 3)                        # a third user
    b = sig_device(srv, 2)
    a.post(2, TEXT, b"x")
    a.acked()
    assert a2.read_msg().flags & 1
    m = b.read_msg()
    b.ack()
    delivered(a)
    b.read_mark(1, m.id)
    assert next_read(a)[:5] == (READ, 0, 2, 2, m.id)
    assert c.sync_signals() == []
    marker(b, 1, a2)                              # a2 never got a RECEIPT


def test_read_keeps_the_highest_mark(srv):
    """A READ below the mark kept does not move it back: QUERY answers the
    highest, and a client that keeps the highest it was sent has it too.
    (Whether the lower READ is passed on live is not settled by the text:
    this server passes it on as it came; see the audit's report.)"""
    a = sig_device(srv, 1)
    b = sig_device(srv, 2)
    b2 = sig_device(srv, 2, "laptop")
    a.post(2, TEXT, b"one")
    a.post(2, TEXT, b"two")
    a.acked()
    m1, m2 = b.read_msgs(2)
    b2.read_msgs(2)
    b.ack()
    b2.ack()
    b.read_mark(1, m2.id)
    assert next_read(a).upto == m2.id
    assert next_read(b2).upto == m2.id
    b.read_mark(1, m1.id)                 # an older mark: kept is the highest
    b.sync_signals()
    for x, conv in ((a, 2), (b2, 1)):
        live = [r for r in x.sync_signals() if r.what == READ]
        assert all((r.flags, r.conv, r.by) == (0, conv, 2) for r in live), live
        assert max([m2.id] + [r.upto for r in live]) == m2.id, live
    marks = a.query(2)
    assert [(r.what, r.by, r.upto) for r in marks][1] == (READ, 2, m2.id), marks
    marks = b2.query(1)                   # the reader's own mark, from elsewhere
    assert [(r.what, r.by, r.upto) for r in marks][2] == (READ, 2, m2.id), marks


def test_read_in_a_group_reaches_the_readers_other_devices(srv):
    a, b, _, b2, g, m = read_in_a_group(srv, b"to all")
    r = next_read(b2)
    assert r[:5] == (READ, GROUP, g, 2, m.id), r
    assert next_read(a)[:5] == (READ, GROUP, g, 2, m.id)
    assert b.sync_signals() == []


def test_a_read_of_a_group_that_does_not_exist_is_refused(srv):
    a = sig_device(srv, 1)
    a.read_mark(NO_GROUP, 1, group=True)
    assert a.expect_error(E_GROUP).ref == 0
    a.send_frame(1, 0, RECEIPT, receipt_body(QUERY, NO_GROUP, 0, GROUP))
    assert a.expect_error(E_GROUP).ref == 0
    assert a.sync_signals() == []


# -- --receipt-group-max -----------------------------------------------------------

def rcpts_up_to_a_read_by(conn, user):
    """The RECEIPTs conn is sent up to and with the 1:1 READ of `user`."""
    out = []
    while not out or out[-1][:4] != (READ, 0, user, user):
        out.append(conn.next_signal(Rcpt))
    return out


@pytest.mark.parametrize("limit,live", [("3", True), ("0", False)])
def test_receipt_group_max_is_at_most_n_members(start_store_server, limit, live):
    """Live receipts in groups of at most N members: a group of 3 gets them
    with N = 3; with N = 0 no group does."""
    s = start_store_server("--receipt-group-max", limit)
    a, b, _, _, g, m = read_in_a_group(s, b"three", laptop=False)
    b.read_mark(1, m.id)     # a 1:1 mark after them: a's last signal
    got = [r[:4] for r in rcpts_up_to_a_read_by(a, 2)]
    want = [(DELIVERED, GROUP, g, 2), (READ, GROUP, g, 2)] if live else []
    assert got == want + [(READ, 0, 2, 2)], got


def test_receipt_group_max_defaults_to_100(srv):
    a = sig_device(srv, 1)
    b = sig_device(srv, 2)
    g = a.create("a hundred", list(range(2, 101)))
    b.next_event()
    a.post_group(g, TEXT, b"100 members")
    a.acked()
    m = b.read_msg()
    b.ack()
    assert delivered(a)[:5] == (DELIVERED, GROUP, g, 2, m.id)
    a.done(ADD, g, users=[101])
    b.next_event()
    a.post_group(g, TEXT, b"101 members")
    a.acked()
    m = b.read_msg()
    b.ack()
    b.read_mark(g, m.id, group=True)
    b.read_mark(1, m.id)
    r = a.next_signal(Rcpt)
    assert r[:4] == (READ, 0, 2, 2), f"a live receipt in a group of 101: {r}"
    assert {(r.what, r.by): r.upto for r in a.query(g, group=True)}[(READ, 2)] == m.id


def test_a_group_over_receipt_group_max_still_tells_the_readers_devices(
        start_store_server):
    s = start_store_server("--receipt-group-max", "2")
    _, _, _, b2, g, m = read_in_a_group(s, b"big group")
    assert next_read(b2)[:5] == (READ, GROUP, g, 2, m.id)


@pytest.mark.parametrize("flag,bad", [
    ("--receipt-group-max", "4097"), ("--receipt-group-max", "-1"),
    ("--receipt-group-max", "many"), ("--max-subscriptions", "65536"),
    ("--max-subscriptions", "-1"), ("--max-subscriptions", "lots"),
])
def test_signal_limits_out_of_range_exit_2(tmp_path, flag, bad):
    try:
        r = subprocess.run([require_binary(), "--port", "0", "--data-dir",
                            str(tmp_path / "d"), flag, bad], capture_output=True,
                           text=True, timeout=5, stdin=subprocess.DEVNULL, cwd=tmp_path)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{flag} {bad} did not make the server exit")
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert flag in r.stderr, r.stderr


def test_signal_limits_at_their_maximum_are_taken(start_store_server):
    s = start_store_server("--receipt-group-max", "4096", "--max-subscriptions", "65535")
    a, b, c, g = group_of_three(s)
    a.post_group(g, TEXT, b"x")
    a.acked()
    b.read_msg()
    b.ack()
    assert delivered(a).conv == g
    a.subscribe(2)
    assert a.next_signal(Presence) == Presence(2, 1, 0)


# -- TYPING: to `to` and nowhere else ------------------------------------------------

def test_typing_reaches_neither_the_typists_other_devices_nor_third_users(srv):
    a1 = sig_device(srv, 1, "laptop")
    a2 = sig_device(srv, 1, "phone")
    b = sig_device(srv, 2)
    c = sig_device(srv, 3)
    a1.typing(2)
    assert b.next_signal(Typing) == Typing(1, 0, 2, 1)
    for x in (a1, a2, c):
        assert x.sync_signals() == []


def test_typing_in_a_group_skips_the_typists_other_devices(srv):
    a, b, c, g = group_of_three(srv)
    b2 = sig_device(srv, 2, "laptop")
    d = sig_device(srv, 4)                        # not a member
    b.typing(g, group=True)
    for x in (a, c):
        assert x.next_signal(Typing) == Typing(2, GROUP, g, 1)
    for x in (b, b2, d):
        assert x.sync_signals() == []


def test_typing_with_another_sender_is_spoof_and_dropped(srv):
    a = sig_device(srv, 1)
    b = sig_device(srv, 2)
    a.send_frame(3, 0, TYPING, typing_body(2))
    assert a.expect_error(SPOOF).ref == 0
    a.typing(2, 0)                                # the connection stays
    assert b.next_signal(Typing) == Typing(1, 0, 2, 0)   # the first b gets
    assert b.sync_signals() == []


# -- PRESENCE -------------------------------------------------------------------------

def test_presence_online_with_a_connection_of_any_kind(start_store_server):
    """Online while any connection is bound: a WebSocket, an article client
    (bound by its first data frame)."""
    s = start_store_server("--http-port", "auto")
    a = sig_device(s, 1)
    a.subscribe(2, 3)
    assert {a.next_signal(Presence) for _ in range(2)} == {Presence(2, 0, 0), Presence(3, 0, 0)}
    w = WSClient(s)
    w.hello(2)
    assert a.next_signal(Presence) == Presence(2, 1, 0)
    w.close()
    p = a.next_signal(Presence)
    assert (p.user, p.state) == (2, 0) and p.last_seen > 0, p
    witness = plain(s, 9)
    x = article(s, 3, witness)
    assert a.next_signal(Presence) == Presence(3, 1, 0)
    x.close()
    assert a.next_signal(Presence)[:2] == (3, 0)


def test_subscriptions_belong_to_the_connection(srv):
    a1 = sig_device(srv, 1, "laptop")
    a2 = sig_device(srv, 1, "phone")
    a1.subscribe(2)
    assert a1.next_signal(Presence) == Presence(2, 0, 0)
    a1.close()
    a1 = sig_device(srv, 1, "laptop")             # the same device, again
    b = sig_device(srv, 2)
    b.sync()
    assert a1.sync_signals() == [], "a subscription outlived its connection"
    assert a2.sync_signals() == [], "a subscription reached another connection"


def test_subscribe_again_sends_the_state_again(srv):
    """A client that lost presence changes (dropped past --max-outbuf)
    SUBSCRIBEs again and gets the state again, once per SUBSCRIBE."""
    a = sig_device(srv, 1)
    a.subscribe(2)
    assert a.next_signal(Presence) == Presence(2, 0, 0)
    a.subscribe(2)
    assert a.next_signal(Presence) == Presence(2, 0, 0)
    b = sig_device(srv, 2)                        # still subscribed: changes come
    assert a.next_signal(Presence) == Presence(2, 1, 0)
    b.sync()


def test_subscribe_256_users_at_once(srv):
    a = sig_device(srv, 1)
    users = list(range(2, 258))
    a.subscribe(*users)
    got = [a.next_signal(Presence) for _ in users]
    assert sorted(got) == [Presence(u, 0, 0) for u in users]
    assert a.sync_signals() == []


def test_max_subscriptions_defaults_to_1024(srv):
    a = sig_device(srv, 1)
    for i in range(4):
        a.subscribe(*range(2 + 256 * i, 2 + 256 * (i + 1)))
    a.subscribe(5000)                             # the 1,025th
    assert a.expect_error_ref(E_DENIED, 5000)
    got = {a.next_signal(Presence).user for _ in range(1024)}
    assert got == set(range(2, 1026))
    assert a.sync_signals() == []


def test_max_subscriptions_counts_what_is_subscribed_now(start_store_server):
    s = start_store_server("--max-subscriptions", "1")
    a = sig_device(s, 1)
    a.subscribe(2)
    assert a.next_signal(Presence) == Presence(2, 0, 0)
    a.subscribe(2, op=UNSUBSCRIBE)
    a.subscribe(3)                                # room again
    assert a.next_signal(Presence) == Presence(3, 0, 0)
    b = sig_device(s, 2)
    b.sync()
    assert a.sync_signals() == []


def test_max_subscriptions_0_denies_every_id(start_store_server):
    s = start_store_server("--max-subscriptions", "0")
    a = sig_device(s, 1)
    a.subscribe(2, 3)
    for u in (2, 3):
        assert a.expect_error_ref(E_DENIED, u)
    assert a.sync_signals() == []


# -- POSTED -------------------------------------------------------------------------

def test_posted_comes_before_the_ack_that_covers_the_post(srv):
    a = sig_device(srv, 1)
    b = device(srv, 2, "phone")
    for cid in (31, 32):
        a.post(2, TEXT, b"%d" % cid, cid=cid)
        types = []
        while a.ack_count < a.sent:
            f = ConvClient.read_frame(a)          # every frame, in order
            types.append(f.type)
        assert types.index(POSTED) < types.index(ACK), types
        assert types.count(POSTED) == 1, types
    b.read_msgs(2)


def test_no_posted_for_a_post_refused_at_once(srv):
    a = sig_device(srv, 1)
    a.post_group(NO_GROUP, TEXT, b"not a member", cid=41)
    assert a.expect_error_ref(E_GROUP, 1)
    assert a.sync_signals() == []


def test_posted_for_a_post_refused_by_quota_names_no_message(start_store_server):
    s = start_store_server("--offline-max-messages", "1")
    device(s, 2, "phone").close()                 # seen, now offline
    a = sig_device(s, 1)
    a.post(2, TEXT, b"kept", cid=51)
    a.post(2, TEXT, b"over the quota", cid=52)
    errors = a.wait_acked()
    assert [(e.code, e.ref) for e in errors] == [(QUOTA, 2)], errors
    posted = {p.cid: p.id for p in a.sync_signals()}
    assert set(posted) == {51, 52}, posted       # 52 accepted at first, then refused
    b = device(s, 2, "phone")
    m = b.read_msg()
    assert payload(m) == b"kept" and m.id == posted[51]
    assert posted[52] != m.id
    marker(a, 2, b)                               # nothing else was kept


# -- what receipts cost the store -------------------------------------------------

def test_receipts_keep_one_row_per_member_and_conversation(start_store_server, store_dir):
    """Per conversation and member one READ row, and nothing for DELIVERED:
    more messages, each delivered and read, add no row but their own."""
    def round(n):
        s = start_store_server()
        a, b, c, g = group_of_three(s) if n == 1 else rejoin(s)
        for i in range(n):
            a.post_group(g, TEXT, b"g%d" % i)
            a.post(2, TEXT, b"p%d" % i)
            a.acked()
            mg, mp = b.read_msgs(2)
            assert c.read_msg().id == mg.id
            b.ack()
            c.ack()
            b.read_mark(g, mg.id, group=True)
            c.read_mark(g, mg.id, group=True)
            b.read_mark(1, mp.id)
            b.sync_signals()
            c.sync_signals()
        assert s.terminate() == 0, s.log()
        rows = db_state(store_dir / "chat.db")[2]
        return {t: len(r) for t, r in rows.items() if t != "messages"}, rows["reads"]

    def rejoin(s):
        a, b, c = (sig_device(s, u) for u in (1, 2, 3))
        (g,) = a.groups()
        return a, b, c, g

    once, reads = round(1)
    assert len(reads) == 3, reads             # 2 and 3 in the group, 2 with 1
    more, reads = round(5)
    assert more == once, "rows grew with the messages"
    assert len(reads) == 3, reads
