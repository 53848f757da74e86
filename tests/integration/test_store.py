"""The durable offline store (SQLite under --data-dir) and acknowledgements.

ACKs (docs/PROTOCOL.md): a client opts in with HELLO flags bit 0; the server
then tells it, with cumulative ACK counts, which of its data frames are
handled (stored durably or otherwise sure to reach the receiver), after an
ERROR naming any frame that was not accepted. An opted-in receiver ACKs what
it got; what it did not acknowledge is delivered again on its next connection.
"""

import os
import random
import re
import signal
import struct
import subprocess
from pathlib import Path

import pytest

import conftest
from conftest import REPO, require_binary
from convproto import device, payload, plain
from proto import (ACKS_FLAG, PICTURE, PROTO, QUOTA, SLOW, STORE, TEXT,
                   ConnectionClosed, Sender, c2s, ping_sync, read_data,
                   send_ack, wait_for_ack)


def acked_sender(server, user=1):
    """A sender bound with HELLO that opted in to acknowledgements."""
    a = server.client()
    assert a.hello(user, flags=ACKS_FLAG).flags & ACKS_FLAG, "ACKS not granted"
    return a


def send_all_acked(a, receiver, bodies, user=1, timeout=20):
    """Pipeline `bodies` to `receiver` and wait until the ACK covers them all;
    no ERROR may arrive."""
    start = getattr(a, "ack_count", 0)
    a.send_raw(b"".join(c2s(user, receiver, TEXT, b) for b in bodies))
    r = wait_for_ack(a, start + len(bodies), timeout=timeout)
    assert r.errors == [], f"unexpected ERRORs: {r.errors}"
    assert r.frames == [], f"unexpected frames: {r.frames[:3]}"


def bodies_of(frames, sender=1):
    assert all(f.sender == sender for f in frames), \
        f"wrong sender in {[f.sender for f in frames][:10]}"
    return [f.body for f in frames]


# -- start-up ------------------------------------------------------------

def test_startup_log_names_the_sqlite_store(start_store_server, store_dir):
    s = start_store_server()
    s.wait_for_log("store: sqlite")
    line = s.log_lines("store: sqlite")[0]
    assert str(store_dir / "chat.db") in line, line
    assert (store_dir / "chat.db").is_file()


# -- offline delivery --------------------------------------------------------

def test_offline_frames_come_before_newer_ones_on_hello(start_store_server):
    s = start_store_server()
    a = acked_sender(s)
    send_all_acked(a, 3, [b"offline %d" % i for i in range(5)])
    c = s.client()
    c.hello(3)
    a.send_frame(1, 3, TEXT, b"live")
    got = read_data(c, 6)
    assert bodies_of(got) == [b"offline %d" % i for i in range(5)] + [b"live"]
    assert all(f.type == TEXT for f in got)
    c.expect_no_frame()


def test_empty_frames_stored_and_fetched(start_store_server):
    """Stored frames with empty bodies only (a fetch with no body bytes at
    all: found by the conn fuzzer as undefined behaviour in the store)."""
    s = start_store_server()
    a = acked_sender(s)
    send_all_acked(a, 3, [b""] * 4)
    c = s.client()
    c.hello(3)
    got = read_data(c, 4)
    assert bodies_of(got) == [b""] * 4
    c.expect_no_frame()


def test_article_client_gets_stored_frames_after_its_first_data_frame(start_store_server):
    s = start_store_server()
    a = acked_sender(s)
    send_all_acked(a, 3, [b"for the article client %d" % i for i in range(3)])
    witness = s.client()
    witness.hello(4)
    c = s.client()                        # never sends HELLO
    c.send_frame(3, 4, TEXT, b"hi, I am 3")   # binds it to user 3
    assert witness.read_frame() == (3, TEXT, b"hi, I am 3")
    got = read_data(c, 3)
    assert bodies_of(got) == [b"for the article client %d" % i for i in range(3)]
    c.expect_no_frame()


def test_10000_stored_messages_arrive_in_order_then_a_new_one(start_store_server):
    s = start_store_server()
    a = acked_sender(s)
    n = 10000
    bodies = [(b"m%05d" % i).ljust(64, b".") for i in range(n)]
    send_all_acked(a, 6, bodies, timeout=30)
    c = s.client()
    c.hello(6)
    got = read_data(c, n, timeout=30)
    assert bodies_of(got) == bodies
    a.send_frame(1, 6, TEXT, b"newer")
    assert c.read_frame() == (1, TEXT, b"newer")
    c.expect_no_frame()


