"""Devices and conversations (docs/PROTOCOL.md, "Devices and conversations"):
HELLO with CONV and a device name, MSG (0x86), POST (0x87) with client
message ids, per-device cursors, own messages on the user's other devices,
when stored messages are deleted, and the upgrade of a database of the
previous release.

Users: 1 writes (a default device unless a test gives it devices), 2 and
up receive. Absence is always shown by a marker (convproto.marker: a fresh
message must be the next delivery) or a PING/PONG, never by waiting.
"""

import random
import re
import shutil
import sqlite3
import subprocess
import time

import pytest

from conftest import REPO, require_binary
from convproto import (CONV_FLAG, DEVICE, OWN, POST, StoreProbe, article,
                       connect, conv_hello_body, db_state, device, marker,
                       now_ms, payload, plain, post_body, stored, user_version,
                       wait_messages)
from proto import (ACKS_FLAG, AUTH, BADRCPT, BADTYPE, HELLO, PICTURE, PROTO,
                   QUOTA, STORE, TEXT, TOOBIG, VIDEO, VOICE, c2s)
from test_store import faults_binary  # noqa: F401 (a fixture)

LEGACY_DB = REPO / "tests" / "integration" / "data" / "chat-v2.db"
PICTURE_BYTES = bytes(range(256)) * 40
# A server may read the wall clock once and add the monotonic clock to it
# (no system call per message), rounding each down to the millisecond: its
# times may be 2 ms under ours. Seconds taken for milliseconds, or a time
# taken long before the read, still fail.
CLOCK_SLACK_MS = 5


@pytest.fixture
def srv(start_store_server):
    return start_store_server()


def check_msgs(msgs, sender, to, sent, flags=0, t0=None, t1=None):
    """msgs are the MSGs of `sent` [(kind, payload)], in order, with
    increasing ids and times within [t0, t1] (unix ms, taken by the test
    before the first was sent and after the last arrived)."""
    assert [(m.kind, m.payload) for m in msgs] == sent
    assert all((m.sender, m.to, m.flags) == (sender, to, flags) for m in msgs), msgs
    ids = [m.id for m in msgs]
    assert ids == sorted(set(ids)), f"ids do not increase: {ids}"
    if t0 is not None:
        assert all(t0 - CLOCK_SLACK_MS <= m.time <= t1 + CLOCK_SLACK_MS for m in msgs), \
            f"times {[m.time for m in msgs]} outside [{t0}, {t1}]"


def texts(*bodies):
    return [(TEXT, b) for b in bodies]


# -- HELLO with CONV -----------------------------------------------------------

@pytest.mark.parametrize("flags", [CONV_FLAG, CONV_FLAG | ACKS_FLAG], ids=["conv", "conv+acks"])
def test_conv_is_granted_and_messages_come_as_msg(srv, flags):
    d = device(srv, 2, "phone", flags=flags)    # asserts WELCOME flags == flags
    a = plain(srv, 1)
    t0 = now_ms()
    a.send_data(2, TEXT, b"hi phone")
    a.acked()
    m = d.read_msg()
    check_msgs([m], 1, 2, texts(b"hi phone"), t0=t0, t1=now_ms())


@pytest.mark.parametrize("name", ["", "a", "Az09._-", "x" * 32])
def test_device_names_of_allowed_bytes_up_to_32_are_accepted(srv, name):
    d = device(srv, 3, name)
    a = plain(srv, 1)
    marker(a, 3, d)


MALFORMED_NAMES = {
    "33 bytes": conv_hello_body("y" * 33),
    "a space": conv_hello_body("my phone"),
    "a slash": conv_hello_body("a/b"),
    "a NUL": conv_hello_body(b"ph\0ne"),
    "a non-ASCII byte": conv_hello_body("t\u00e9l\u00e9".encode()),
    "length past the body": conv_hello_body("abc", n=10),
    "length past a password": conv_hello_body("abc", n=40, password=b"secret"),
}


@pytest.mark.parametrize("body", MALFORMED_NAMES.values(), ids=MALFORMED_NAMES.keys())
def test_malformed_device_name_is_a_protocol_error(srv, body):
    c = srv.client()
    c.send_frame(2, 0, HELLO, body)
    e = c.read_error()
    assert (e.code, e.ref) == (PROTO, 0), e
    c.expect_eof()
    # The server goes on, and user 2 can still connect.
    d = device(srv, 2, "phone")
    marker(plain(srv, 1), 2, d)


def test_frames_pipelined_after_a_conv_hello_are_handled_after_welcome(srv):
    b = plain(srv, 2)
    c = connect(srv)
    c.send_raw(b"".join([
        c2s(1, 0, HELLO, conv_hello_body("laptop")),
        c2s(1, 2, POST, post_body(TEXT, b"posted", cid=1)),
        c2s(1, 2, TEXT, b"plain"),
    ]))
    w = c.welcome(1)
    assert w.flags == DEVICE, f"WELCOME flags {w.flags:#x}, expected {DEVICE:#x}"
    c.sent = 2
    c.acked()
    assert [(x.sender, x.type, x.body) for x in b.read_bare(2)] == \
        [(1, TEXT, b"posted"), (1, TEXT, b"plain")]


