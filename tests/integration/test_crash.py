"""Crash tests: SIGKILL the server while opted-in senders write, restart it
on the same data directory, and check that no message the server
acknowledged was lost: bare data frames to an absent receiver; and POSTs
with client ids, resent after each kill, to a user with two devices and to
a group, each delivered once to every device.

CHAT_CHAOS_KILLS (default 5) sets the number of kills; CHAT_CHAOS_SEED the
random seed (the kill moments).
"""

import os
import random
import re
import select
import signal
import socket
import time

import pytest

from convproto import (DEVICE, GROUP_FLAG, MSG, MSG_HEAD, POST, conv_hello_body,
                       group_device, post_body)
from proto import (ACK, ACKS_FLAG, DATA_TYPES, ERROR, HELLO, S2C, TEXT,
                   WELCOME, Frame, ack_body, c2s, hello_body, parse_ack,
                   parse_error, parse_welcome)

KILLS = int(os.environ.get("CHAT_CHAOS_KILLS", "5"))
SEED = int(os.environ.get("CHAT_CHAOS_SEED", "1729"))
SENDERS = (101, 102, 103)
RECEIVER = 200
WINDOW = 64                  # frames in flight (sent, not yet ACKed) per sender
# A kill comes once a random number of frames were ACKed since the (re)start,
# or after a random time if the server is slower than that. With the numbers
# of messages bounded (under the default offline quota of 100000 even with
# 20 kills), the receiver's final read stays short.
ROUND_SECONDS = (0.2, 0.6)
ROUND_ACKS = (100, 3000)
QUIET = 1.0                  # the receiver stops after this long without data
BODY = re.compile(rb"s(\d+)-(\d+)")


class Conn:
    """A raw non-blocking-read connection bound with HELLO + ACKS (or
    another HELLO body, whose WELCOME must grant `want`)."""

    def __init__(self, server, user, body=None, want=ACKS_FLAG):
        self.user = user
        self.buf = bytearray()
        self.pending = []        # frames parsed but not yet handed out
        self.sock = socket.create_connection((server.host, server.port), timeout=5)
        body = hello_body(ACKS_FLAG) if body is None else body
        self.sock.sendall(c2s(user, 0, HELLO, body))
        deadline = time.monotonic() + 5
        while True:
            frames = self.frames()
            if frames:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"no WELCOME for user {user} within 5 s:\n{server.log()}")
            if not self.read(deadline - time.monotonic()):
                pytest.fail(f"server closed user {user} before WELCOME:\n{server.log()}")
        f = frames.pop(0)
        assert f.type == WELCOME, f"user {user}: expected WELCOME, got {f}"
        w = parse_welcome(f.body)
        assert w.user == user and w.flags & want == want, f"user {user}: {w}"
        self.pending = frames    # what came with the WELCOME

    def read(self, timeout):
        """Wait up to `timeout` s for bytes; False at EOF."""
        r, _, _ = select.select([self.sock], [], [], max(timeout, 0))
        if not r:
            return True
        try:
            data = self.sock.recv(1 << 20)
        except (ConnectionResetError, socket.timeout):
            data = b""
        self.buf += data
        return bool(data)

    def frames(self):
        out, self.pending = self.pending, []
        while len(self.buf) >= S2C.size:
            sender, ftype, length = S2C.unpack_from(self.buf)
            if len(self.buf) < S2C.size + length:
                break
            out.append(Frame(sender, ftype, bytes(self.buf[S2C.size:S2C.size + length])))
            del self.buf[:S2C.size + length]
        return out

    def close(self):
        self.sock.close()