# -- acknowledgements to senders ------------------------------------------

def test_acks_go_only_to_clients_that_opted_in(start_store_server):
    s = start_store_server()
    a = acked_sender(s)
    plain = s.client()
    assert plain.hello(7).flags & ACKS_FLAG == 0
    article = s.client()
    for i in range(3):
        a.send_frame(1, 3, TEXT, b"acked %d" % i)
        plain.send_frame(7, 3, TEXT, b"plain %d" % i)
        article.send_frame(8, 3, TEXT, b"article %d" % i)
    r = wait_for_ack(a, 3)
    assert r.errors == [] and r.frames == []
    plain.expect_no_frame()
    article.expect_no_frame()
    # Every one of them was stored, in the order accepted per sender.
    c = s.client()
    c.hello(3)
    got = read_data(c, 9)
    for user, word in [(1, b"acked"), (7, b"plain"), (8, b"article")]:
        assert [f.body for f in got if f.sender == user] == \
            [word + b" %d" % i for i in range(3)]
    c.expect_no_frame()


def test_ack_covers_frames_delivered_live(start_store_server):
    s = start_store_server()
    b = s.client()
    b.hello(2)
    a = acked_sender(s)
    a.send_raw(b"".join(c2s(1, 2, TEXT, b"live %d" % i) for i in range(10)))
    assert bodies_of(read_data(b, 10)) == [b"live %d" % i for i in range(10)]
    r = wait_for_ack(a, 10)
    assert r.errors == [] and r.frames == []


# -- quota -----------------------------------------------------------------

def test_message_quota_refuses_the_sixth_and_acks_it(start_store_server):
    s = start_store_server("--offline-max-messages", "5")
    a = acked_sender(s)
    a.send_raw(b"".join(c2s(1, 3, TEXT, b"q%d" % i) for i in range(1, 7)))
    r = wait_for_ack(a, 6)
    assert [(e.code, e.ref) for e, _ in r.errors] == [(QUOTA, 6)], r.errors
    assert r.errors[0][1] < 6, "the ERROR must come before the ACK covering frame 6"
    assert r.errors[0][0].reason
    c = s.client()
    c.hello(3)
    assert bodies_of(read_data(c, 5)) == [b"q%d" % i for i in range(1, 6)]
    c.expect_no_frame(0.5)                 # the 6th is never delivered


def test_byte_quota_refuses_what_does_not_fit(start_store_server):
    s = start_store_server("--offline-max-bytes", "1000")
    a = acked_sender(s)
    big = [bytes([65 + i]) * 300 for i in range(4)]     # 300 bytes each
    a.send_raw(b"".join(c2s(1, 3, TEXT, body) for body in big))
    r = wait_for_ack(a, 4)
    assert [(e.code, e.ref) for e, _ in r.errors] == [(QUOTA, 4)], r.errors
    assert r.errors[0][1] < 4, "the ERROR must come before the ACK covering frame 4"
    a.send_frame(1, 3, TEXT, b"s" * 50)                 # 950 bytes: fits
    r = wait_for_ack(a, 5)
    assert r.errors == [], r.errors
    c = s.client()
    c.hello(3)
    assert bodies_of(read_data(c, 4)) == big[:3] + [b"s" * 50]
    c.expect_no_frame(0.5)


# -- expiry ----------------------------------------------------------------

def test_expired_messages_are_purged_and_never_delivered(start_store_server):
    s = start_store_server("--offline-ttl", "1s")
    a = acked_sender(s)
    send_all_acked(a, 3, [b"expires %d" % i for i in range(3)])
    s.wait_for_log("purged", timeout=15)
    c = s.client()
    c.hello(3)
    c.expect_no_frame(0.5)
    a.send_frame(1, 3, TEXT, b"fresh")
    assert c.read_frame() == (1, TEXT, b"fresh")
    c.expect_no_frame()


# -- slow receiver: spill to the store ------------------------------------

