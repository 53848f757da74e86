"""Crash test: SIGKILL the server while opted-in senders write to an absent
receiver, restart it on the same data directory, and check that no message
the server acknowledged was lost.

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
    """A raw non-blocking-read connection bound with HELLO + ACKS."""

    def __init__(self, server, user):
        self.user = user
        self.buf = bytearray()
        self.pending = []        # frames parsed but not yet handed out
        self.sock = socket.create_connection((server.host, server.port), timeout=5)
        self.sock.sendall(c2s(user, 0, HELLO, hello_body(ACKS_FLAG)))
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
        assert w.user == user and w.flags & ACKS_FLAG, f"user {user}: {w}"
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
    rounds = []
    for k in range(KILLS + 1):
        for s in senders:
            s.connect(server)
        until = time.monotonic() + rng.uniform(*ROUND_SECONDS)
        if k == KILLS:                                  # the last run: no kill
            rounds.append(pump(senders, until, rng.randint(*ROUND_ACKS)))
            drain(senders, server)
            break
        rounds.append(pump(senders, until, rng.randint(*ROUND_ACKS)))
        if rng.random() < 0.5:
            for s in senders:      # kill with fresh frames on their way in
                s.fill()
        status = server.kill()
        assert status == -signal.SIGKILL, f"exit status {status}:\n{server.log()}"
        for s in senders:
            s.drop()
        server = start_store_server()                   # same data directory

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
