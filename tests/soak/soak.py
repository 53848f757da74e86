#!/usr/bin/python3
"""Soak test: mixed load against chat-server for a long time; its memory
must not grow.

    tests/soak/soak.py --server build/chat-server [--seconds 600]
                       [--warmup 60] [--clients 200] [--max-growth 0.10]

Starts the server on a free port with a temporary data directory, then runs
one single-threaded event loop (selectors) of many clients:

- pairs: two clients send to each other at random moments (live traffic);
  a third of them speak like the article's client (no HELLO, bound by their
  first data frame), a third send HELLO, a third HELLO with ACKS (and
  acknowledge what they receive);
- acked senders: HELLO with ACKS, a window of unacknowledged frames, half
  of their frames to pair users (live), half to absent users (stored);
- churn: short-lived connections bound as the absent users (ACKS), which
  fetch what was stored for them, acknowledge it and disconnect (close or
  reset), and pair clients that drop and reconnect now and then;
- sizes: mostly under 1 KiB, some up to 64 KiB, a few up to 384 KiB.

Every SAMPLE seconds it reads the server's VmRSS from /proc/PID/status. The
reference is the highest RSS in the RSS_WINDOW seconds after the warm-up (40 %
of the run by default: SQLite's page cache and the allocator reach their
steady state first), the end figure the highest RSS in the last RSS_WINDOW
seconds; the end must not exceed the reference by more than --max-growth
(default 10 %). Highest-in-a-window rather than one sample, because the
server frees idle buffers every second and a single sample catches whatever
happened to be in flight. Prints both, with the
frames sent, acknowledged and delivered, the reconnects and the ERROR codes
seen, then stops the server with SIGTERM (it must exit 0). Exit status 0
when all of that holds, 1 otherwise. Everything has a deadline.
"""

import argparse
import heapq
import os
import random
import re
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter

C2S = struct.Struct("!IIBI")
S2C = struct.Struct("!IBI")
TEXT, PICTURE, VOICE, VIDEO = 1, 2, 3, 4
HELLO, WELCOME, ACK, ERROR, PING, PONG = 0x80, 0x81, 0x82, 0x83, 0x84, 0x85
ACKS_FLAG = 1
LISTENING = re.compile(rb"listening on (\S+):(\d+)")

PAIR_BASE = 1000          # pair users: 1000, 1001, ...
ACKED_BASE = 20000        # acked senders
ABSENT_BASE = 50000       # users that are mostly offline
ABSENT_USERS = 50
SAMPLE = 2.0              # seconds between RSS samples
RSS_WINDOW = 60.0         # seconds whose highest RSS sample is compared
MAX_WBUF = 2 << 20        # a client queues at most this much before skipping
WINDOW = 16               # unacknowledged frames per acked sender
FILLER = random.Random(7).randbytes(400 << 10)


def c2s(sender, receiver, ftype, body=b""):
    return C2S.pack(sender, receiver, ftype, len(body)) + body


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Stats:
    def __init__(self):
        self.sent = 0
        self.sent_bytes = 0
        self.acked = 0
        self.delivered = 0
        self.delivered_bytes = 0
        self.reconnects = 0
        self.closed_by_server = 0
        self.errors = Counter()