class ChaosSender:
    """One user sending "s<user>-<n>" to RECEIVER, n = 0, 1, 2, ... across
    connections; remembers which n the server acknowledged."""

    def __init__(self, user):
        self.user = user
        self.next_n = 0
        self.acked = set()
        self.errors = []
        self.conn = None

    def connect(self, server):
        self.conn = Conn(server, self.user)
        self.seq = 0             # data frames sent on this connection
        self.ack = 0             # last ACK count on this connection
        self.inflight = {}       # seq -> n, sent but not ACKed
        self.refused = set()     # seqs named by an ERROR before their ACK

    def drop(self):
        """The server died: what was not ACKed has an unknown fate."""
        self.conn.close()
        self.conn = None

    def fill(self):
        batch = []
        while len(self.inflight) < WINDOW:
            self.seq += 1
            self.inflight[self.seq] = self.next_n
            batch.append(c2s(self.user, RECEIVER, TEXT, b"s%d-%d" % (self.user, self.next_n)))
            self.next_n += 1
        if batch:
            self.conn.sock.sendall(b"".join(batch))

    def handle(self):
        """Process what arrived; return how many frames were newly ACKed."""
        newly = 0
        for f in self.conn.frames():
            assert f.sender == 0, f"user {self.user}: frame from {f.sender}: {f}"
            if f.type == ERROR:
                e = parse_error(f.body)
                self.errors.append(e)
                self.refused.add(e.ref)
            elif f.type == ACK:
                count = parse_ack(f.body)
                assert self.ack <= count <= self.seq, \
                    f"user {self.user}: ACK {count} after {self.ack}, {self.seq} sent"
                for s in range(self.ack + 1, count + 1):
                    n = self.inflight.pop(s)
                    if s not in self.refused:
                        self.acked.add(n)
                        newly += 1
                self.ack = count
            else:
                pytest.fail(f"user {self.user}: unexpected frame {f}")
        return newly


def pump(senders, until, max_acks):
    """Keep every sender's window full and collect ACKs until the monotonic
    time `until` or `max_acks` more ACKed frames. Returns the ACKed count."""
    got = 0
    while time.monotonic() < until and got < max_acks:
        for s in senders:
            s.fill()
        socks = {s.conn.sock: s for s in senders}
        r, _, _ = select.select(list(socks), [], [], min(0.05, max(until - time.monotonic(), 0)))
        for sock in r:
            s = socks[sock]
            assert s.conn.read(0), f"server closed the connection of user {s.user}"
            got += s.handle()
    return got


def drain(senders, server, timeout=10.0):
    """Stop sending; wait until every frame in flight is ACKed."""
    deadline = time.monotonic() + timeout
    while any(s.inflight for s in senders):
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail("frames still not ACKed after %.0f s: %s\n%s" % (
                timeout, {s.user: len(s.inflight) for s in senders}, server.log()[-3000:]))
        for s in senders:
            if s.inflight:
                assert s.conn.read(min(left, 0.05)), f"server closed user {s.user}"
                s.handle()


def chaos(senders, server, start_store_server, rng):
    """KILLS runs of load, each ended by SIGKILL and a restart on the same
    data directory, then a last run whose frames are all ACKed. Returns
    the last server and the frames ACKed per run."""

    def run():
        for s in senders:
            s.connect(server)
        until = time.monotonic() + rng.uniform(*ROUND_SECONDS)
        return pump(senders, until, rng.randint(*ROUND_ACKS))

    rounds = []
    for _ in range(KILLS):
        rounds.append(run())
        if rng.random() < 0.5:
            for s in senders:      # kill with fresh frames on their way in
                s.fill()
        status = server.kill()
        assert status == -signal.SIGKILL, f"exit status {status}:\n{server.log()}"
        for s in senders:
            s.drop()
        server = start_store_server()                   # same data directory
    rounds.append(run())                                # the last run: no kill
    drain(senders, server)
    return server, rounds


def receive_all(server):
    """User RECEIVER connects with ACKS and reads until QUIET s of silence,
    acknowledging as it goes. Returns the data frames."""
    c = Conn(server, RECEIVER)
    got = []
    last = time.monotonic()
    deadline = last + 60
    while time.monotonic() - last < QUIET:
        assert time.monotonic() < deadline, "receiver still reading after 60 s"
        before = len(got)
        for f in c.frames():
            assert f.type in DATA_TYPES, f"receiver: unexpected frame {f}"
            got.append(f)
        if len(got) != before:
            c.sock.sendall(c2s(RECEIVER, 0, ACK, ack_body(len(got))))
            last = time.monotonic()
        assert c.read(0.1), f"server closed the receiver after {len(got)} frames"
    c.close()
    return got


