#!/usr/bin/python3
"""Soak test: mixed load against chat-server for a long time; its memory
must not grow.

    tests/soak/soak.py --server build/chat-server [--seconds 600]
                       [--warmup 60] [--clients 200] [--max-growth 0.10]
                       [--devices N]

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
- sizes: mostly under 1 KiB, some up to 64 KiB, a few up to 384 KiB;
- devices (docs/PROTOCOL.md, "Devices and conversations" and "Receipts,
  typing and presence"): --devices users (DEVICE_BASE, ...; default a
  twentieth of --clients), each with two devices, "phone" and "laptop",
  that send HELLO with ACKS|CONV|SIGNALS and their name. The first users'
  phones CREATE NGROUPS groups of device users at start. Each device
  POSTs text at random moments (cid: a per-device counter from 1; at most
  DEV_WINDOW unacknowledged) to another device user or, a quarter of the
  time, to one of its groups; acknowledges the MSGs it receives; now and
  then sends RECEIPT READ for a MSG it got, a RECEIPT QUERY, TYPING; and
  SUBSCRIBEs to the presence of a few users on each connection. Now and
  then a device drops (close or reset, often right after a burst of POSTs,
  some after reading nothing for up to 0.5 s, so that the server has the
  POSTs but the device not their ACK) and reconnects with the same name,
  and first RESENDs every POST not yet acknowledged with the same cid
  (effectively once). Payloads name their
  author device, cid and target and are derived from them, so a receiver
  checks every byte. Failures: a device that gets the same (author device,
  cid) under two server ids, or a POSTED naming another id than before
  (the cid was stored twice); MSG ids that do not increase on one
  connection (the same message twice included); its own message back; an
  ACK covering a POST before its POSTED; an ERROR a well-behaved device
  never earns (BADTYPE, SPOOF, PROTO, BADRCPT, GROUP, DENIED); any frame
  of an unexpected type, size or content. The same message again on a
  later connection (not acknowledged before a drop) is a redelivery,
  counted, not a failure.

Every SAMPLE seconds it reads the server's VmRSS from /proc/PID/status. The
reference is the highest RSS in the RSS_WINDOW seconds after the warm-up (40 %
of the run by default: SQLite's page cache and the allocator reach their
steady state first), the end figure the highest RSS in the last RSS_WINDOW
seconds; the end must not exceed the reference by more than --max-growth
(default 10 %). Highest-in-a-window rather than one sample, because the
server frees idle buffers every second and a single sample catches whatever
happened to be in flight. Prints both, with the
frames sent, acknowledged and delivered, the reconnects and the ERROR codes
seen, and the devices' counts (POSTs sent, acknowledged, resent; MSGs,
POSTED, RECEIPT, TYPING and PRESENCE frames received; drops; ERRORs by
code), then stops the server with SIGTERM (it must exit 0). Exit status 0
when all of that holds and no device saw a failure, 1 otherwise.
Everything has a deadline.
"""

import argparse
import heapq
import os
import random
import re
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter, deque

C2S = struct.Struct("!IIBI")
S2C = struct.Struct("!IBI")
TEXT, PICTURE, VOICE, VIDEO = 1, 2, 3, 4
HELLO, WELCOME, ACK, ERROR, PING, PONG = 0x80, 0x81, 0x82, 0x83, 0x84, 0x85
ACKS_FLAG, CONV_FLAG, SIGNALS_FLAG = 1, 2, 4
DEV_FLAGS = ACKS_FLAG | CONV_FLAG | SIGNALS_FLAG
MSG, POST, GROUP, GROUPS = 0x86, 0x87, 0x88, 0x89
RECEIPT, TYPING, PRESENCE, POSTED = 0x8C, 0x8D, 0x8E, 0x8F
OWN, GROUP_FLAG = 1, 2             # MSG flags; GROUP_FLAG also in POST etc.
DELIVERED, READ, QUERY, END = 1, 2, 3, 4
CREATE, EVENT = 1, 8                # GROUP ops
E_QUOTA, E_STORE, E_GROUP = 7, 8, 14
E_NEVER = {2: "BADTYPE", 3: "SPOOF", 4: "PROTO", 12: "BADRCPT", 14: "GROUP",
           15: "DENIED"}            # ERRORs a well-behaved device never earns