class Client:
    """One connection: buffers, frame parsing, ACK bookkeeping."""

    def __init__(self, soak, user, mode, role):
        self.soak, self.user, self.mode, self.role = soak, user, mode, role
        self.sock = socket.create_connection((soak.host, soak.port), timeout=5)
        self.sock.setblocking(False)
        self.rbuf = bytearray()
        self.wbuf = bytearray()
        self.recv_data = 0       # data frames received (what our ACK counts)
        self.sent_data = 0       # data frames sent on this connection
        self.server_ack = 0      # the server's last ACK count
        self.bound = mode != "article"
        self.closed = False
        soak.sel.register(self.sock, selectors.EVENT_READ, self)
        if mode in ("hello", "acks"):
            flags = ACKS_FLAG if mode == "acks" else 0
            self.queue(c2s(user, 0, HELLO, bytes([1, flags])))

    @property
    def acks(self):
        return self.mode == "acks"

    def window_open(self):
        return not self.acks or self.sent_data - self.server_ack < WINDOW

    def queue(self, data):
        was_empty = not self.wbuf
        self.wbuf += data
        if was_empty:
            self.flush()

    def send_data(self, to, ftype, body):
        if len(self.wbuf) > MAX_WBUF:
            return False
        self.queue(c2s(self.user, to, ftype, body))
        self.sent_data += 1
        self.bound = True
        st = self.soak.stats
        st.sent += 1
        st.sent_bytes += len(body)
        return True

    def flush(self):
        try:
            while self.wbuf:
                n = self.sock.send(self.wbuf)
                del self.wbuf[:n]
        except BlockingIOError:
            pass
        except (ConnectionResetError, BrokenPipeError):
            self.lost()
            return
        self.update_events()

    def update_events(self):
        if self.closed:
            return
        ev = selectors.EVENT_READ | (selectors.EVENT_WRITE if self.wbuf else 0)
        self.soak.sel.modify(self.sock, ev, self)

    def on_readable(self):
        try:
            data = self.sock.recv(1 << 20)
        except BlockingIOError:
            return
        except ConnectionResetError:
            data = b""
        if not data:
            self.lost()
            return
        self.rbuf += data
        got = 0
        st = self.soak.stats
        off = 0
        while len(self.rbuf) - off >= S2C.size:
            sender, ftype, length = S2C.unpack_from(self.rbuf, off)
            if len(self.rbuf) - off < S2C.size + length:
                break
            body = self.rbuf[off + S2C.size:off + S2C.size + length]
            off += S2C.size + length
            if TEXT <= ftype <= VIDEO:
                got += 1
                st.delivered += 1
                st.delivered_bytes += length
            elif ftype == ACK:
                n = struct.unpack("!Q", body)[0]
                st.acked += n - self.server_ack
                self.server_ack = n
            elif ftype == ERROR:
                st.errors[struct.unpack_from("!H", body)[0]] += 1
            elif ftype == PING:
                self.queue(c2s(self.user, 0, PONG, bytes(body)))
        del self.rbuf[:off]
        self.recv_data += got
        if got and self.acks:
            self.queue(c2s(self.user, 0, ACK, struct.pack("!Q", self.recv_data)))

    def lost(self):
        """The server closed us (or reset)."""
        if self.closed:
            return
        self.soak.stats.closed_by_server += 1
        self.close()
        self.soak.on_lost(self)

    def close(self, reset=False):
        if self.closed:
            return
        self.closed = True
        self.soak.sel.unregister(self.sock)
        if reset:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 struct.pack("ii", 1, 0))
        self.sock.close()


def body_of(rng, seq):
    r = rng.random()
    if r < 0.90:
        n = rng.randint(1, 1024)
    elif r < 0.99:
        n = rng.randint(1024, 64 << 10)
    else:
        n = rng.randint(64 << 10, 384 << 10)
    head = b"soak %d " % seq
    start = rng.randrange(0, len(FILLER) - n)
    return (head + FILLER[start:start + n])[:max(n, len(head))]