def test_no_acked_message_is_lost_across_sigkills(start_store_server, capsys):
    rng = random.Random(SEED)
    senders = [ChaosSender(u) for u in SENDERS]
    server = start_store_server()
    server, rounds = chaos(senders, server, start_store_server, rng)

    frames = receive_all(server)
    delivered, dups, order_errors = set(), 0, []
    last = {}
    for f in frames:
        m = BODY.fullmatch(f.body)
        assert m and f.type == TEXT, f"receiver: unexpected frame {f}"
        assert f.sender in SENDERS and int(m.group(1)) == f.sender, f"wrong sender: {f}"
        key = (f.sender, int(m.group(2)))
        if key in delivered:
            dups += 1
        elif key[1] < last.get(f.sender, -1):
            order_errors.append(key)
        delivered.add(key)
        last[f.sender] = max(key[1], last.get(f.sender, -1))
    acked = {(s.user, n) for s in senders for n in s.acked}
    lost = sorted(acked - delivered)
    sent = sum(s.next_n for s in senders)

    with capsys.disabled():
        print(f"\ncrash test: {KILLS} kills (seed {SEED}), {sent} sent, "
              f"{len(acked)} acknowledged, {len(frames)} delivered "
              f"({len(delivered)} distinct), {len(lost)} lost, {dups} duplicated; "
              f"ACKed per run: {rounds}")

    assert all(s.errors == [] for s in senders), {s.user: s.errors[:3] for s in senders}
    assert all(s.acked for s in senders), "a sender never got an ACK"
    assert not lost, f"{len(lost)} acknowledged messages lost, first: {lost[:10]}"
    assert delivered <= {(s.user, n) for s in senders for n in range(s.next_n)}
    assert not order_errors, f"delivered out of order: {order_errors[:10]}"


# -- POSTs with client ids to two devices and a group -------------------------
#
# Senders (CONV devices with ACKS, members of the group) POST "p<user>-<n>"
# with cid n + 1: even n to RECEIVER2, odd n to the group. After each kill
# they reconnect as the same device and resend, with the same cids, what
# was not acknowledged. RECEIVER2's two devices and the other members stay
# away until the end (so a second copy of a content can only come from a
# resend stored twice); the senders get the others' group messages live,
# across the kills (a copy again with the same id is a redelivery; with
# another id, a resend stored twice).

SENDERS2 = (111, 112, 113)
RECEIVER2 = 210
RECEIVER2_DEVICES = ("phone", "laptop")
MEMBERS2 = (301, 302)        # 301: a CONV device; 302: a default device (bare frames)
POSTED = re.compile(rb"p(\d+)-(\d+)")


def conv_conn(server, user, name):
    return Conn(server, user, conv_hello_body(name), want=DEVICE)


def parse_delivery(f, conv):
    """(id or None, sender, flags, to, payload) of a MSG or a bare frame."""
    if conv:
        assert f.type == MSG, f"expected MSG, got {f}"
        mid, kind, flags, to, _ = MSG_HEAD.unpack_from(f.body)
        return mid, f.sender, flags, to, f.body[MSG_HEAD.size:]
    assert f.type in DATA_TYPES, f"expected a data frame, got {f}"
    return None, f.sender, 0, None, f.body