def test_slow_receiver_gets_everything_on_the_same_connection(start_store_server):
    s = start_store_server("--max-frame", str(512 * 1024),
                           "--max-outbuf", str(1024 * 1024))
    n, size = 64, 256 * 1024
    b = s.client(rcvbuf=64 * 1024)         # small kernel buffer: B fills up fast
    b.hello(2)
    a = s.client()
    a.hello(1)
    rng = random.Random(64)
    bodies = [struct.pack("!I", i) + rng.randbytes(size - 4) for i in range(n)]
    # B reads nothing until A's 16 MiB are all sent: A is never blocked by B.
    Sender(a, b"".join(c2s(1, 2, PICTURE, body) for body in bodies),
           timeout=30).finish(timeout=30)
    s.wait_for_log("wait in the store", timeout=10)

    got = []
    for _ in range(n):
        try:
            f = b.read_frame(timeout=30)
        except ConnectionClosed as e:
            pytest.fail(f"B was closed after {len(got)} frames: {e}")
        assert (f.sender, f.type, len(f.body)) == (1, PICTURE, size), \
            f"frame {len(got)}: {(f.sender, f.type, len(f.body))}"
        got.append(f)
    assert [struct.unpack("!I", f.body[:4])[0] for f in got] == list(range(n))
    assert all(f.body == body for f, body in zip(got, bodies)), "a body changed"
    b.expect_no_frame()                     # exactly once
    a.expect_no_frame(0.1)                  # no ERROR for A
    a.send_frame(1, 2, TEXT, b"caught up")  # B is live again, same connection
    assert b.read_frame() == (1, TEXT, b"caught up")


# -- disk full ---------------------------------------------------------------

# chat-server with the disk-full VFS shim linked in (tests/support/
# faultvfs.c); the shipped binary has no fault injection.
FAULTS_BINARY = Path(os.environ.get("CHAT_SERVER_FAULTS",
                                    REPO / "build" / "tests" / "chat-server-faults"))


@pytest.fixture
def faults_binary(monkeypatch):
    """Servers started by this test run chat-server-faults."""
    if not (FAULTS_BINARY.is_file() and os.access(FAULTS_BINARY, os.X_OK)):
        pytest.fail(f"{FAULTS_BINARY} is missing: build it with `make "
                    f"build/tests/chat-server-faults` or point "
                    f"$CHAT_SERVER_FAULTS at it", pytrace=False)
    monkeypatch.setattr(conftest, "BINARY", FAULTS_BINARY)


def test_disk_full_refuses_with_store_error_and_recovers(faults_binary, start_store_server,
                                                         tmp_path):
    fault = tmp_path / "diskfull"
    s = start_store_server(env={"CHAT_FAULT_DISKFULL": str(fault)})
    s.wait_for_log(re.compile(r" WARN .*fault", re.I))

    p, q = s.client(), s.client()          # a live pair, never opted in
    p.hello(10)
    q.hello(11)
    a = acked_sender(s)

    a.send_frame(1, 3, TEXT, b"one")
    r = wait_for_ack(a, 1)
    assert r.errors == [], r.errors

    fault.touch()
    a.send_frame(1, 3, TEXT, b"two")
    r = wait_for_ack(a, 2)
    assert [(e.code, e.ref) for e, _ in r.errors] == [(STORE, 2)], r.errors
    assert r.errors[0][1] < 2, "the ERROR must come before the ACK covering frame 2"
    # Other clients are not affected.
    q.send_frame(11, 10, TEXT, b"q to p")
    assert p.read_frame() == (11, TEXT, b"q to p")
    p.send_frame(10, 11, TEXT, b"p to q")
    assert q.read_frame() == (10, TEXT, b"p to q")
    assert s.alive()

    fault.unlink()
    a.send_frame(1, 3, TEXT, b"three")
    r = wait_for_ack(a, 3)
    assert r.errors == [], r.errors

    c = s.client()
    c.hello(3)
    assert bodies_of(read_data(c, 2)) == [b"one", b"three"]
    c.expect_no_frame()


def test_a_post_the_store_refuses_reaches_no_device(faults_binary, start_store_server,
                                                  tmp_path):
    """A message with a client id is delivered only once committed (docs/
    PROTOCOL.md, "Effectively once"; a kill before the commit must not
    leave it delivered and then resent): one the store refuses (disk
    full) reaches none of its receiver's devices, live as they are, nor the
    author's other device; the next one reaches each of them first."""
    fault = tmp_path / "diskfull"
    s = start_store_server(env={"CHAT_FAULT_DISKFULL": str(fault)})
    s.wait_for_log(re.compile(r" WARN .*fault", re.I))
    phone = device(s, 2, "phone")                 # CONV and ACKS
    bare = plain(s, 2, flags=0)                   # the default device, no ACKS
    tablet = device(s, 1, "tablet")               # the author's other device
    laptop = device(s, 1, "laptop")

    fault.touch()
    laptop.post(2, TEXT, b"refused", cid=41)
    errors = laptop.wait_acked()
    assert [(e.code, e.ref) for e in errors] == [(STORE, 1)], errors
    fault.unlink()
    laptop.post(2, TEXT, b"after", cid=42)
    laptop.acked()
    for who, r in (("phone", phone), ("default device", bare), ("tablet", tablet)):
        d = r.next_delivery()
        assert payload(d) == b"after", f"{who}: got {d} first"