class Soak:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.stats = Stats()
        self.sel = selectors.DefaultSelector()
        self.timers = []          # heap of (when, seq, fn)
        self.tseq = 0
        self.seq = 0
        self.pairs = {}           # user -> Client (None while reconnecting)
        self.acked = []
        self.churn_live = 0

    # -- server ----------------------------------------------------------
    def start_server(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="chat-soak-")
        self.log_path = os.path.join(self.tmp.name, "server.log")
        self.logf = open(self.log_path, "wb")
        cmd = [self.args.server, "--port", "0", "--data-dir",
               os.path.join(self.tmp.name, "data"), *self.args.server_arg]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=self.logf)
        deadline = time.monotonic() + 10
        while True:
            with open(self.log_path, "rb") as f:
                m = LISTENING.search(f.read())
            if m:
                self.host, self.port = m.group(1).decode(), int(m.group(2))
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"soak: the server did not start:\n{self.log_tail()}")
            time.sleep(0.02)

    def log_tail(self, n=4000):
        with open(self.log_path, "rb") as f:
            return f.read()[-n:].decode("utf-8", "replace")

    # -- timers ----------------------------------------------------------
    def at(self, delay, fn):
        self.tseq += 1
        heapq.heappush(self.timers, (time.monotonic() + delay, self.tseq, fn))

    # -- roles -----------------------------------------------------------
    def pair_mode(self, user):
        return ("article", "hello", "acks")[user % 3]

    def partner(self, user):
        return user ^ 1 if user >= PAIR_BASE else None

    def connect_pair(self, user):
        c = Client(self, user, self.pair_mode(user), "pair")
        self.pairs[user] = c
        self.at(self.rng.uniform(0, 0.2), lambda: self.pair_send(c))

    def pair_send(self, c):
        if c.closed:
            return
        self.seq += 1
        ftype = self.rng.choice((TEXT, TEXT, TEXT, PICTURE, VOICE, VIDEO))
        if c.window_open():
            c.send_data(self.partner(c.user), ftype, body_of(self.rng, self.seq))
        self.at(self.rng.expovariate(1 / self.args.pair_interval),
                lambda: self.pair_send(c))

    def acked_send(self, c):
        if c.closed:
            return
        while c.window_open() and len(c.wbuf) < MAX_WBUF:
            self.seq += 1
            if self.rng.random() < 0.5:
                to = ABSENT_BASE + self.rng.randrange(ABSENT_USERS)
            else:
                to = PAIR_BASE + self.rng.randrange(len(self.pair_users))
            c.send_data(to, TEXT, body_of(self.rng, self.seq))
            if self.rng.random() < 0.5:
                break
        self.at(self.rng.expovariate(1 / self.args.pair_interval),
                lambda: self.acked_send(c))

    def churn_start(self):
        """One short visit of an absent user: fetch, acknowledge, leave."""
        if self.stopping or self.churn_live >= self.args.churn_slots:
            return
        user = ABSENT_BASE + self.rng.randrange(ABSENT_USERS)
        c = Client(self, user, "acks", "churn")
        self.churn_live += 1
        self.stats.reconnects += 1

        def leave():
            if not c.closed:
                c.close(reset=self.rng.random() < 0.5)
                self.churn_live -= 1
        c.on_leave = leave
        self.at(self.rng.uniform(0.3, 3.0), leave)

    def on_lost(self, c):
        if c.role == "pair" and not self.stopping:
            self.pairs[c.user] = None
            self.at(self.rng.uniform(0.1, 1.0), lambda: self.reconnect(c.user))
        elif c.role == "churn":
            self.churn_live -= 1
        elif c.role == "acked" and not self.stopping:
            self.acked.remove(c)
            self.at(self.rng.uniform(0.1, 1.0), lambda: self.add_acked(c.user))

    def reconnect(self, user):
        if self.stopping:
            return
        self.stats.reconnects += 1
        self.connect_pair(user)

    def add_acked(self, user):
        c = Client(self, user, "acks", "acked")
        self.acked.append(c)
        self.at(self.rng.uniform(0, 0.2), lambda: self.acked_send(c))

    def churn_pairs(self):
        """Now and then a pair client drops (close or reset) and comes back."""
        if self.stopping:
            return
        user = self.rng.choice(self.pair_users)
        c = self.pairs.get(user)
        if c and not c.closed:
            c.close(reset=self.rng.random() < 0.5)
            self.pairs[user] = None
            self.at(self.rng.uniform(0.1, 1.0), lambda: self.reconnect(user))
        self.at(self.rng.expovariate(1 / self.args.pair_churn), self.churn_pairs)

    def churn_tick(self):
        if self.stopping:
            return
        for _ in range(self.args.churn_slots - self.churn_live):
            if self.rng.random() < 0.3:
                self.churn_start()
        self.at(0.1, self.churn_tick)

    # -- run -------------------------------------------------------------
    def run(self):
        a = self.args
        self.stopping = False
        self.start_server()
        npairs = a.clients * 6 // 10 // 2
        nacked = a.clients * 2 // 10
        a.churn_slots = a.clients - 2 * npairs - nacked
        self.pair_users = [PAIR_BASE + i for i in range(2 * npairs)]
        print(f"soak: server pid {self.proc.pid} on {self.host}:{self.port}; "
              f"{2 * npairs} pair clients, {nacked} acked senders, "
              f"{a.churn_slots} churn slots; {a.seconds:.0f} s, warm-up "
              f"{a.warmup:.0f} s", flush=True)
        for u in self.pair_users:
            self.connect_pair(u)
        for i in range(nacked):
            self.add_acked(ACKED_BASE + i)
        self.at(0.1, self.churn_tick)
        self.at(a.pair_churn, self.churn_pairs)

        start = time.monotonic()
        end = start + a.seconds
        next_sample = start + SAMPLE
        next_print = start + 30
        warm_said = False
        samples = []
        while True:
            now = time.monotonic()
            if now >= end:
                break
            if self.proc.poll() is not None:
                print(f"soak: FAIL: the server exited ({self.proc.returncode}) "
                      f"after {now - start:.0f} s:\n{self.log_tail()}")
                return 1
            if now >= next_sample:
                rss = rss_kib(self.proc.pid)
                samples.append((now - start, rss))
                if not warm_said and now - start >= a.warmup:
                    warm_said = True
                    print(f"soak: warm-up done at {now - start:.0f} s: server "
                          f"RSS {rss / 1024:.1f} MiB", flush=True)
                next_sample += SAMPLE
            if now >= next_print:
                s = self.stats
                print(f"soak: {now - start:4.0f} s: RSS {samples[-1][1] / 1024:.1f} "
                      f"MiB, sent {s.sent}, acked {s.acked}, delivered "
                      f"{s.delivered}, reconnects {s.reconnects}", flush=True)
                next_print += 30
            while self.timers and self.timers[0][0] <= now:
                _, _, fn = heapq.heappop(self.timers)
                fn()
            timeout = min(next_sample, end) - now
            if self.timers:
                timeout = min(timeout, self.timers[0][0] - now)
            for key, ev in self.sel.select(max(timeout, 0)):
                c = key.data
                if c.closed:
                    continue
                if ev & selectors.EVENT_READ:
                    c.on_readable()
                if ev & selectors.EVENT_WRITE and not c.closed:
                    c.flush()

        samples.append((time.monotonic() - start, rss_kib(self.proc.pid)))
        t_warm = a.warmup
        first = [r for t, r in samples if t_warm <= t < t_warm + RSS_WINDOW]
        last = [r for t, r in samples if t >= a.seconds - RSS_WINDOW]
        warm_rss = max(first) if first else None
        end_rss = max(last)
        self.stopping = True
        for key in list(self.sel.get_map().values()):
            key.data.close()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = "no exit within 15 s after SIGTERM"
        self.logf.close()

        s = self.stats
        peak = max(r for _, r in samples) if samples else end_rss
        growth = (end_rss - warm_rss) / warm_rss if warm_rss else float("nan")
        print(f"soak: {a.seconds:.0f} s, {a.clients} clients: sent {s.sent} "
              f"frames ({s.sent_bytes / 2**20:.0f} MiB), acknowledged "
              f"{s.acked}, delivered {s.delivered} (redeliveries included) "
              f"({s.delivered_bytes / 2**20:.0f} MiB), reconnects "
              f"{s.reconnects}, closed by the server {s.closed_by_server}, "
              f"ERRORs {dict(s.errors) or 'none'}")
        print(f"soak: server RSS (highest in {RSS_WINDOW:.0f} s) after the warm-up "
              f"{(warm_rss or 0) / 1024:.1f} MiB, at the end "
              f"{end_rss / 1024:.1f} MiB ({growth:+.1%}; limit "
              f"+{a.max_growth:.0%}), peak {peak / 1024:.1f} MiB; server "
              f"exit status {rc}")
        ok = True
        if warm_rss is None:
            print("soak: FAIL: the run ended before the warm-up did")
            ok = False
        elif growth > a.max_growth:
            print(f"soak: FAIL: server RSS grew {growth:.1%} after the warm-up")
            ok = False
        if rc != 0:
            print(f"soak: FAIL: server exit status {rc}:\n{self.log_tail()}")
            ok = False
        if s.delivered == 0 or s.acked == 0:
            print("soak: FAIL: nothing was delivered or acknowledged")
            ok = False
        print("soak: PASS" if ok else "soak: FAILED")
        return 0 if ok else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--server", required=True, help="chat-server binary")
    p.add_argument("--seconds", type=float, default=600)
    p.add_argument("--warmup", type=float, default=None,
                   help="seconds before the reference RSS (default: 60, or "
                        "half the run when that is shorter)")
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--pair-interval", type=float, default=0.1,
                   help="mean seconds between two frames of one sender")
    p.add_argument("--pair-churn", type=float, default=0.5,
                   help="mean seconds between two pair-client drops")
    p.add_argument("--max-growth", type=float, default=0.10)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--server-arg", action="append", default=[],
                   help="extra chat-server argument (repeatable)")
    a = p.parse_args()
    if a.warmup is None:
        a.warmup = a.seconds * 0.4
    if a.warmup >= a.seconds:
        p.error("--warmup must be shorter than --seconds")
    sys.exit(Soak(a).run())


if __name__ == "__main__":
    main()