class PostSender:
    """A member posting with cids, resending after each reconnect what the
    server did not acknowledge; keeps the group messages it gets."""

    def __init__(self, user, group):
        self.user, self.group = user, group
        self.next_n = 0
        self.acked = set()
        self.errors = []
        self.carry = []          # n sent and not acknowledged when the server died
        self.got = {}            # payload -> set of server ids (group messages)
        self.conn = None

    def connect(self, server):
        self.conn = conv_conn(server, self.user, "laptop")
        server.clients.append(self.conn)   # (closed before the server stops)
        self.seq = self.ack = self.received = 0
        self.inflight = {}       # seq -> n

    def drop(self):
        self.carry = sorted(set(self.carry) | set(self.inflight.values()))
        self.conn.close()
        self.conn = None

    def frame_of(self, n):
        body = b"p%d-%d" % (self.user, n)
        if n % 2 == 0:
            return c2s(self.user, RECEIVER2, POST, post_body(TEXT, body, n + 1))
        return c2s(self.user, self.group, POST, post_body(TEXT, body, n + 1, GROUP_FLAG))

    def fill(self):
        batch = []
        while len(self.inflight) < WINDOW:
            if self.carry:
                n = self.carry.pop(0)
            else:
                n, self.next_n = self.next_n, self.next_n + 1
            self.seq += 1
            self.inflight[self.seq] = n
            batch.append(self.frame_of(n))
        if batch:
            self.conn.sock.sendall(b"".join(batch))

    def handle(self):
        """Process what arrived (ACKing group messages); return how many
        frames were newly ACKed."""
        newly, received = 0, self.received
        for f in self.conn.frames():
            if f.type == ERROR:
                self.errors.append(parse_error(f.body))
            elif f.type == ACK:
                count = parse_ack(f.body)
                assert self.ack <= count <= self.seq, \
                    f"user {self.user}: ACK {count} after {self.ack}, {self.seq} sent"
                for s in range(self.ack + 1, count + 1):
                    self.acked.add(self.inflight.pop(s))
                    newly += 1
                self.ack = count
            else:
                self.keep(f)
        if self.received != received:
            self.conn.sock.sendall(c2s(self.user, 0, ACK, ack_body(self.received)))
        return newly

    def keep(self, f):
        self.received += 1
        mid, sender, flags, to, body = parse_delivery(f, True)
        assert (flags, to) == (GROUP_FLAG, self.group) and sender != self.user, \
            f"user {self.user}: unexpected delivery {f}"
        self.got.setdefault(body, set()).add(mid)


def read_to_the_end(server, user, name, ends):
    """A device of `user` (name None: the default device, bare frames)
    connects and reads, acknowledging, until it has every payload of
    `ends`. Returns the payloads in order and their ids (None when bare)."""
    conv = name is not None
    c = conv_conn(server, user, name) if conv else Conn(server, user)
    got, ids, missing = [], [], set(ends)
    deadline = time.monotonic() + 60
    while missing:
        assert time.monotonic() < deadline, \
            f"user {user} {name}: still reading after 60 s ({len(got)} so far)"
        before = len(got)
        for f in c.frames():
            mid, _, _, _, body = parse_delivery(f, conv)
            got.append(body)
            ids.append(mid)
            missing.discard(body)
        if len(got) != before:
            c.sock.sendall(c2s(user, 0, ACK, ack_body(len(got))))
        assert c.read(0.1), f"server closed user {user} {name} after {len(got)} frames"
    c.close()
    return got, ids


def check_once(who, got, ids, expected, allowed):
    """got (payloads, in order) holds every payload of `expected`, nothing
    outside `allowed`, each once, in each sender's order."""
    seen, last, order_errors = {}, {}, []
    for body, mid in zip(got, ids):
        m = POSTED.fullmatch(body)
        if not m:
            continue                            # an end marker
        key = (int(m.group(1)), int(m.group(2)))
        assert key in allowed, f"{who}: {body!r} was never posted to it"
        seen.setdefault(key, []).append(mid)
        if key[1] < last.get(key[0], -1):
            order_errors.append(key)
        last[key[0]] = max(key[1], last.get(key[0], -1))
    twice = {k: v for k, v in seen.items() if len(v) > 1}
    lost = sorted(expected - set(seen))
    assert not lost, f"{who}: {len(lost)} acknowledged messages lost, first: {lost[:10]}"
    assert not twice, f"{who}: {len(twice)} delivered twice (ids), first: {list(twice.items())[:5]}"
    assert not order_errors, f"{who}: out of order: {order_errors[:10]}"
    return len(seen)