def test_conv_hello_carries_the_password_after_the_device_name(start_store_server, store_dir):
    r = subprocess.run([require_binary(), "user", "--data-dir", str(store_dir), "add", "1"],
                       input="secret\n", capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    s = start_store_server("--auth", "on")
    d = device(s, 1, "phone", password=b"secret")   # CONV granted: logged in
    assert d.sync() == []
    bad = s.client()
    bad.send_frame(1, 0, HELLO, conv_hello_body("laptop", password=b"wrong"))
    e = bad.read_error()
    assert e.code == AUTH, e
    bad.expect_eof()


def test_with_login_frames_pipelined_after_a_conv_hello_wait_for_it(start_store_server,
                                                                     store_dir):
    """Login happens first, then the device; what follows the HELLO is
    handled after WELCOME, in order (and discarded after a failed login)."""
    for user in (1, 2):
        r = subprocess.run([require_binary(), "user", "--data-dir", str(store_dir), "add",
                            str(user)], input="secret\n", capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0, r.stderr
    s = start_store_server("--auth", "on")
    b = device(s, 2, "phone", password=b"secret")
    bad = connect(s)
    bad.send_raw(b"".join([
        c2s(1, 0, HELLO, conv_hello_body("laptop", password=b"wrong")),
        c2s(1, 2, POST, post_body(TEXT, b"never", cid=1)),
    ]))
    assert bad.expect_error(AUTH).ref == 0
    bad.expect_eof()
    c = connect(s)
    c.send_raw(b"".join([
        c2s(1, 0, HELLO, conv_hello_body("laptop", password=b"secret")),
        c2s(1, 2, POST, post_body(TEXT, b"posted", cid=1)),
        c2s(1, 2, TEXT, b"plain"),
    ]))
    assert c.welcome(1).flags == DEVICE
    c.sent = 2
    c.acked()
    check_msgs(b.read_msgs(2), 1, 2, texts(b"posted", b"plain"))


def test_echo_mode_never_grants_conv(start_store_server):
    s = start_store_server("--echo")
    c = connect(s)
    w = c.hello_conv(1, "phone", flags=CONV_FLAG)
    assert not w.flags & CONV_FLAG, f"CONV granted in echo mode (flags {w.flags:#x})"
    c.send_data(2, TEXT, b"echo me")
    f = c.read_bare(1)[0]
    assert (f.sender, f.type, f.body) == (1, TEXT, b"echo me")
    c.send_frame(1, 2, POST, post_body(TEXT, b"x", cid=1))
    c.expect_error(BADTYPE)                 # as without CONV
    c.send_data(2, TEXT, b"still here")
    assert c.read_bare(1)[0].body == b"still here"


def test_a_client_ack_counts_msg_frames(srv):
    d = device(srv, 2, "phone")
    a = plain(srv, 1)
    a.send_data(2, TEXT, b"one")
    a.send_data(2, TEXT, b"two")
    assert len(d.read_msgs(2)) == 2
    d.ack_sync(2)                        # two MSGs: a valid count
    d.ack(3)                        # more than it was sent
    e = d.expect_error(PROTO)
    assert e.ref == 0, e
    d.expect_eof()


# -- several devices of one user --------------------------------------------

def test_a_message_reaches_every_device_as_msg_with_one_id(srv):
    phone, laptop = device(srv, 2, "phone"), device(srv, 2, "laptop")
    a = plain(srv, 1)
    sent = [(TEXT, "ünïcode ✓".encode()), (PICTURE, PICTURE_BYTES), (VOICE, b"v" * 3000),
            (VIDEO, b"")]
    t0 = now_ms()
    for kind, body in sent:
        a.send_data(2, kind, body)
    a.acked()
    got_p, got_l = phone.read_msgs(4), laptop.read_msgs(4)
    t1 = now_ms()
    check_msgs(got_p, 1, 2, sent, t0=t0, t1=t1)
    check_msgs(got_l, 1, 2, sent, t0=t0, t1=t1)
    assert [m.id for m in got_p] == [m.id for m in got_l], "one message, two ids"
    assert [m.time for m in got_p] == [m.time for m in got_l], "one message, two times"


def test_ids_are_one_counter_across_users(srv):
    d2, d3 = device(srv, 2, "phone"), device(srv, 3, "phone")
    a = plain(srv, 1)
    for to, body in [(2, b"a"), (3, b"b"), (2, b"c"), (3, b"d")]:
        a.send_data(to, TEXT, body)
    a.acked()
    (i0, i2), (i1, i3) = [m.id for m in d2.read_msgs(2)], [m.id for m in d3.read_msgs(2)]
    assert i0 < i1 < i2 < i3, f"ids {[i0, i1, i2, i3]} not in the order accepted"


def test_ids_keep_increasing_across_a_restart_with_an_empty_store(start_store_server):
    """Cursors are ids: an id given again after a restart (the store
    emptied, the counter taken from what it holds) would sit under every
    cursor and never be delivered."""
    s = start_store_server("--http-port", "auto")
    d = device(s, 2, "phone")
    a = plain(s, 1)
    a.send_data(2, TEXT, b"before")
    a.acked()
    first = d.read_msg()
    d.ack_sync()
    wait_messages(s, 0)
    assert s.terminate() == 0, s.log()
    s = start_store_server("--http-port", "auto")
    d = device(s, 2, "phone")
    (m,) = marker(plain(s, 1), 2, d)
    assert m.id > first.id, f"id {m.id} after {first.id}: the counter went back"


def test_an_offline_device_gets_what_follows_its_cursor_only(srv):
    phone, laptop = device(srv, 2, "phone"), device(srv, 2, "laptop")
    a = plain(srv, 1)
    a.send_data(2, TEXT, b"m1")
    a.acked()
    assert payload(phone.read_msg()) == b"m1"
    assert payload(laptop.read_msg()) == b"m1"
    phone.ack_sync()
    phone.close()
    for body in [b"m2", b"m3", b"m4"]:
        a.send_data(2, TEXT, body)
    a.acked()
    live = laptop.read_msgs(3)
    check_msgs(live, 1, 2, texts(b"m2", b"m3", b"m4"))

    phone = device(srv, 2, "phone")             # back: m2-m4, not m1
    got = phone.read_msgs(3)
    assert got == live, "the stored copies differ from the live ones"
    phone.ack_sync(1)                                # m2 only
    phone.close()

    phone = device(srv, 2, "phone")             # m3 and m4 again, same ids
    assert phone.read_msgs(2) == live[1:]
    marker(a, 2, phone)


def test_one_devices_acks_do_not_move_anothers_cursor(srv):
    phone, laptop = device(srv, 2, "phone"), device(srv, 2, "laptop")
    a = plain(srv, 1)
    a.send_data(2, TEXT, b"x1")
    a.send_data(2, TEXT, b"x2")
    a.acked()
    got = laptop.read_msgs(2)
    assert phone.read_msgs(2) == got
    laptop.ack_sync()
    phone.close()                               # read, never acknowledged
    laptop.close()
    phone = device(srv, 2, "phone")
    assert phone.read_msgs(2) == got
    laptop = device(srv, 2, "laptop")
    marker(a, 2, laptop, phone)


def test_a_device_that_never_acks_does_not_hold_back_another(srv):
    phone = device(srv, 2, "phone")             # reads nothing, acknowledges nothing
    laptop = device(srv, 2, "laptop")
    a = plain(srv, 1)
    for i in range(5):                          # each live before the next is sent
        a.send_data(2, TEXT, b"live %d" % i)
        assert payload(laptop.read_msg()) == b"live %d" % i
        laptop.ack()
    assert laptop.sync() == []
    laptop.close()
    laptop = device(srv, 2, "laptop")           # nothing again for the laptop
    marker(a, 2, laptop)
    assert [payload(m) for m in phone.read_msgs(5)] == [b"live %d" % i for i in range(5)]


def test_connections_of_one_device_share_its_cursor(srv):
    # The laptop never acknowledges: everything stays stored, so a cursor
    # that stepped back would show.
    device(srv, 2, "laptop")
    p1 = device(srv, 2, "phone")
    a = plain(srv, 1)
    a.send_data(2, TEXT, b"c1")
    assert payload(p1.read_msg()) == b"c1"
    p1.ack_sync()
    p2 = device(srv, 2, "phone")                # found the cursor past c1
    for body in [b"c2", b"c3", b"c4"]:
        a.send_data(2, TEXT, body)
    a.acked()
    got = p1.read_msgs(3)                       # live messages reach both
    assert p2.read_msgs(3) == got
    p1.ack_sync(3)                                   # p1: up to c3
    p2.ack_sync(1)                                   # p2: up to c2
    p1.close()
    # the device has what all its connections have: up to c2 (not c3,
    # which p2 still lacks), whether p1's close or p3's login comes first
    p3 = device(srv, 2, "phone")
    assert p3.read_msgs(2) == got[1:]
    marker(a, 2, p3, p2)


def test_a_device_without_acks_moves_its_cursor_by_writing(srv):
    d = device(srv, 2, "phone", flags=CONV_FLAG)
    a = plain(srv, 1)
    a.send_data(2, TEXT, b"written")
    assert payload(d.read_msg()) == b"written"
    assert d.sync() == []
    d.close()
    d = device(srv, 2, "phone", flags=CONV_FLAG)
    marker(a, 2, d)


# -- own messages ------------------------------------------------------------

def test_own_messages_reach_the_users_other_conv_devices(srv):
    phone, laptop = device(srv, 1, "phone"), device(srv, 1, "laptop")
    b = plain(srv, 2)
    t0 = now_ms()
    laptop.send_data(2, TEXT, b"from the laptop")
    laptop.post(2, PICTURE, PICTURE_BYTES, cid=1)
    laptop.acked()
    sent = [(TEXT, b"from the laptop"), (PICTURE, PICTURE_BYTES)]
    check_msgs(phone.read_msgs(2), 1, 2, sent, flags=OWN, t0=t0, t1=now_ms())
    assert [(f.sender, f.type, f.body) for f in b.read_bare(2)] == [(1, k, p) for k, p in sent]
    # The laptop has no copy of its own: a message to user 1 is the next
    # thing it gets (and the phone's too).
    marker(b, 1, laptop, phone)


def test_own_messages_wait_for_an_offline_device(srv):
    device(srv, 1, "phone").close()             # seen once
    laptop = device(srv, 1, "laptop")
    b = plain(srv, 2)
    laptop.send_data(2, TEXT, b"o1")
    laptop.post(2, VOICE, b"o2", cid=7)
    laptop.send_data(2, TEXT, b"o3")
    laptop.acked()
    assert len(b.read_bare(3)) == 3
    phone = device(srv, 1, "phone")
    check_msgs(phone.read_msgs(3), 1, 2, [(TEXT, b"o1"), (VOICE, b"o2"), (TEXT, b"o3")],
               flags=OWN)
    phone.ack_sync()
    phone.close()
    phone = device(srv, 1, "phone")             # acknowledged: not again
    marker(b, 1, phone, laptop)


@pytest.mark.parametrize("kind", ["hello", "article"])
def test_the_default_device_never_gets_own_copies(srv, kind):
    b = plain(srv, 2)
    laptop = device(srv, 1, "laptop")

    def default():
        if kind == "hello":
            return plain(srv, 1)
        c = article(srv, 1, b)          # its first data frame goes to user 2:
        own = laptop.read_msg()         # the laptop has an OWN copy of it
        assert (own.sender, own.flags, own.to) == (1, OWN, 2), own
        assert own.payload.startswith(b"bind "), own
        return c

    d = default()
    laptop.send_data(2, TEXT, b"own 1")
    laptop.post(2, TEXT, b"own 2", cid=1)
    laptop.acked()
    assert [payload(f) for f in b.read_bare(2)] == [b"own 1", b"own 2"]
    marker(b, 1, d, laptop)                     # a bare frame for d, a MSG for the laptop
    if d.acks:
        d.ack_sync()                                 # (or the marker comes again)
    d.close()
    laptop.post(2, TEXT, b"own 3", cid=2)       # while the default device is away
    laptop.acked()
    assert payload(b.read_bare(1)[0]) == b"own 3"
    d = default()
    marker(b, 1, d)


def test_an_own_message_sent_from_the_only_device_reaches_no_later_device(srv):
    """An own copy goes to the CONV devices the server knew when it accepted
    the message: the laptop was the user's only device, so a device made
    later gets no copy."""
    device(srv, 2, "phone").close()             # seen, away: the message stays stored
    laptop = device(srv, 1, "laptop")
    laptop.post(2, TEXT, b"before the tablet", cid=1)
    laptop.acked()
    tablet = device(srv, 1, "tablet")           # new: not known then
    marker(plain(srv, 3), 1, tablet, laptop)
    phone = device(srv, 2, "phone")             # its receiver still gets it
    assert payload(phone.read_msg()) == b"before the tablet"


def test_a_device_made_later_gets_the_own_copies_after_its_start(srv):
    """An own copy kept for the user's other CONV devices (the phone's,
    here) is part of the user's log: a device made later, which starts at
    the least advanced cursor (the laptop's, which never passed its own
    message), gets it too, as OWN, with the same id."""
    device(srv, 2, "phone").close()             # seen, away: the message stays stored
    phone1 = device(srv, 1, "phone")            # known when it is accepted
    laptop = device(srv, 1, "laptop")
    laptop.post(2, TEXT, b"before the tablet", cid=1)
    laptop.acked()
    own = phone1.read_msg()
    assert (own.flags, own.to, own.payload) == (OWN, 2, b"before the tablet"), own
    phone1.ack_sync()
    tablet = device(srv, 1, "tablet")           # new: not known then
    got = tablet.read_msg()
    assert (got.id, got.flags, got.payload) == (own.id, OWN, b"before the tablet"), got
    tablet.ack()
    marker(plain(srv, 3), 1, tablet, laptop, phone1)
    phone2 = device(srv, 2, "phone")            # its receiver still gets it
    m = phone2.read_msg()
    assert (m.id, m.flags, m.payload) == (own.id, 0, b"before the tablet"), m


# -- the article's client beside a CONV device ------------------------------

def test_article_client_and_conv_device_both_get_live_messages(srv):
    w = plain(srv, 4)
    phone = device(srv, 3, "phone")
    art = article(srv, 3, w)
    bind = phone.read_msg()                     # what the article client sent
    assert (bind.sender, bind.flags, bind.to) == (3, OWN, 4), bind
    a = plain(srv, 1)
    a.send_data(3, TEXT, b"to both")
    a.send_data(3, PICTURE, PICTURE_BYTES)
    a.acked()
    assert [(f.sender, f.type, f.body) for f in art.read_bare(2)] == \
        [(1, TEXT, b"to both"), (1, PICTURE, PICTURE_BYTES)]
    check_msgs(phone.read_msgs(2), 1, 3, [(TEXT, b"to both"), (PICTURE, PICTURE_BYTES)])


@pytest.mark.parametrize("first", ["article", "phone"])
def test_stored_messages_reach_both_the_article_client_and_a_device(srv, first):
    w = plain(srv, 4)
    phone = device(srv, 3, "phone")             # both devices seen, both away
    article(srv, 3, w).close()
    assert phone.read_msg().flags == OWN        # the article client's first frame
    phone.ack_sync()
    phone.close()
    a = plain(srv, 1)
    bodies = [b"stored %d" % i for i in range(3)]
    for body in bodies:
        a.send_data(3, TEXT, body)
    a.acked()

    def get_article():
        art = article(srv, 3, w)
        assert [(f.sender, f.body) for f in art.read_bare(3)] == [(1, x) for x in bodies]
        return art

    def get_phone():
        phone = device(srv, 3, "phone")
        check_msgs(phone.read_msgs(3), 1, 3, texts(*bodies))
        phone.ack()
        return phone

    order = [get_article, get_phone] if first == "article" else [get_phone, get_article]
    conns = [fetch() for fetch in order]
    # The phone also gets the article client's new first frame, after the
    # stored ones (it came later), whichever connected first.
    phone = conns[order.index(get_phone)]
    own = phone.read_msg()
    assert (own.flags, own.to) == (OWN, 4) and own.payload.startswith(b"bind "), own
    marker(a, 3, *conns)


def test_an_empty_device_name_is_the_default_device(srv):
    phone = device(srv, 4, "phone")
    d = plain(srv, 4)                           # the default device, without CONV
    a = plain(srv, 1)
    a.send_data(4, TEXT, b"e1")
    a.acked()
    assert payload(phone.read_msg()) == b"e1"   # read, not acknowledged
    assert payload(d.read_bare(1)[0]) == b"e1"
    d.ack_sync()
    phone.close()
    d.close()
    # With CONV and an empty name: the default device again (its cursor is
    # past e1), not a new device (that would start at the phone's, before e1).
    e = device(srv, 4, "")
    marker(a, 4, e)
    phone = device(srv, 4, "phone")
    assert payload(phone.read_msg()) == b"e1"


def test_article_clients_and_hello_without_conv_are_one_default_device(srv):
    """All the article clients of a user and its HELLOs without CONV are
    one device, with one cursor: what one of them has, the others do not get
    again. (The phone, seen and away, keeps every message stored: a device
    of their own would start before them.)"""
    device(srv, 2, "phone").close()
    a = plain(srv, 1)
    w = plain(srv, 4)
    d = plain(srv, 2)                           # HELLO without CONV, ACKS
    a.send_data(2, TEXT, b"d1")
    a.acked()
    assert payload(d.read_bare(1)[0]) == b"d1"
    d.ack_sync()
    d.close()
    art = article(srv, 2, w)                    # past d1 already
    marker(a, 2, art)
    a.send_data(2, TEXT, b"d2")
    a.acked()
    assert payload(art.read_bare(1)[0]) == b"d2"   # written: the cursor moves
    art.send_data(4, TEXT, b"handled after the write")
    assert payload(w.next_delivery()) == b"handled after the write"
    art.close()
    art2 = article(srv, 2, w)                   # another article client: past d2
    marker(a, 2, art2)
    d = plain(srv, 2)                           # and the HELLO without CONV too
    marker(a, 2, d)


# -- new devices ---------------------------------------------------------------

# --history-ttl keeps acknowledged messages stored: a new device that started
# before the cursor it should take would get them.

def test_a_users_first_device_gets_the_offline_queue(start_store_server):
    srv = start_store_server("--history-ttl", "1h")
    a = plain(srv, 1)
    bodies = [b"queued %d" % i for i in range(3)]
    t0 = now_ms()
    for body in bodies:
        a.send_data(6, TEXT, body)
    a.acked()
    phone = device(srv, 6, "phone")
    check_msgs(phone.read_msgs(3), 1, 6, texts(*bodies), t0=t0, t1=now_ms())
    phone.ack_sync()
    tablet = device(srv, 6, "tablet")           # starts where the phone is
    marker(a, 6, tablet, phone)


def test_a_new_device_starts_at_the_least_advanced_cursor(start_store_server):
    srv = start_store_server("--history-ttl", "1h")
    phone, laptop = device(srv, 6, "phone"), device(srv, 6, "laptop")
    a = plain(srv, 1)
    for i in range(1, 5):
        a.send_data(6, TEXT, b"n%d" % i)
    a.acked()
    got = laptop.read_msgs(4)
    assert phone.read_msgs(4) == got
    laptop.ack(4)
    phone.ack(2)
    assert laptop.sync() == [] and phone.sync() == []
    phone.close()                               # away, but seen
    tablet = device(srv, 6, "tablet")
    assert tablet.read_msgs(2) == got[2:]
    marker(a, 6, tablet, laptop)


# -- POST ------------------------------------------------------------------------

def test_post_reaches_bare_and_conv_receivers_byte_exact(srv):
    bare = plain(srv, 2, flags=0)
    phone = device(srv, 2, "phone")
    laptop = device(srv, 1, "laptop")
    sent = [(TEXT, "ünïcode, 你好 ✓".encode()), (PICTURE, PICTURE_BYTES),
            (VOICE, random.Random(3).randbytes(5000)), (VIDEO, b""), (TEXT, b"\0\xff\x00")]
    for i, (kind, body) in enumerate(sent):
        laptop.post(2, kind, body, cid=i + 1)
    laptop.acked()
    assert [(f.sender, f.type, f.body) for f in bare.read_bare(5)] == \
        [(1, k, p) for k, p in sent]
    check_msgs(phone.read_msgs(5), 1, 2, sent)


def test_post_payload_may_be_max_frame_bytes(start_store_server):
    s = start_store_server("--max-frame", "1024")
    b = plain(s, 2)
    laptop = device(s, 1, "laptop")
    laptop.post(2, PICTURE, b"p" * 1024, cid=1)     # body: 1034 bytes
    laptop.acked()
    assert b.read_bare(1)[0].body == b"p" * 1024
    laptop.post(2, PICTURE, b"p" * 1025, cid=2)
    laptop.expect_error(TOOBIG)
    laptop.expect_eof()
    marker(plain(s, 3), 2, b)                       # the big one never came


MALFORMED_POSTS = {
    "9-byte body": bytes([TEXT, 0]) + bytes(7),
    "empty body": b"",
    "kind 0": post_body(0, b"x", cid=1),
    "kind 5": post_body(5, b"x", cid=1),
    "kind 0x86": post_body(0x86, b"x", cid=1),
    "flags 1": bytes([TEXT, 1]) + bytes(8) + b"x",
    "flags 0x80": bytes([TEXT, 0x80]) + bytes(8) + b"x",
}


@pytest.mark.parametrize("body", MALFORMED_POSTS.values(), ids=MALFORMED_POSTS.keys())
def test_malformed_post_is_a_protocol_error(srv, body):
    b = plain(srv, 2)
    laptop = device(srv, 1, "laptop")
    laptop.send_data(2, TEXT, b"before")
    laptop.send_frame(1, 2, POST, body)
    laptop.expect_error(PROTO)
    laptop.expect_eof()
    assert payload(b.read_bare(1)[0]) == b"before"
    marker(plain(srv, 3), 2, b)                     # the POST never came


def test_post_without_conv_is_badtype_and_skipped(srv):
    b = plain(srv, 2)
    c = plain(srv, 1)                               # HELLO without CONV
    c.send_frame(1, 2, POST, post_body(TEXT, b"not allowed", cid=1))
    c.send_data(2, TEXT, b"after")
    # (Whether the refused POST took a sequence number is not said: the
    # ACK may count 1 or 2.)
    c.sent = 2
    errors = c.wait_acked(1)
    assert [e.code for e in errors] == [BADTYPE], errors
    assert payload(b.read_bare(1)[0]) == b"after"   # the POST never came


def test_posts_count_in_ack_and_error_refs(srv):
    b = plain(srv, 2)
    laptop = device(srv, 1, "laptop")
    laptop.send_data(2, TEXT, b"one")               # 1
    laptop.post(2, TEXT, b"two", cid=1)             # 2
    laptop.post(0, TEXT, b"to nobody", cid=2)       # 3: BADRCPT
    laptop.send_data(2, TEXT, b"four")              # 4
    errors = laptop.wait_acked(4)
    assert [(e.code, e.ref) for e in errors] == [(BADRCPT, 3)], errors
    assert [payload(f) for f in b.read_bare(3)] == [b"one", b"two", b"four"]


# -- effectively once (cids) -------------------------------------------------

def test_the_same_cid_twice_on_one_connection_is_delivered_once(srv):
    b = plain(srv, 2)
    laptop = device(srv, 1, "laptop")
    laptop.post(2, TEXT, b"once", cid=77)
    laptop.post(2, TEXT, b"once", cid=77)
    laptop.post(2, TEXT, b"next", cid=78)
    laptop.acked()                                   # all three acknowledged
    assert [payload(f) for f in b.read_bare(2)] == [b"once", b"next"]


def test_posts_with_cids_past_max_outbuf_reach_a_live_device_in_order_once(
        start_store_server):
    """A live device gets a POST with a cid only once it is committed, and
    what comes after it waits with it (docs/PROTOCOL.md, "Effectively
    once"); past --max-outbuf of waiting messages its connection reads them
    from the store instead. Either way: every one, in order, once."""
    s = start_store_server("--max-frame", "4K", "--max-outbuf", "72K")
    phone = device(s, 2, "phone")
    laptop = device(s, 1, "laptop")
    bodies = [b"%04d" % i + bytes(2044) for i in range(200)]
    laptop.sock.sendall(b"".join(c2s(1, 2, POST, post_body(TEXT, b, 1000 + i))
                                 for i, b in enumerate(bodies)))
    laptop.sent += len(bodies)
    laptop.acked()
    got = phone.read_msgs(len(bodies))
    check_msgs(got, 1, 2, texts(*bodies))
    phone.ack()
    marker(laptop, 2, phone)


def test_a_resend_after_a_broken_connection_is_delivered_once(srv):
    b = device(srv, 2, "phone")
    laptop = device(srv, 1, "laptop")
    laptop.post(2, TEXT, b"exactly once", cid=501)
    laptop.close()                                   # before reading its ACK
    first = b.read_msg()
    assert payload(first) == b"exactly once"
    laptop = device(srv, 1, "laptop")                # the same device again
    laptop.post(2, TEXT, b"exactly once", cid=501)
    laptop.post(2, TEXT, b"after", cid=502)
    laptop.acked()
    nxt = b.read_msg()
    assert payload(nxt) == b"after", f"the resend was delivered again: {nxt}"
    assert nxt.id > first.id


def test_a_resend_after_sigkill_and_restart_is_delivered_once(start_store_server):
    s = start_store_server()
    laptop = device(s, 1, "laptop")
    laptop.post(2, TEXT, b"survives", cid=900)      # user 2 offline: stored
    laptop.acked()
    assert s.kill() < 0
    s = start_store_server()
    laptop = device(s, 1, "laptop")
    laptop.post(2, TEXT, b"survives", cid=900)
    laptop.post(2, TEXT, b"after", cid=901)
    laptop.acked()
    b = device(s, 2, "phone")
    got = b.read_msgs(2)
    check_msgs(got, 1, 2, texts(b"survives", b"after"))
    b.ack()
    marker(laptop, 2, b)


def test_a_resend_after_delivery_deletion_and_restart_is_delivered_once(start_store_server):
    """The cid outlives its message: the receiver acknowledged it and it was
    deleted before the kill. (A redelivery of the original, same id, would
    be allowed; a second message with a new id is not.)"""
    s = start_store_server("--http-port", "auto")
    b = device(s, 2, "phone")
    laptop = device(s, 1, "laptop")
    laptop.post(2, TEXT, b"delivered", cid=333)
    laptop.acked()
    first = b.read_msg()
    b.ack_sync()
    wait_messages(s, 0)
    assert s.kill() < 0
    s = start_store_server("--http-port", "auto")
    laptop = device(s, 1, "laptop")
    laptop.post(2, TEXT, b"delivered", cid=333)
    laptop.post(2, TEXT, b"after", cid=334)
    laptop.acked()
    b = device(s, 2, "phone")
    while True:
        m = b.read_msg()
        if payload(m) == b"after":
            break
        assert (m.id, payload(m)) == (first.id, b"delivered"), \
            f"the resend became a new message: {m} (first: {first})"


def test_the_same_cid_from_another_device_is_delivered_again(srv):
    b = plain(srv, 2)
    laptop, phone = device(srv, 1, "laptop"), device(srv, 1, "phone")
    laptop.post(2, TEXT, b"same cid", cid=5)
    laptop.acked()
    phone.post(2, TEXT, b"same cid", cid=5)
    phone.acked()
    assert [payload(f) for f in b.read_bare(2)] == [b"same cid", b"same cid"]


def test_cid_zero_is_never_deduplicated(srv):
    b = plain(srv, 2)
    laptop = device(srv, 1, "laptop")
    laptop.post(2, TEXT, b"zero", cid=0)
    laptop.post(2, TEXT, b"zero", cid=0)
    laptop.acked()
    laptop.close()
    laptop = device(srv, 1, "laptop")
    laptop.post(2, TEXT, b"zero", cid=0)
    laptop.acked()
    assert [payload(f) for f in b.read_bare(3)] == [b"zero"] * 3


def test_without_acks_a_cid_is_deduplicated_on_its_connection(srv):
    b = plain(srv, 2)
    laptop = device(srv, 1, "laptop", flags=CONV_FLAG)
    laptop.post(2, TEXT, b"no acks", cid=7)
    laptop.post(2, TEXT, b"no acks", cid=7)
    laptop.post(2, TEXT, b"after", cid=8)
    assert [payload(f) for f in b.read_bare(2)] == [b"no acks", b"after"]


def test_without_acks_a_cid_is_forgotten_with_its_connection(srv):
    """Without ACKS, a message delivered live and not stored (its receiver
    takes it without acknowledging) leaves its cid in its connection's
    memory only."""
    b = plain(srv, 2, flags=0)
    # b has fetched what was stored and is LIVE once a marker reached it:
    # the message below then goes to it live, not through the store
    marker(plain(srv, 5), 2, b)
    laptop = device(srv, 1, "laptop", flags=CONV_FLAG)
    laptop.post(2, TEXT, b"no acks", cid=7)
    assert payload(b.read_bare(1)[0]) == b"no acks"
    laptop.close()
    laptop = device(srv, 1, "laptop", flags=CONV_FLAG)
    laptop.post(2, TEXT, b"no acks", cid=7)
    laptop.post(2, TEXT, b"after", cid=8)
    assert [payload(f) for f in b.read_bare(2)] == [b"no acks", b"after"]


def test_a_cid_is_forgotten_after_the_dedup_window(start_store_server):
    s = start_store_server("--dedup-window", "1s")
    b = plain(s, 2)
    laptop = device(s, 1, "laptop")
    t0 = time.monotonic()
    laptop.post(2, TEXT, b"windowed", cid=33)
    laptop.acked()
    assert payload(b.read_bare(1)[0]) == b"windowed"
    # Resend it (with a probe behind it) until it is delivered again.
    for probe in range(1000, 1200):
        laptop.post(2, TEXT, b"windowed", cid=33)
        laptop.post(2, TEXT, b"probe %d" % probe, cid=probe)
        laptop.acked()
        got = payload(b.read_bare(1)[0])
        if got == b"windowed":
            break
        assert got == b"probe %d" % probe, got
        assert time.monotonic() - t0 < 5, "still deduplicated 5 s after a 1 s window"
        time.sleep(0.05)
    else:
        pytest.fail("the resend was never delivered again")
    assert time.monotonic() - t0 >= 1.0, "the cid was forgotten before the window passed"
    assert payload(b.read_bare(1)[0]) == b"probe %d" % probe


def test_dedup_remembers_the_last_4096_cids_of_a_device(srv):
    b = plain(srv, 2)
    laptop = device(srv, 1, "laptop")
    n = 4097
    laptop.send_raw(b"".join(c2s(1, 2, POST, post_body(TEXT, b"c%d" % cid, cid))
                             for cid in range(1, n + 1)))
    laptop.sent += n
    laptop.acked()
    assert [payload(f) for f in b.read_bare(n)] == [b"c%d" % cid for cid in range(1, n + 1)]
    laptop.post(2, TEXT, b"c2 again", cid=2)         # remembered
    laptop.post(2, TEXT, b"c1 again", cid=1)         # the 4,097th from the end: forgotten
    laptop.post(2, TEXT, b"c4097 again", cid=4097)   # remembered
    laptop.post(2, TEXT, b"after", cid=5000)
    laptop.acked()
    assert [payload(f) for f in b.read_bare(2)] == [b"c1 again", b"after"]


def test_without_acks_a_cid_of_a_stored_message_outlives_its_connection(srv):
    """Without ACKS a cid is in the store when its message was stored (for
    a device that was not connected): a resend on a new connection is not
    delivered again."""
    device(srv, 2, "phone").close()             # seen, away: stored
    laptop = device(srv, 1, "laptop", flags=CONV_FLAG)
    laptop.post(2, TEXT, b"stored, no acks", cid=7)
    assert laptop.sync() == []
    laptop.close()
    laptop = device(srv, 1, "laptop", flags=CONV_FLAG)
    laptop.post(2, TEXT, b"stored, no acks", cid=7)
    laptop.post(2, TEXT, b"after", cid=8)
    assert laptop.sync() == []
    phone = device(srv, 2, "phone")
    check_msgs(phone.read_msgs(2), 1, 2, texts(b"stored, no acks", b"after"))
    phone.ack()
    marker(plain(srv, 3), 2, phone)


def test_a_post_refused_for_quota_reaches_no_device(start_store_server):
    """A POST the store refuses with ERROR QUOTA is delivered to no one at
    all: not to the author's other device, live as it is, nor later to its
    receiver."""
    s = start_store_server("--offline-max-messages", "1")
    device(s, 2, "phone").close()               # seen, away: stored for it
    tablet = device(s, 1, "tablet")             # the author's other device, live
    laptop = device(s, 1, "laptop")
    laptop.post(2, TEXT, b"fills the quota", cid=1)
    laptop.post(2, TEXT, b"over the quota", cid=2)
    errors = laptop.wait_acked()
    assert [(e.code, e.ref) for e in errors] == [(QUOTA, 2)], errors
    assert payload(tablet.read_msg()) == b"fills the quota"
    marker(plain(s, 3), 1, tablet, laptop)
    phone = device(s, 2, "phone")
    assert payload(phone.read_msg()) == b"fills the quota"
    phone.ack()
    marker(plain(s, 3), 2, phone)


def test_posts_without_a_cid_are_delivered_before_their_commit(faults_binary,
                                                               start_store_server,
                                                               tmp_path):
    """Data frames and POSTs without a cid are delivered at once, not held
    until committed: with the disk full (nothing is ever committed, and
    --history-ttl makes every message go to the store) they still reach
    the live receiver and the author's other device; the store's refusal
    comes as ERROR STORE. A POST with a cid, refused the same way, reaches
    no one (test_store.py: test_a_post_the_store_refuses_reaches_no_device)."""
    fault = tmp_path / "diskfull"
    s = start_store_server("--history-ttl", "1h", env={"CHAT_FAULT_DISKFULL": str(fault)})
    s.wait_for_log(re.compile(r" WARN .*fault", re.I))
    phone = device(s, 2, "phone")
    tablet = device(s, 1, "tablet")
    laptop = device(s, 1, "laptop")
    fault.touch()
    laptop.post(2, TEXT, b"no cid", cid=0)
    laptop.send_data(2, TEXT, b"data frame")
    errors = laptop.wait_acked()
    assert {e.code for e in errors} <= {STORE}, errors
    for r in (phone, tablet):
        assert [payload(m) for m in r.read_msgs(2)] == [b"no cid", b"data frame"]
    fault.unlink()


# -- when stored messages are deleted (chat_stored_messages in /metrics) -------

@pytest.fixture
def msrv(start_store_server):
    return start_store_server("--http-port", "auto")


def test_the_store_empties_once_every_device_acknowledged(msrv):
    s = msrv
    phone, laptop = device(s, 2, "phone"), device(s, 2, "laptop")
    a = plain(s, 1)
    probe = StoreProbe(s, a)
    for i in range(3):
        a.send_data(2, TEXT, b"del %d" % i)
    a.acked()
    wait_messages(s, 3)                         # held until the devices acknowledge
    assert len(phone.read_msgs(3)) == 3 and len(laptop.read_msgs(3)) == 3
    probe.start()
    phone.ack(3)
    laptop.ack(1)
    assert phone.sync() == [] and laptop.sync() == []
    n, size = probe.finish()
    assert n == 2, f"{n:g} messages stored after the laptop acknowledged 1 of 3"
    laptop.ack(3)
    wait_messages(s, 0)
    assert stored(s) == (0, 0)


def kept_after_ack(s, sender, to, receiver, probe_sender):
    """`sender` writes to `to`; `receiver` (a device of `to`) reads and
    acknowledges it. Returns the MSG and how many messages the store holds
    once every deletion decided by then is done (StoreProbe; its messages
    come from `probe_sender`, whose own CONV devices must hold nothing)."""
    probe = StoreProbe(s, probe_sender)
    sender.send_data(to, TEXT, b"kept?")
    sender.acked()
    m = receiver.read_msg()
    probe.start()
    receiver.ack_sync()
    return m, probe.finish()[0]


def test_a_message_waits_for_a_device_not_connected_since(msrv):
    s = msrv
    device(s, 2, "laptop").close()              # seen before the message
    phone = device(s, 2, "phone")
    a = plain(s, 1)
    m, n = kept_after_ack(s, a, 2, phone, a)
    assert n == 1, "deleted before the laptop had it"
    laptop = device(s, 2, "laptop")
    assert laptop.read_msg() == m
    laptop.ack_sync()
    wait_messages(s, 0)


def test_a_message_waits_for_the_authors_other_conv_devices_only(msrv):
    s = msrv
    device(s, 1, "phone").close()               # a CONV device of the author, away
    plain(s, 1).close()                         # the author's default device, away
    laptop = device(s, 1, "laptop")
    b = device(s, 2, "phone")
    m, n = kept_after_ack(s, laptop, 2, b, plain(s, 9))
    assert n == 1, "deleted before the author's phone had it"
    phone = device(s, 1, "phone")
    own = phone.read_msg()
    assert (own.id, own.flags, own.to, own.payload) == (m.id, OWN, 2, m.payload)
    phone.ack_sync()
    wait_messages(s, 0)                         # the default device holds nothing


def test_a_device_not_seen_for_device_ttl_no_longer_holds_messages(start_store_server):
    s = start_store_server("--http-port", "auto", "--device-ttl", "1s")
    phone = device(s, 2, "phone")
    laptop = device(s, 2, "laptop")
    gone = time.monotonic()
    laptop.close()
    a = plain(s, 1)
    a.send_data(2, TEXT, b"ttl")
    a.acked()
    phone.read_msg()
    phone.ack_sync()
    deleted = wait_messages(s, 0, timeout=5)
    assert deleted - gone >= 1.0, \
        f"deleted {deleted - gone:.2f} s after the laptop left, before --device-ttl 1s"
    laptop = device(s, 2, "laptop")             # a new device: at the phone's cursor
    marker(a, 2, laptop, phone)


def test_a_receiver_whose_devices_were_all_forgotten_keeps_its_messages(start_store_server):
    """A receiver with no device seen within --device-ttl keeps what is
    sent to it (offline), and its device, back, is a new one: the first,
    which gets every stored message. The server logs what it forgot."""
    s = start_store_server("--http-port", "auto", "--device-ttl", "1s")
    device(s, 2, "phone").close()
    s.wait_for_log(re.compile(r"store: forgot \d+ devices? not seen for"), timeout=5)
    a = plain(s, 1)
    a.send_data(2, TEXT, b"kept offline")
    a.acked()
    wait_messages(s, 1)
    phone = device(s, 2, "phone")
    assert payload(phone.read_msg()) == b"kept offline"
    phone.ack()
    marker(a, 2, phone)


def test_a_users_65th_device_replaces_the_least_recently_seen(srv):
    """A user keeps at most 64 devices (docs/OPERATIONS.md, --device-ttl):
    the 65th replaces the least recently seen, which no longer holds
    messages back and, if it returns, is a new device."""
    names = ["d%d" % i for i in range(64)]
    for name in names:                          # d0 first: the least recently seen
        device(srv, 2, name).close()
    a = plain(srv, 1)
    a.send_data(2, TEXT, b"for 64 devices")
    a.acked()
    for name in names[1:]:                      # seen again, and have it
        d = device(srv, 2, name)
        assert payload(d.read_msg()) == b"for 64 devices"
        d.ack_sync()
        d.close()
    d64 = device(srv, 2, "d64")                 # the 65th: d0 is forgotten
    a.send_data(2, TEXT, b"after the 65th")
    a.acked()
    got = payload(d64.read_msg())
    if got == b"for 64 devices":                # (started at d0's cursor or past it)
        got = payload(d64.read_msg())
    assert got == b"after the 65th", got
    d64.ack_sync()
    srv.wait_for_log("forgetting the least recently seen")
    d0 = device(srv, 2, "d0")                   # new: at the others' cursor, past it
    assert payload(d0.read_msg()) == b"after the 65th", "d0 was remembered"
    marker(a, 2, d0)


def test_history_ttl_keeps_acknowledged_messages_that_long(start_store_server):
    s = start_store_server("--http-port", "auto", "--history-ttl", "1s")
    phone = device(s, 2, "phone")
    a = plain(s, 1)
    sent = time.monotonic()
    a.send_data(2, TEXT, b"history")
    a.acked()
    phone.read_msg()
    phone.ack_sync()
    deleted = wait_messages(s, 0, timeout=5)
    assert deleted - sent >= 1.0, f"deleted {deleted - sent:.2f} s after it was sent"


def test_offline_ttl_purges_whatever_the_devices(start_store_server):
    s = start_store_server("--offline-ttl", "1s")
    device(s, 2, "phone").close()
    a = plain(s, 1)
    a.send_data(2, TEXT, b"expires")
    a.acked()
    s.wait_for_log("purged", timeout=5)
    phone = device(s, 2, "phone")
    marker(a, 2, phone)


# -- a database of the previous release (schema version 2) ---------------------

@pytest.fixture
def legacy(tmp_path):
    """The legacy messages as the file holds them, and a data directory with
    a copy of it as chat.db."""
    assert LEGACY_DB.is_file(), f"{LEGACY_DB} is missing"
    db = sqlite3.connect(f"file:{LEGACY_DB}?mode=ro", uri=True)
    try:
        (version,), = db.execute("PRAGMA user_version").fetchall()
        rows = db.execute("SELECT id, receiver, sender, type, ts, body FROM messages"
                          " ORDER BY id").fetchall()
    finally:
        db.close()
    expect = ([(7, 5, TEXT, b"legacy text %d" % i) for i in range(20)] +
              [(7, 5, PICTURE, PICTURE_BYTES), (8, 5, VOICE, b"voice for 8"),
               (5, 9, TEXT, "to five, ünïcode".encode())])
    assert version == 2 and [r[1:4] + (r[5],) for r in rows] == expect, \
        "tests/integration/data/chat-v2.db is not the file these tests describe"
    data = tmp_path / "legacy-data"
    data.mkdir()
    shutil.copyfile(LEGACY_DB, data / "chat.db")
    return data, rows


def fresh_version(start_store_server, tmp_path):
    """The schema version this server writes on a new database."""
    s = start_store_server(data_dir=tmp_path / "fresh-data")
    assert s.terminate() == 0, s.log()
    return user_version(tmp_path / "fresh-data" / "chat.db")


def legacy_of(rows, receiver):
    return [r for r in rows if r[1] == receiver]


def test_a_legacy_database_is_upgraded_once_and_delivered_to_bare_clients(
        start_store_server, legacy, tmp_path):
    data, rows = legacy
    new = fresh_version(start_store_server, tmp_path)
    assert new > 2, f"a fresh database has schema version {new}"
    # Offline messages of the legacy file must not expire while we test.
    args = ("--offline-ttl", "0")
    s = start_store_server(*args, data_dir=data)
    assert s.terminate() == 0, s.log()
    upgraded = db_state(data / "chat.db")
    assert upgraded[0] == new, f"user_version {upgraded[0]} after the upgrade, expected {new}"
    s = start_store_server(*args, data_dir=data)     # a second start changes nothing
    assert s.terminate() == 0, s.log()
    assert db_state(data / "chat.db") == upgraded, "the second start changed the database"

    s = start_store_server(*args, data_dir=data)
    for user in (7, 8, 5):
        c = plain(s, user)
        mine = legacy_of(rows, user)
        got = c.read_bare(len(mine))
        assert [(f.sender, f.type, f.body) for f in got] == [(r[2], r[3], r[5]) for r in mine]
        c.ack()
        marker(plain(s, 1), user, c)
    assert s.terminate() == 0, s.log()
    assert user_version(data / "chat.db") == new


def test_a_legacy_database_is_delivered_to_conv_devices(start_store_server, legacy):
    data, rows = legacy
    s = start_store_server("--offline-ttl", "0", "--http-port", "auto", data_dir=data)
    wait_messages(s, 23)
    seen = []
    for user in (7, 8):
        d = device(s, user, "phone")
        mine = legacy_of(rows, user)
        got = d.read_msgs(len(mine))
        check_msgs(got, 5, user, [(r[3], r[5]) for r in mine])
        assert [m.time for m in got] == [r[4] for r in mine], "times differ from the file's"
        seen += got
        d.ack_sync()
    # User 5 has no device: its legacy messages to 7 and 8 are gone, the
    # one to 5 waits.
    wait_messages(s, 1)
    d5 = device(s, 5, "phone")
    (r23,) = legacy_of(rows, 5)
    m = d5.read_msg()
    assert (m.sender, m.kind, m.flags, m.to, m.time, m.payload) == \
        (9, TEXT, 0, 5, r23[4], r23[5])
    seen.append(m)
    ids = [x.id for x in seen]
    assert ids == sorted(set(ids)), f"legacy ids out of order: {ids}"
    d5.ack()
    (new,) = marker(plain(s, 1), 5, d5)
    assert new.id > max(ids), "a new message's id is not past the legacy ones"


def test_legacy_messages_reach_only_their_receivers(start_store_server, legacy):
    """Own copies go to the CONV devices an author had when it sent: the
    legacy messages were sent by users who had none, so user 5's first CONV
    device gets what was sent to 5, not what 5 sent."""
    data, rows = legacy
    s = start_store_server("--offline-ttl", "0", data_dir=data)
    d5 = device(s, 5, "phone")
    mine = [r for r in rows if r[1] == 5]
    assert mine, "the fixture holds a message to user 5"
    got = d5.read_msgs(len(mine))
    assert [(m.sender, m.flags, m.to, m.kind, m.payload) for m in got] == \
        [(r[2], 0, r[1], r[3], r[5]) for r in mine]
    a = plain(s, 9)
    marker(a, 5, d5)  # (nothing else came before it)