# -- damaged database ------------------------------------------------------

def test_corrupt_database_stops_startup_and_is_left_alone(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    db = data / "chat.db"
    junk = random.Random(4096).randbytes(4096)
    db.write_bytes(junk)
    try:
        r = subprocess.run([require_binary(), "--port", "0", "--data-dir", str(data)],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"server did not exit within 10 s on a damaged database:\n{e.stderr!r}")
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == 1, f"exit status {r.returncode}:\n{err}"
    assert str(db) in err, f"stderr does not name {db}:\n{err}"
    assert re.search(r"damaged|corrupt|not a database|malformed", err, re.I), err
    assert re.search(r"restore|backup|move|remove|rename|delete|--data-dir", err, re.I), \
        f"stderr does not say what to do:\n{err}"
    assert db.read_bytes() == junk, "the damaged database was modified"


# -- restarts ----------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_acked_messages_survive_a_restart(start_store_server, sig):
    s = start_store_server()
    a = acked_sender(s)
    bodies = [b"persist %04d" % i for i in range(1000)]
    send_all_acked(a, 4, bodies, timeout=20)
    a.close()
    rc = s.terminate(sig=sig)
    assert rc == (0 if sig == signal.SIGTERM else -signal.SIGKILL), \
        f"exit status {rc}:\n{s.log()}"

    s2 = start_store_server()                  # same data directory
    c = s2.client()
    c.hello(4)
    assert bodies_of(read_data(c, 1000, timeout=20)) == bodies
    c.expect_no_frame()


def test_fsync_normal_keeps_messages_over_a_clean_restart(start_store_server):
    s = start_store_server("--fsync", "normal")
    s.wait_for_log("store: sqlite")
    assert "fsync normal" in s.log_lines("store: sqlite")[0], s.log()
    a = acked_sender(s)
    send_all_acked(a, 4, [b"normal %d" % i for i in range(20)])
    a.close()
    assert s.terminate() == 0
    s2 = start_store_server("--fsync", "normal")
    c = s2.client()
    c.hello(4)
    assert bodies_of(read_data(c, 20)) == [b"normal %d" % i for i in range(20)]
    c.expect_no_frame()


# -- acknowledgements from receivers ---------------------------------------

def test_unacknowledged_frames_are_delivered_again(start_store_server):
    s = start_store_server()
    a = acked_sender(s)
    bodies = [b"redeliver %d" % i for i in range(3)]

    b = s.client()
    b.hello(5, flags=ACKS_FLAG)
    a.send_raw(b"".join(c2s(1, 5, TEXT, x) for x in bodies))
    assert bodies_of(read_data(b, 3)) == bodies
    b.close()                                  # no ACK

    b2 = s.client()
    assert b2.hello(5, flags=ACKS_FLAG).flags & ACKS_FLAG
    assert bodies_of(read_data(b2, 3)) == bodies
    send_ack(b2, 5, 3)
    assert ping_sync(b2, 5) == []              # the ACK has been handled
    b2.close()

    b3 = s.client()
    b3.hello(5, flags=ACKS_FLAG)
    b3.expect_no_frame(0.5)


def test_partly_acknowledged_frames_redeliver_only_the_rest(start_store_server):
    s = start_store_server()
    a = acked_sender(s)
    bodies = [b"part %d" % i for i in range(3)]
    b = s.client()
    b.hello(5, flags=ACKS_FLAG)
    a.send_raw(b"".join(c2s(1, 5, TEXT, x) for x in bodies))
    assert bodies_of(read_data(b, 3)) == bodies
    send_ack(b, 5, 2)
    assert ping_sync(b, 5) == []
    b.close()

    b2 = s.client()
    b2.hello(5, flags=ACKS_FLAG)
    assert bodies_of(read_data(b2, 1)) == bodies[2:]
    b2.expect_no_frame(0.5)
    send_ack(b2, 5, 1)
    assert ping_sync(b2, 5) == []
    b2.close()

    b3 = s.client()
    b3.hello(5, flags=ACKS_FLAG)
    b3.expect_no_frame(0.5)


def test_receiver_that_never_opted_in_gets_no_redelivery(start_store_server):
    s = start_store_server()
    a = acked_sender(s)                        # its frames have durable copies
    b = s.client()
    b.hello(5)
    a.send_raw(b"".join(c2s(1, 5, TEXT, b"once %d" % i) for i in range(3)))
    assert bodies_of(read_data(b, 3)) == [b"once %d" % i for i in range(3)]
    assert wait_for_ack(a, 3).errors == []
    b.close()
    b2 = s.client()
    b2.hello(5)
    b2.expect_no_frame(0.5)


def test_ack_of_more_frames_than_sent_is_a_protocol_error(start_store_server):
    s = start_store_server()
    a = acked_sender(s)
    b = s.client()
    b.hello(5, flags=ACKS_FLAG)
    a.send_frame(1, 5, TEXT, b"one")
    a.send_frame(1, 5, TEXT, b"two")
    assert bodies_of(read_data(b, 2)) == [b"one", b"two"]
    send_ack(b, 5, 3)
    err = b.read_error()
    assert (err.code, err.ref) == (PROTO, 0), err
    b.expect_eof()
    # A is not affected.
    a.send_frame(1, 9, TEXT, b"still fine")
    assert wait_for_ack(a, 3).errors == []


# -- the acknowledgement window (--max-unacked) ------------------------------

def read_window(b, user, n, bodies_seen):
    """Read the n data frames the window allows, check that nothing more
    comes while they are unacknowledged (PONG proves the server handled
    everything sent before), then ACK them."""
    bodies_seen += bodies_of(read_data(b, n))
    assert ping_sync(b, user) == []
    send_ack(b, user, len(bodies_seen))


def test_live_receiver_past_the_window_is_a_slow_consumer(start_store_server):
    s = start_store_server("--max-unacked", "10")
    a = acked_sender(s)
    b = s.client()
    b.hello(5, flags=ACKS_FLAG)
    # B is LIVE once it got a frame (it came live, or from the store, after
    # which B caught up): then it reads live frames.
    send_all_acked(a, 5, [b"first"])
    assert bodies_of(read_data(b, 1)) == [b"first"]
    send_ack(b, 5, 1)
    assert ping_sync(b, 5) == []
    bodies = [b"window %d" % i for i in range(25)]
    send_all_acked(a, 5, bodies)     # every one stored: acknowledged to A
    # B never acknowledges: it gets the window, then ERROR SLOW, then EOF.
    assert bodies_of(read_data(b, 10)) == bodies[:10]
    err = b.read_error()
    assert err.code == SLOW and "--max-unacked" in err.reason, err
    b.expect_eof()
    assert s.log_lines("slow consumer")
    # Nothing stored was lost: a new connection gets all 25, in order, a
    # window at a time as it acknowledges.
    b2 = s.client()
    b2.hello(5, flags=ACKS_FLAG)
    seen = []
    read_window(b2, 5, 10, seen)
    read_window(b2, 5, 10, seen)
    read_window(b2, 5, 5, seen)
    assert seen == bodies
    assert ping_sync(b2, 5) == []
    b2.close()
    b3 = s.client()
    b3.hello(5, flags=ACKS_FLAG)
    b3.expect_no_frame(0.5)
    a.send_frame(1, 9, TEXT, b"A is not affected")
    assert wait_for_ack(a, 27).errors == []


def test_stored_frames_wait_for_acks_past_the_window(start_store_server):
    s = start_store_server("--max-unacked", "4")
    a = acked_sender(s)
    bodies = [b"backlog %d" % i for i in range(10)]
    send_all_acked(a, 6, bodies)     # B is offline: all stored
    b = s.client()
    b.hello(6, flags=ACKS_FLAG)
    assert bodies_of(read_data(b, 4)) == bodies[:4]
    # Past the window the stored frames wait: the connection stays open and
    # answers (PONG comes after everything the server had sent).
    assert ping_sync(b, 6) == []
    send_ack(b, 6, 2)                # two acknowledged: two more come
    assert bodies_of(read_data(b, 2)) == bodies[4:6]
    assert ping_sync(b, 6) == []
    send_ack(b, 6, 6)
    assert bodies_of(read_data(b, 4)) == bodies[6:10]
    send_ack(b, 6, 10)
    assert ping_sync(b, 6) == []