MSG_HEAD = struct.Struct("!QBBIQ")  # id, kind, flags, to, time
POST_HEAD = struct.Struct("!BBQ")   # kind, flags, cid
RECEIPT_BODY = struct.Struct("!BBIIQQ")  # what, flags, conv, by, upto, time
TYPING_BODY = struct.Struct("!BIB")      # flags, to, state
PRESENCE_BODY = struct.Struct("!IBQ")    # user, state, last seen
POSTED_BODY = struct.Struct("!QQ")       # cid, id
GROUP_PRE = struct.Struct("!BII")        # op, req, group
ERROR_PRE = struct.Struct("!HQ")         # code, ref
LISTENING = re.compile(rb"listening on (\S+):(\d+)")

PAIR_BASE = 1000          # pair users: 1000, 1001, ...
ACKED_BASE = 20000        # acked senders
ABSENT_BASE = 50000       # users that are mostly offline
ABSENT_USERS = 50
DEVICE_BASE = 80000       # device users (two devices each)
DEVICE_NAMES = (b"phone", b"laptop")
NGROUPS = 3               # groups of device users, created at start
GROUP_SIZE = 5            # members of each (its creator included)
DEV_WINDOW = 16           # unacknowledged POSTs per device
MAX_FAILURES_SHOWN = 20
SAMPLE = 2.0              # seconds between RSS samples
RSS_WINDOW = 60.0         # seconds whose highest RSS sample is compared
MAX_WBUF = 2 << 20        # a client queues at most this much before skipping
WINDOW = 16               # unacknowledged frames per acked sender
FILLER = random.Random(7).randbytes(400 << 10)
TEXT_FILLER = bytes(random.Random(8).choices(b"abcdefghijklmnopqrstuvwxyz ",
                                             k=80 << 10))


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
        if self.closed:
            return
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
        off = 0
        while len(self.rbuf) - off >= S2C.size:
            sender, ftype, length = S2C.unpack_from(self.rbuf, off)
            if len(self.rbuf) - off < S2C.size + length:
                break
            body = bytes(self.rbuf[off + S2C.size:off + S2C.size + length])
            off += S2C.size + length
            got += self.on_frame(sender, ftype, body)
        del self.rbuf[:off]
        self.recv_data += got
        if got and self.acks:
            self.queue(c2s(self.user, 0, ACK, struct.pack("!Q", self.recv_data)))

    def on_frame(self, sender, ftype, body):
        """One frame from the server; returns 1 for a data frame (what our
        ACK counts), else 0."""
        st = self.soak.stats
        if TEXT <= ftype <= VIDEO:
            st.delivered += 1
            st.delivered_bytes += len(body)
            return 1
        if ftype == ACK:
            n = struct.unpack("!Q", body)[0]
            st.acked += n - self.server_ack
            self.server_ack = n
        elif ftype == ERROR:
            st.errors[struct.unpack_from("!H", body)[0]] += 1
        elif ftype == PING:
            self.queue(c2s(self.user, 0, PONG, body))
        return 0

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


def remember(table, key, value):
    """The value table had for key (None: none; then it is `value`)."""
    first = table.get(key)
    if first is None:
        table[key] = value
    return first


def pick_size(rng, tiers):
    """A size from tiers [(up to this cumulative probability, low, high),
    ...]: one rng.random(), then one rng.randint in the tier it falls in."""
    x = rng.random()
    for p, lo, hi in tiers:
        if x < p:
            return rng.randint(lo, hi)
    _, lo, hi = tiers[-1]
    return rng.randint(lo, hi)