def test_posts_with_cids_reach_every_device_once_across_sigkills(start_store_server, capsys):
    rng = random.Random(SEED + 1)
    server = start_store_server()
    # The devices the messages are for: seen, then away until the end.
    admin = group_device(server, SENDERS2[0], "laptop")
    gid = admin.create("crash", list(SENDERS2[1:]) + list(MEMBERS2))
    admin.close()
    for name in RECEIVER2_DEVICES:
        conv_conn(server, RECEIVER2, name).close()
    conv_conn(server, MEMBERS2[0], "phone").close()
    Conn(server, MEMBERS2[1]).close()

    senders = [PostSender(u, gid) for u in SENDERS2]
    server, rounds = chaos(senders, server, start_store_server, rng)
    assert all(not s.carry for s in senders), "resends left unsent"

    # End markers, each after everything acknowledged: "end <u>" from each
    # sender to the group, "end r" to RECEIVER2.
    for s in senders:
        s.conn.sock.sendall(c2s(s.user, gid, POST,
                                post_body(TEXT, b"end %d" % s.user, 0, GROUP_FLAG)))
        s.seq += 1
        s.inflight[s.seq] = -1
    first = senders[0]
    first.conn.sock.sendall(c2s(first.user, RECEIVER2, POST, post_body(TEXT, b"end r")))
    first.seq += 1
    first.inflight[first.seq] = -1
    drain(senders, server)
    group_ends = {b"end %d" % u for u in SENDERS2}
    for s in senders:                   # the others' end markers, live
        deadline = time.monotonic() + 30
        while not group_ends - {b"end %d" % s.user} <= set(s.got):
            assert time.monotonic() < deadline, f"user {s.user}: end markers missing"
            assert s.conn.read(0.1), f"server closed user {s.user}"
            s.handle()

    assert all(s.errors == [] for s in senders), {s.user: s.errors[:3] for s in senders}
    acked = {(s.user, n) for s in senders for n in s.acked if n >= 0}
    sent = {(s.user, n) for s in senders for n in range(s.next_n)}
    to_group = {k for k in sent if k[1] % 2}
    acked_group = {k for k in acked if k[1] % 2}
    counts = {}
    for name in RECEIVER2_DEVICES:
        got, ids = read_to_the_end(server, RECEIVER2, name, {b"end r"})
        counts[name] = check_once(f"user {RECEIVER2} {name}", got, ids,
                                  acked - acked_group, sent - to_group)
    got, ids = read_to_the_end(server, MEMBERS2[0], "phone", group_ends)
    counts[MEMBERS2[0]] = check_once(f"user {MEMBERS2[0]}", got, ids, acked_group, to_group)
    got, ids = read_to_the_end(server, MEMBERS2[1], None, group_ends)
    counts[MEMBERS2[1]] = check_once(f"user {MEMBERS2[1]} (bare)", got, ids, acked_group,
                                     to_group)
    for s in senders:
        mine = {k for k in to_group if k[0] == s.user}
        twice = {b: i for b, i in s.got.items() if len(i) > 1}
        keys = {(int(m.group(1)), int(m.group(2)))
                for m in map(POSTED.fullmatch, s.got) if m}
        lost = sorted(acked_group - mine - keys)
        assert keys <= to_group - mine, f"user {s.user}: got what was not posted to it"
        assert not lost, f"user {s.user}: {len(lost)} acknowledged group messages lost: {lost[:10]}"
        # Live too: a message with a client id is delivered only once
        # committed (HELD), so a kill before its commit loses it
        # everywhere and its resend delivers it once.
        assert not twice, \
            f"user {s.user}: {len(twice)} group messages delivered twice: {list(twice.items())[:5]}"
        counts[s.user] = len(keys)

    with capsys.disabled():
        print(f"\ncrash test (cids, two devices, a group): {KILLS} kills (seed {SEED + 1}), "
              f"{len(sent)} posted, {len(acked)} acknowledged; distinct per device: {counts}; "
              f"ACKed per run: {rounds}")
    assert all(s.acked for s in senders), "a sender never got an ACK"
