"""Raw-socket helpers for signals (docs/PROTOCOL.md, "Receipts, typing and
presence"): the SIGNALS flag, RECEIPT 0x8C, TYPING 0x8D, PRESENCE 0x8E,
POSTED 0x8F.

A SigClient is a GroupClient whose reads set every signal frame aside (in
`signals`, in arrival order), so that reads of deliveries, answers and
events never see them; next_signal() takes them. Absence is shown by
sync() (a PING answered: everything the server queued for this connection
before it handled the PING has been read), never by waiting.
"""

import struct
import time
from collections import deque, namedtuple

import pytest

from convproto import DEVICE, GroupClient, device
from proto import ERROR, PING, PONG, parse_error

SIGNALS_FLAG = 0x04
SIG_DEVICE = DEVICE | SIGNALS_FLAG
RECEIPT, TYPING, PRESENCE, POSTED = 0x8C, 0x8D, 0x8E, 0x8F
DELIVERED, READ, QUERY, END = 1, 2, 3, 4
SUBSCRIBE, UNSUBSCRIBE = 1, 2
E_DENIED = 15
GROUP = 0x02

RECEIPT_BODY = struct.Struct("!BBIIQQ")     # what, flags, conv, by, upto, time: 26
TYPING_BODY = struct.Struct("!BIB")         # flags, to, state: 6
PRESENCE_BODY = struct.Struct("!IBQ")       # user, state, last_seen: 13

Rcpt = namedtuple("Rcpt", "what flags conv by upto time")
Typing = namedtuple("Typing", "sender flags to state")
Presence = namedtuple("Presence", "user state last_seen")
Posted = namedtuple("Posted", "cid id")
POSTED_BODY = struct.Struct("!QQ")


def receipt_body(what, conv, upto=0, flags=0, by=0, t=0):
    return RECEIPT_BODY.pack(what, flags, conv, by, upto, t)


def typing_body(to, state=1, flags=0):
    return TYPING_BODY.pack(flags, to, state)


def presence_body(op, users):
    return struct.pack("!BH", op, len(users)) + b"".join(struct.pack("!I", u) for u in users)


def parse_signal(f):
    if f.type == RECEIPT:
        assert len(f.body) == RECEIPT_BODY.size and f.sender == 0, f
        return Rcpt(*RECEIPT_BODY.unpack(f.body))
    if f.type == TYPING:
        assert len(f.body) == TYPING_BODY.size, f
        return Typing(f.sender, *TYPING_BODY.unpack(f.body))
    if f.type == POSTED:
        assert len(f.body) == POSTED_BODY.size and f.sender == 0, f
        p = Posted(*POSTED_BODY.unpack(f.body))
        assert p.cid != 0 and p.id != 0, p
        return p
    assert len(f.body) == PRESENCE_BODY.size and f.sender == 0, f
    return Presence(*PRESENCE_BODY.unpack(f.body))


class SigClient(GroupClient):
    def __init__(self, host, port, **kw):
        super().__init__(host, port, **kw)
        self.signals = deque()

    def _read(self, timeout):
        f = super()._read(timeout)
        if f is not None and f.type in (RECEIPT, TYPING, PRESENCE, POSTED):
            self.signals.append(parse_signal(f))
            return None
        return f

    def next_signal(self, kind=None, timeout=None):
        """The oldest signal set aside (of type `kind`, a namedtuple class,
        if given; others stay), reading until one comes."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for s in self.signals:
                if kind is None or isinstance(s, kind):
                    self.signals.remove(s)
                    return s
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"user {self.user}: no {kind.__name__ if kind else 'signal'} came")
            f = self._read(left)
            if f is not None:
                self._set_aside(f, "a signal")

    def sync_signals(self, token=b"sigsync"):
        """PING, read up to its PONG; returns (and forgets) every signal set
        aside so far: what the server sent before it handled the PING."""
        self.send_frame(self.user, 0, PING, token)
        while True:
            f = self._read(self.timeout)
            if f is None:
                continue
            if f.type == PONG:
                assert f.body == token
                break
            self._set_aside(f, "PONG")
        got = list(self.signals)
        self.signals.clear()
        return got

    # -- requests --------------------------------------------------------
    def read_mark(self, conv, upto, group=False):
        self.send_frame(self.user, 0, RECEIPT,
                        receipt_body(READ, conv, upto, GROUP if group else 0))

    def query(self, conv, group=False):
        """QUERY the marks of conv; returns them (the frames before END)."""
        flags = GROUP if group else 0
        self.send_frame(self.user, 0, RECEIPT, receipt_body(QUERY, conv, 0, flags))
        out = []
        while True:
            r = self.next_signal(Rcpt)
            if r.what == END:
                assert (r.flags, r.conv, r.by, r.upto) == (flags, conv, 0, 0), r
                return out
            assert (r.flags, r.conv) == (flags, conv), r
            out.append(r)

    def typing(self, to, state=1, group=False):
        self.send_frame(self.user, 0, TYPING, typing_body(to, state, GROUP if group else 0))

    def subscribe(self, *users, op=SUBSCRIBE):
        self.send_frame(self.user, 0, PRESENCE, presence_body(op, list(users)))

    def expect_error_ref(self, code, ref):
        while True:
            f = self._read(self.timeout)
            if f is None:
                continue
            if f.type == ERROR:
                e = parse_error(f.body)
                assert (e.code, e.ref) == (code, ref), e
                return e
            self._set_aside(f, f"ERROR {code}")


def make_contacts(a, b, c, text_kind):
    """Users a (1), b (2), c (3) as docs/PROTOCOL.md's contacts rule sees
    them: 1 wrote to 2 (a conversation), 1 made a group with 3, 3 wrote to
    5. Returns the group's id."""
    a.post(2, text_kind, b"hello 2")     # a message: a conversation with 2
    a.acked()
    b.read_msg()
    b.ack()
    g = a.create("with 3", [3])          # a group: a conversation with 3
    c.next_event()
    c.post(5, text_kind, b"5 is 3's contact, not 1's")
    c.acked()
    return g


def sig_device(srv, user, name="phone", flags=SIG_DEVICE, password=b""):
    return device(srv, user, name, flags, password, cls=SigClient)