def body_of(rng, seq):
    n = pick_size(rng, [(0.90, 1, 1024), (0.99, 1024, 64 << 10),
                        (1.0, 64 << 10, 384 << 10)])
    head = b"soak %d " % seq
    start = rng.randrange(0, len(FILLER) - n)
    return (head + FILLER[start:start + n])[:max(n, len(head))]


def dev_payload(user, name, cid, target):
    """The payload of a device's POST: a head naming the author device, the
    cid and the target (b"u<user>" or b"g<group>"), then text derived from
    the head alone, so a receiver can rebuild it and compare every byte.
    Mostly under 512 bytes, some up to 16 KiB, a few up to 64 KiB."""
    head = b"dev %d %s %d %s " % (user, name, cid, target)
    r = random.Random(zlib.crc32(head))
    n = pick_size(r, [(0.85, 1, 512), (0.99, 512, 16 << 10),
                      (1.0, 16 << 10, 64 << 10)])
    start = r.randrange(len(TEXT_FILLER) - n)
    return head + TEXT_FILLER[start:start + n]


class DevStats:
    def __init__(self):
        self.posts = 0           # new POSTs (each a new cid)
        self.acked = 0           # cids acknowledged (once each)
        self.resent = 0          # POSTs sent again after a drop, same cid
        self.refused = 0         # POSTs an ERROR named (QUOTA, STORE, GROUP)
        self.msgs = 0            # MSG frames received
        self.own = 0             # of which OWN (another device of the user)
        self.group_msgs = 0      # of which group messages
        self.redelivered = 0     # a message again on a later connection
        self.posted = 0          # POSTED frames
        self.posted_resent = 0   # of which for a resend
        self.resent_known = 0    # of those, naming an id seen before: the
                                 # server had the first copy (deduplicated)
        self.receipts = Counter()  # RECEIPT frames received, by what
        self.typing = 0          # TYPING frames received
        self.presence = 0        # PRESENCE frames received
        self.group_events = 0    # GROUPS events received
        self.reads = 0           # RECEIPT READ sent
        self.queries = 0         # RECEIPT QUERY sent
        self.typing_sent = 0
        self.subscribed = 0      # users subscribed to (per connection)
        self.drops = 0           # drops by the soak (close or reset)
        self.connects = 0
        self.errors = Counter()  # ERROR codes


class Device:
    """What a device keeps across its connections."""

    def __init__(self, user, name):
        self.user, self.name = user, name
        self.cid = 0             # the last cid given
        self.unacked = {}        # cid -> (to, group, payload), in cid order
        self.posted = {}         # cid -> the server id POSTED named
        self.got = {}            # (author, device name, cid) -> server id
        self.conn = None         # the live DeviceClient, or None
        self.creates = []        # indexes of the groups this device creates

    def __str__(self):
        return f"device {self.user}/{self.name.decode()}"


class DeviceClient(Client):
    """One connection of a Device: HELLO with ACKS|CONV|SIGNALS and the
    device name; checks every frame the server sends it."""

    acks = True

    def __init__(self, soak, dev):
        super().__init__(soak, dev.user, "device", "device")
        self.dev = dev
        self.welcomed = False
        self.inflight = deque()  # (seq, cid) of POSTs not yet covered by an ACK
        self.refused = set()     # seqs an ERROR named
        self.posted_here = set()  # cids POSTED on this connection
        self.resent = set()      # cids sent again on this connection
        self.last_id = 0         # the highest MSG id received on it
        self.subscribed = set()  # users whose presence it subscribed to
        self.queue(c2s(dev.user, 0, HELLO,
                       bytes([1, DEV_FLAGS, len(dev.name)]) + dev.name))

    def fail(self, what):
        self.soak.fail(f"{self.dev}: {what}")

    def deafen(self):
        """Stop reading (and writing) for good, the socket left open: the
        server takes what was sent, its answers are never read. closed is
        set, so nothing uses this connection any more; sock.close() later."""
        self.soak.sel.unregister(self.sock)
        self.closed = True

    # -- sending ---------------------------------------------------------
    def post(self, cid, to, group, payload):
        self.queue(c2s(self.user, to, POST,
                       POST_HEAD.pack(TEXT, GROUP_FLAG if group else 0, cid)
                       + payload))
        self.sent_data += 1
        self.inflight.append((self.sent_data, cid))

    def signal(self, ftype, body):
        self.queue(c2s(self.user, 0, ftype, body))

    # -- receiving -------------------------------------------------------
    def on_frame(self, sender, ftype, body):
        n = len(body)
        ds = self.soak.dstats
        if ftype == ERROR:
            return self.on_error(sender, body)
        if not self.welcomed:
            if ftype != WELCOME or n != 10 or sender != 0:
                self.fail(f"first frame type {ftype:#x} ({n} bytes, sender "
                          f"{sender}), not a WELCOME")
                return 0
            version, flags, user, _ = struct.unpack("!BBII", body)
            if (version, flags, user) != (1, DEV_FLAGS, self.user):
                self.fail(f"WELCOME version {version}, flags {flags:#x}, user "
                          f"{user}: expected 1, {DEV_FLAGS:#x}, {self.user}")
            self.welcomed = True
            return 0
        if ftype == MSG:
            self.on_msg(sender, body)
            return 1
        if ftype == ACK and n == 8 and sender == 0:
            self.on_ack(struct.unpack("!Q", body)[0])
        elif ftype == POSTED and n == POSTED_BODY.size and sender == 0:
            cid, mid = POSTED_BODY.unpack(body)
            if cid == 0 or mid == 0 or cid > self.dev.cid:
                self.fail(f"POSTED cid {cid} id {mid} (last cid given "
                          f"{self.dev.cid})")
                return 0
            ds.posted += 1
            self.posted_here.add(cid)
            first = remember(self.dev.posted, cid, mid)
            if first not in (None, mid):
                self.fail(f"cid {cid} POSTED as id {mid}, earlier as id {first}"
                          f": stored twice")
            if cid in self.resent:
                ds.posted_resent += 1
                ds.resent_known += (self.user, self.dev.name, cid) in self.soak.ids
            self.soak.message_id((self.user, self.dev.name, cid), mid, "POSTED")
        elif ftype == RECEIPT and n == RECEIPT_BODY.size and sender == 0:
            what, flags, conv, by, upto, _ = RECEIPT_BODY.unpack(body)
            if (what not in (DELIVERED, READ, END) or flags not in (0, GROUP_FLAG)
                    or conv == 0 or (what != END and by == 0)):
                self.fail(f"RECEIPT what {what} flags {flags} conv {conv} by "
                          f"{by} upto {upto}")
            ds.receipts[{DELIVERED: "DELIVERED", READ: "READ",
                         END: "END"}.get(what, what)] += 1
        elif ftype == TYPING and n == TYPING_BODY.size:
            flags, to, state = TYPING_BODY.unpack(body)
            ok = state <= 1 and sender not in (0, self.user)
            if flags == 0:
                ok = ok and to == self.user
            elif flags == GROUP_FLAG:
                ok = ok and self.user in self.soak.groups.get(to, ())
            else:
                ok = False
            if not ok:
                self.fail(f"TYPING from {sender}: flags {flags} to {to} "
                          f"state {state}")
            ds.typing += 1
        elif ftype == PRESENCE and n == PRESENCE_BODY.size and sender == 0:
            user, state, last = PRESENCE_BODY.unpack(body)
            if (state > 1 or user not in self.subscribed
                    or (state == 1 and last != 0)):
                self.fail(f"PRESENCE user {user} state {state} last seen "
                          f"{last} (subscribed to {sorted(self.subscribed)})")
            ds.presence += 1
        elif ftype == GROUPS and n >= GROUP_PRE.size and sender == 0:
            op, req, gid = GROUP_PRE.unpack_from(body)
            if op == CREATE:
                self.soak.group_created(self, req, gid)
            elif op == EVENT and req == 0:
                ds.group_events += 1
            else:
                self.fail(f"GROUPS op {op} req {req} group {gid} ({n} bytes)")
        elif ftype == PING and n <= 64:
            self.queue(c2s(self.user, 0, PONG, body))
        else:
            self.fail(f"unexpected frame: type {ftype:#x}, {n} bytes, sender "
                      f"{sender}")
        return 0

    def on_error(self, sender, body):
        if len(body) < ERROR_PRE.size or sender != 0:
            self.fail(f"malformed ERROR ({len(body)} bytes, sender {sender})")
            return 0
        code, ref = ERROR_PRE.unpack_from(body)
        reason = body[ERROR_PRE.size:].decode("utf-8", "replace")
        self.soak.dstats.errors[code] += 1
        if code in (E_QUOTA, E_STORE, E_GROUP) and ref:
            for seq, cid in self.inflight:
                if seq == ref:
                    self.refused.add(seq)
                    if self.dev.unacked.pop(cid, None) is not None:
                        self.soak.dstats.refused += 1
        if code in E_NEVER:
            self.fail(f"ERROR {E_NEVER[code]} ref {ref}: {reason}")
        return 0

    def on_ack(self, count):
        if not self.server_ack <= count <= self.sent_data:
            self.fail(f"server ACK {count} after {self.server_ack}, with "
                      f"{self.sent_data} POSTs sent")
            return
        self.server_ack = count
        while self.inflight and self.inflight[0][0] <= count:
            seq, cid = self.inflight.popleft()
            if seq in self.refused:
                continue
            if cid not in self.posted_here:
                self.fail(f"the ACK covering POST cid {cid} came before its "
                          f"POSTED")
            if self.dev.unacked.pop(cid, None) is not None:
                self.soak.dstats.acked += 1

    def on_msg(self, sender, body):
        ds = self.soak.dstats
        ds.msgs += 1
        if len(body) < MSG_HEAD.size:
            self.fail(f"MSG of {len(body)} bytes from {sender}")
            return
        mid, kind, flags, to, _ = MSG_HEAD.unpack_from(body)
        payload = body[MSG_HEAD.size:]
        if mid <= self.last_id:
            self.fail(f"MSG id {mid} after id {self.last_id} on one connection")
        self.last_id = max(self.last_id, mid)
        parts = payload.split(b" ", 5)
        try:
            _, author, name, cid, target, _ = parts
            author, cid = int(author), int(cid)
            assert parts[0] == b"dev" and target[:1] in b"ug"
            tid = int(target[1:])
        except (ValueError, AssertionError):
            self.fail(f"MSG {mid} from {sender}: not a device's payload: "
                      f"{payload[:60]!r}")
            return
        group = target[:1] == b"g"
        own = sender == self.user
        want_flags = (OWN if own else 0) | (GROUP_FLAG if group else 0)
        if (author != sender or kind != TEXT or flags != want_flags
                or to != tid or payload != dev_payload(author, name, cid, target)):
            self.fail(f"MSG {mid} from {sender} kind {kind} flags {flags} to "
                      f"{to}: does not match its payload {payload[:60]!r}")
        if own and name == self.dev.name:
            self.fail(f"MSG {mid}: its own message (cid {cid}) came back")
        elif group and self.user not in self.soak.groups.get(tid, ()):
            self.fail(f"MSG {mid}: a message of group {tid}, not ours")
        elif not group and not own and tid != self.user:
            self.fail(f"MSG {mid}: a message to {tid}")
        ds.own += own
        ds.group_msgs += group
        key = (author, name, cid)
        first = remember(self.dev.got, key, mid)
        if first is None:
            pass
        elif first != mid:
            self.fail(f"device {author}/{name.decode()}'s cid {cid} delivered "
                      f"twice: as id {first} and as id {mid}")
        else:                    # on an earlier connection (ids increase)
            ds.redelivered += 1
        self.soak.message_id(key, mid, f"MSG to {self.dev}")
        if self.soak.rng.random() < 0.1:
            conv = tid if group or own else sender
            self.signal(RECEIPT, RECEIPT_BODY.pack(
                READ, GROUP_FLAG if group else 0, conv, 0, mid, 0))
            ds.reads += 1


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
        self.dstats = DevStats()
        self.devices = []         # Device, two per device user
        self.dev_users = []
        self.group_plan = []      # (creator, members) per group to create
        self.group_ids = {}       # index in group_plan -> its group id
        self.groups = {}          # group id -> its members
        self.user_groups = {}     # device user -> ids of its groups
        self.ids = {}             # (author, device name, cid) -> server id
        self.failures = []

    # -- server ----------------------------------------------------------
    def start_server(self):
        self.tmpdir = tempfile.mkdtemp(prefix="chat-soak-")
        self.log_path = os.path.join(self.tmpdir, "server.log")
        self.logf = open(self.log_path, "wb")
        cmd = [self.args.server, "--port", "0", "--data-dir",
               os.path.join(self.tmpdir, "data"), *self.args.server_arg]
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

    def fail(self, what):
        self.failures.append(what)
        if len(self.failures) <= MAX_FAILURES_SHOWN:
            print(f"soak: FAIL: {what}", flush=True)

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
        elif c.role == "device" and not self.stopping:
            c.dev.conn = None
            self.at(self.rng.uniform(0.1, 1.0),
                    lambda: self.device_reconnect(c.dev))

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

    # -- devices ---------------------------------------------------------
    def connect_device(self, dev):
        """A connection of dev: HELLO, SUBSCRIBE to a few users' presence,
        the CREATEs it still owes, then every POST not yet acknowledged
        again, with its cid."""
        r, ds = self.rng, self.dstats
        c = DeviceClient(self, dev)
        dev.conn = c
        ds.connects += 1
        others = [u for u in self.dev_users if u != dev.user]
        users = r.sample(others, min(3, len(others))) + [r.choice(self.pair_users)]
        c.subscribed.update(users)
        c.signal(PRESENCE, struct.pack("!BH", 1, len(users))
                 + b"".join(struct.pack("!I", u) for u in users))
        ds.subscribed += len(users)
        for idx in dev.creates:
            if idx not in self.group_ids:
                members = self.group_plan[idx][1]
                name = b"soak group %d" % idx
                c.signal(GROUP, GROUP_PRE.pack(CREATE, idx + 1, 0)
                         + bytes([len(name)]) + name
                         + struct.pack("!H", len(members) - 1)
                         + b"".join(struct.pack("!I", u)
                                    for u in members if u != dev.user))
        for cid, (to, group, payload) in dev.unacked.items():
            c.post(cid, to, group, payload)
            c.resent.add(cid)
            ds.resent += 1
        self.at(r.uniform(0, 0.2), lambda: self.device_tick(c))

    def device_reconnect(self, dev):
        if self.stopping or dev.conn is not None:
            return
        self.connect_device(dev)

    def group_created(self, c, req, gid):
        idx = req - 1
        if not 0 <= idx < len(self.group_plan) or self.group_plan[idx][0] != c.user:
            c.fail(f"GROUPS CREATE answer with req {req}, group {gid}")
            return
        members = self.group_plan[idx][1]
        self.groups[gid] = frozenset(members)
        if idx not in self.group_ids:   # (else a CREATE sent again: unused)
            self.group_ids[idx] = gid
            for u in members:
                self.user_groups.setdefault(u, []).append(gid)

    def device_target(self, dev, group_share):
        """(to, group): another device user, or one of dev's groups."""
        mine = self.user_groups.get(dev.user)
        if mine and self.rng.random() < group_share:
            return self.rng.choice(mine), True
        while True:
            u = self.rng.choice(self.dev_users)
            if u != dev.user:
                return u, False

    def device_post(self, c):
        dev, ds = c.dev, self.dstats
        to, group = self.device_target(dev, 0.25)
        dev.cid += 1
        target = b"%s%d" % (b"g" if group else b"u", to)
        payload = dev_payload(dev.user, dev.name, dev.cid, target)
        dev.unacked[dev.cid] = (to, group, payload)
        c.post(dev.cid, to, group, payload)
        ds.posts += 1

    def device_tick(self, c):
        """A device's moment: a POST (window permitting), sometimes TYPING
        or a RECEIPT QUERY."""
        if c.closed:
            return
        r, ds, dev = self.rng, self.dstats, c.dev
        if len(dev.unacked) < DEV_WINDOW and len(c.wbuf) < MAX_WBUF:
            self.device_post(c)
        x = r.random()
        if x < 0.15:
            to, group = self.device_target(dev, 0.3)
            c.signal(TYPING, TYPING_BODY.pack(GROUP_FLAG if group else 0, to,
                                              r.choice((1, 1, 0))))
            ds.typing_sent += 1
        elif x < 0.18:
            to, group = self.device_target(dev, 0.3)
            c.signal(RECEIPT, RECEIPT_BODY.pack(
                QUERY, GROUP_FLAG if group else 0, to, 0, 0, 0))
            ds.queries += 1
        self.at(r.expovariate(1 / self.args.device_interval),
                lambda: self.device_tick(c))

    def device_churn(self):
        """Now and then a device drops (close or reset), often right after
        a burst of POSTs, sometimes after not reading for a moment, and
        comes back under the same name."""
        if self.stopping:
            return
        r = self.rng
        dev = r.choice(self.devices)
        c = dev.conn
        if c and not c.closed:
            x = r.random()
            if c.welcomed and x < 0.6:
                for _ in range(r.randint(1, 3)):
                    if len(dev.unacked) < DEV_WINDOW:
                        self.device_post(c)
            reset = r.random() < 0.5
            dev.conn = None
            self.dstats.drops += 1
            if c.welcomed and x < 0.35:
                # the server takes the burst; its POSTED and ACKs (and any
                # MSG on the way) are never read: the resends are
                # duplicates the server must recognise
                c.deafen()

                def later():
                    if reset:
                        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                          struct.pack("ii", 1, 0))
                    c.sock.close()
                    self.at(r.uniform(0.1, 1.0),
                            lambda: self.device_reconnect(dev))
                self.at(r.uniform(0.05, 0.5), later)
            else:
                c.close(reset=reset)
                self.at(r.uniform(0.1, 1.0), lambda: self.device_reconnect(dev))
        self.at(r.expovariate(1 / self.args.device_churn), self.device_churn)

    def message_id(self, key, mid, where):
        """Every sighting of (author, device, cid) must name one id."""
        first = self.ids.setdefault(key, mid)
        if first != mid:
            self.fail(f"{where}: device {key[0]}/{key[1].decode()}'s cid "
                      f"{key[2]} has id {mid}, elsewhere id {first}")

    def start_devices(self, nusers):
        self.dev_users = [DEVICE_BASE + i for i in range(nusers)]
        for u in self.dev_users:
            for name in DEVICE_NAMES:
                self.devices.append(Device(u, name))
        for i in range(min(NGROUPS, nusers)):
            creator = self.dev_users[i]
            others = [u for u in self.dev_users if u != creator]
            members = [creator] + self.rng.sample(
                others, min(GROUP_SIZE, nusers) - 1)
            self.group_plan.append((creator, members))
            self.devices[2 * i].creates.append(i)      # its phone
        for dev in self.devices:
            self.connect_device(dev)
        self.at(self.args.device_churn, self.device_churn)

    def device_summary(self):
        d = self.dstats
        return (f"devices: {len(self.devices)} ({len(self.dev_users)} users, "
                f"{len(self.groups)} groups): POSTs {d.posts} (acknowledged "
                f"{d.acked}, resent {d.resent}, refused {d.refused}), MSGs "
                f"{d.msgs} (own {d.own}, group {d.group_msgs}, redelivered "
                f"{d.redelivered}), POSTED {d.posted} (for resends "
                f"{d.posted_resent}, of which naming a known id "
                f"{d.resent_known}), RECEIPTs "
                f"{dict(d.receipts) or 'none'}, TYPING {d.typing}, PRESENCE "
                f"{d.presence}, group events {d.group_events}; sent: READ "
                f"{d.reads}, QUERY {d.queries}, TYPING {d.typing_sent}, "
                f"subscriptions {d.subscribed}; connects {d.connects}, drops "
                f"{d.drops}; ERRORs {dict(d.errors) or 'none'}")

    # -- run -------------------------------------------------------------
    def run(self):
        """run_soak(); then the temporary directory (server log, data) is
        removed after a pass and kept, as evidence, otherwise."""
        rc = 1
        try:
            rc = self.run_soak()
        finally:
            proc = getattr(self, "proc", None)
            if proc and proc.poll() is None:
                proc.kill()
                proc.wait()
            if getattr(self, "tmpdir", None):
                if rc == 0:
                    shutil.rmtree(self.tmpdir, ignore_errors=True)
                else:
                    print(f"soak: the server's log and data directory are "
                          f"kept in {self.tmpdir}", flush=True)
        return rc

    def run_soak(self):
        a = self.args
        self.stopping = False
        self.start_server()
        npairs = a.clients * 6 // 10 // 2
        nacked = a.clients * 2 // 10
        ndev = a.devices if a.devices is not None else max(2, a.clients // 20)
        a.churn_slots = max(0, a.clients - 2 * npairs - nacked - 2 * ndev)
        self.pair_users = [PAIR_BASE + i for i in range(2 * npairs)]
        print(f"soak: server pid {self.proc.pid} on {self.host}:{self.port}; "
              f"{2 * npairs} pair clients, {nacked} acked senders, "
              f"{2 * ndev} devices, {a.churn_slots} churn slots; "
              f"{a.seconds:.0f} s, warm-up {a.warmup:.0f} s", flush=True)
        for u in self.pair_users:
            self.connect_pair(u)
        for i in range(nacked):
            self.add_acked(ACKED_BASE + i)
        if ndev:
            self.start_devices(ndev)
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
                      f"{s.delivered}, reconnects {s.reconnects}; devices: "
                      f"POSTs {self.dstats.posts}, acknowledged "
                      f"{self.dstats.acked}, resent {self.dstats.resent}, MSGs "
                      f"{self.dstats.msgs}", flush=True)
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
        if self.devices:
            print(f"soak: {self.device_summary()}")
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
            print(f"soak: FAIL: server RSS grew {growth:.1%} after the warm-up; "
                  f"samples from the warm-up on (s: MiB): " + ", ".join(
                      f"{t:.0f}: {r / 1024:.1f}" for t, r in samples
                      if t >= t_warm))
            ok = False
        if rc != 0:
            print(f"soak: FAIL: server exit status {rc}:\n{self.log_tail()}")
            ok = False
        if s.delivered == 0 or s.acked == 0:
            print("soak: FAIL: nothing was delivered or acknowledged")
            ok = False
        d = self.dstats
        if self.devices and 0 in (d.acked, d.msgs, d.posted, d.presence,
                                  sum(d.receipts.values()), len(self.groups)):
            print("soak: FAIL: the devices saw no acknowledged POST, MSG, "
                  "POSTED, PRESENCE, RECEIPT or group")
            ok = False
        if self.failures:
            print(f"soak: FAIL: {len(self.failures)} device failures; the "
                  f"first: {self.failures[0]}")
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
    p.add_argument("--devices", type=int, default=None,
                   help="device users, two devices each (default: a "
                        "twentieth of --clients, at least 2; their "
                        "connections count in --clients)")
    p.add_argument("--device-interval", type=float, default=0.5,
                   help="mean seconds between two moments of one device")
    p.add_argument("--device-churn", type=float, default=2.0,
                   help="mean seconds between two device drops")
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
