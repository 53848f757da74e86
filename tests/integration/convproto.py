"""Raw-socket helpers for devices and conversations (HELLO with CONV, MSG
0x86, POST 0x87; docs/PROTOCOL.md, "Devices and conversations"), built on
proto.Client.

A ConvClient keeps the counts both sides' acknowledgements are about:
`received` (data frames and MSGs read: what our ACK says) and `sent` (data
frames and POSTs sent: what the server's ACK counts). Server ACKs may come
between deliveries at any moment: every read records them and goes on, so a
test reads deliveries (`next_delivery`, `read_msg`, `read_bare`) without
caring where the ACKs fell.
"""

import itertools
import sqlite3
import struct
import time
from collections import deque, namedtuple

import pytest

from proto import (ACK, ACKS_FLAG, DATA_TYPES, ERROR, HELLO, PING, PONG,
                   WELCOME, Client, Frame, ack_body, parse_ack, parse_error,
                   parse_welcome)
from test_metrics import parse, scrape, value

CONV_FLAG = 0x02
MSG, POST = 0x86, 0x87
OWN = 0x01                       # MSG flags bit 0
MSG_HEAD = struct.Struct("!QBBIQ")   # id, kind, flags, to, time: 22 bytes
POST_HEAD = struct.Struct("!BBQ")    # kind, flags, cid: 10 bytes
DEVICE = ACKS_FLAG | CONV_FLAG   # what a device asks for unless told

Msg = namedtuple("Msg", "sender id kind flags to time payload")


def now_ms():
    return int(time.time() * 1000)


def conv_hello_body(device, flags=DEVICE, password=b"", n=None, version=1):
    """HELLO body with the device name; `n` overrides the name's length
    byte (to write a malformed HELLO)."""
    name = device.encode() if isinstance(device, str) else device
    return bytes([version, flags, len(name) if n is None else n]) + name + password


def post_body(kind, payload, cid=0, flags=0):
    return POST_HEAD.pack(kind, flags, cid) + payload


def parse_msg(f, allowed=OWN):
    """A MSG frame -> Msg; checks the layout the spec fixes (flags: only
    the bits of `allowed`)."""
    assert f.type == MSG, f"expected MSG, got type {f.type:#x} {f.body[:80]!r}"
    assert len(f.body) >= MSG_HEAD.size, f"MSG body under 22 bytes: {f.body!r}"
    mid, kind, flags, to, t = MSG_HEAD.unpack_from(f.body)
    assert kind in DATA_TYPES, f"MSG kind {kind} is not 1-4"
    assert flags & ~allowed == 0, f"MSG flags {flags:#x}: reserved bits set"
    return Msg(f.sender, mid, kind, flags, to, t, f.body[MSG_HEAD.size:])


def payload(d):
    """The bytes a delivery carries (a Msg's payload or a data frame's body)."""
    return d.payload if isinstance(d, Msg) else d.body


class ConvClient(Client):
    """proto.Client with the counts and reads of a device (or of a bare
    client, conv False, which reads data frames)."""

    msg_flags = OWN              # the MSG flags this client accepts

    def __init__(self, host, port, **kw):
        super().__init__(host, port, **kw)
        self.user = None
        self.conv = self.acks = False
        self.received = 0        # data frames and MSGs read on this connection
        self.sent = 0            # data frames and POSTs sent on this connection
        self.ack_count = 0       # the server's last ACK
        self.pending = deque()   # deliveries read while waiting for something else

    # -- binding ---------------------------------------------------------
    def welcome(self, user):
        f = self.read_frame()
        assert f.type == WELCOME, f"expected WELCOME, got {f.type:#x} {f.body[:80]!r}"
        w = parse_welcome(f.body)
        assert (f.sender, w.version, w.user) == (0, 1, user), f"unexpected WELCOME {w}"
        self.user = user
        self.conv = bool(w.flags & CONV_FLAG)
        self.acks = bool(w.flags & ACKS_FLAG)
        return w

    def hello_conv(self, user, device, flags=DEVICE, password=b""):
        """HELLO with CONV and a device name; returns the WELCOME."""
        self.send_frame(user, 0, HELLO, conv_hello_body(device, flags, password))
        return self.welcome(user)

    # -- sending ---------------------------------------------------------
    def send_data(self, to, kind, body):
        self.send_frame(self.user, to, kind, body)
        self.sent += 1

    def post(self, to, kind, body, cid=0):
        self.send_frame(self.user, to, POST, post_body(kind, body, cid))
        self.sent += 1

    def ack(self, count=None):
        """ACK `count` deliveries (default: all read so far)."""
        self.send_frame(self.user, 0, ACK, ack_body(self.received if count is None else count))

    # -- receiving -------------------------------------------------------
    def read_frame(self, timeout=None):
        f = super().read_frame(timeout)
        if f.type in DATA_TYPES or f.type == MSG:
            self.received += 1
        elif f.type == ACK:
            assert f.sender == 0, f"ACK sender must be 0, got {f.sender}"
            n = parse_ack(f.body)
            assert self.ack_count <= n <= self.sent, \
                f"server ACK {n} after {self.ack_count}, with {self.sent} frames sent"
            self.ack_count = n
        return f

    def _next(self, timeout, what):
        """The next frame other than an ACK; ERROR fails the test."""
        while True:
            f = self.read_frame(timeout)
            if f.type == ERROR:
                pytest.fail(f"user {self.user}: ERROR {parse_error(f.body)} while "
                            f"waiting for {what}")
            if f.type != ACK:
                return f

    def next_delivery(self, timeout=None):
        """The next MSG (as Msg) or data frame (as Frame)."""
        if self.pending:
            return self.pending.popleft()
        f = self._next(timeout, "a delivery")
        if f.type == MSG:
            return parse_msg(f, self.msg_flags)
        assert f.type in DATA_TYPES, f"expected a delivery, got {f.type:#x} {f.body[:80]!r}"
        return f

    def read_msg(self, timeout=None):
        d = self.next_delivery(timeout)
        assert isinstance(d, Msg), f"user {self.user}: expected MSG, got a bare {d}"
        return d

    def read_msgs(self, n, timeout=None):
        return [self.read_msg(timeout) for _ in range(n)]

    def read_bare(self, n, timeout=None):
        """n bare data frames (types 1-4), never a MSG."""
        out = [self.next_delivery(timeout) for _ in range(n)]
        for d in out:
            assert isinstance(d, Frame), f"user {self.user}: expected a bare data frame, got {d}"
        return out

    def wait_acked(self, count=None, timeout=None):
        """Read until the server's ACK covers `count` (default: all sent)
        frames; returns the ERRORs that came meanwhile. Deliveries that come
        meanwhile are kept for next_delivery."""
        count = self.sent if count is None else count
        deadline = time.monotonic() + (timeout or self.timeout)
        errors = []
        while self.ack_count < count:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"user {self.user}: no ACK covering {count} frames "
                            f"(last: {self.ack_count}; errors {errors})")
            f = self.read_frame(left)
            if f.type == ERROR:
                errors.append(parse_error(f.body))
            elif f.type == MSG:
                self.pending.append(parse_msg(f, self.msg_flags))
            elif f.type in DATA_TYPES:
                self.pending.append(f)
            elif f.type != ACK:
                pytest.fail(f"user {self.user}: unexpected {f.type:#x} while waiting for ACK")
        return errors

    def acked(self):
        """Wait until everything sent is acknowledged, with no ERROR."""
        errors = self.wait_acked()
        assert errors == [], f"user {self.user}: unexpected ERRORs {errors}"

    def sync(self, token=b"sync"):
        """PING, wait for its PONG: the server has handled everything this
        connection sent before (ACKs included). Returns the deliveries that
        came meanwhile (live ones: a fetch from the store may still be on
        its way; see marker())."""
        self.send_frame(self.user, 0, PING, token)
        got = list(self.pending)
        self.pending.clear()
        while True:
            f = self._next(None, "PONG")
            if f.type == PONG:
                assert f.body == token, f"PONG {f.body!r} does not answer {token!r}"
                return got
            got.append(parse_msg(f, self.msg_flags) if f.type == MSG else f)

    def ack_sync(self, count=None):
        """ACK (as ack()), then sync(): nothing may have come meanwhile."""
        self.ack(count)
        got = self.sync()
        assert got == [], f"user {self.user}: unexpected deliveries {got}"

    def expect_error(self, code):
        """The next frame other than an ACK is ERROR `code`; returns it."""
        while True:
            f = self.read_frame()
            if f.type != ACK:
                break
        assert f.type == ERROR, f"expected ERROR {code}, got {f.type:#x} {f.body[:80]!r}"
        e = parse_error(f.body)
        assert e.code == code, f"expected ERROR {code}, got {e}"
        return e


# -- connections -------------------------------------------------------------

def connect(srv, cls=ConvClient):
    c = cls(srv.host, srv.port)
    srv.clients.append(c)
    return c


def device(srv, user, name, flags=DEVICE, password=b"", cls=ConvClient):
    """A connection of device `name` of `user` (a `cls`); CONV (and ACKS if
    asked) must be granted."""
    c = connect(srv, cls)
    w = c.hello_conv(user, name, flags, password)
    assert w.flags & CONV_FLAG, \
        f"CONV not granted to device {name!r} of user {user} (WELCOME flags {w.flags:#x})"
    assert w.flags == flags, f"asked for flags {flags:#x}, granted {w.flags:#x}"
    return c


def plain(srv, user, flags=ACKS_FLAG):
    """A connection bound by a HELLO without CONV (the default device)."""
    c = connect(srv)
    c.send_hello(user, flags)
    w = c.welcome(user)
    assert w.flags == flags, f"asked for flags {flags:#x}, granted {w.flags:#x}"
    return c


_binds = itertools.count(1)


def article(srv, user, witness):
    """The article's client: no HELLO, bound by its first data frame, which
    goes to `witness` (a connection of another user)."""
    c = connect(srv)
    c.user = user
    body = b"bind %d" % next(_binds)
    c.send_data(witness.user, 1, body)
    assert payload(witness.next_delivery()) == body
    return c


_markers = itertools.count(1)


def marker(sender, to, *receivers):
    """`sender` writes a fresh text to user `to`; the next delivery of every
    one of `receivers` (connections of `to`) must be it: nothing came before
    it that was not already read. Messages reach a device in id order, so
    this also proves that nothing older is still on its way (a fetch from
    the store included). Returns the deliveries."""
    body = b"marker %d" % next(_markers)
    sender.send_data(to, 1, body)
    return _next_is(sender, body, receivers, lambda r: (to, 0))


def _next_is(sender, body, receivers, to_flags):
    """Wait for `sender`'s ACK (if it asked for them); then the next
    delivery of each of `receivers` must be `body` from `sender`: a MSG
    whose (to, flags) are to_flags(receiver) on a CONV connection, else a
    bare frame. Returns the deliveries."""
    if sender.acks:
        sender.acked()
    out = []
    for r in receivers:
        d = r.next_delivery()
        assert payload(d) == body, \
            f"user {r.user}: expected {body!r} next, got {d}"
        assert isinstance(d, Msg) == r.conv, f"user {r.user}: wrong frame kind {d}"
        if isinstance(d, Msg):
            assert (d.sender, d.to, d.flags) == (sender.user, *to_flags(r)), d
        else:
            assert d.sender == sender.user, d
        out.append(d)
    return out


# -- the store, seen through /metrics (servers with --http-port auto) -------

def stored(srv):
    """(messages, bytes) the store holds now."""
    m = parse(scrape(srv))
    return value(m, "chat_stored_messages"), value(m, "chat_stored_bytes")


def wait_stored(srv, pred, what, timeout=5.0):
    """Poll /metrics until pred(messages, bytes); returns the monotonic
    time it was first seen and the figures."""
    deadline = time.monotonic() + timeout
    while True:
        n, size = stored(srv)
        if pred(n, size):
            return time.monotonic(), (n, size)
        if time.monotonic() > deadline:
            pytest.fail(f"the store never held {what} within {timeout}s "
                        f"(last: {n:g} messages, {size:g} bytes)")
        time.sleep(0.02)


def wait_messages(srv, n, timeout=5.0):
    return wait_stored(srv, lambda m, _: m == n, f"{n} messages", timeout)[0]


class StoreProbe:
    """Shows what the store holds once every deletion the server decided
    before a moment is done. start() stores a 64 KiB probe for an offline
    device; finish() lets the device acknowledge it and waits until the
    probe is gone: deletions are carried out in the order they are decided,
    so one the server decided before (wrongly) is done by then too. The
    rest of the store must stay under 64 KiB."""

    SIZE = 1 << 16
    USER = 4242

    def __init__(self, srv, sender):
        self.srv, self.sender = srv, sender
        device(srv, self.USER, "probe").close()      # seen, then offline

    def start(self):
        self.sender.send_data(self.USER, 2, bytes(self.SIZE))
        self.sender.acked()
        wait_stored(self.srv, lambda _, size: size >= self.SIZE, "the probe")

    def finish(self):
        d = device(self.srv, self.USER, "probe")
        assert payload(d.read_msg()) == bytes(self.SIZE)
        d.ack_sync()
        d.close()
        return wait_stored(self.srv, lambda _, size: size < self.SIZE,
                           "less than the probe")[1]


# -- the database file ---------------------------------------------------------

def db_state(path):
    """user_version, schema and every table's rows of a chat.db (the server
    stopped), to compare two moments. SQLite's statistics tables are left
    out (PRAGMA optimize may rewrite them)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        (version,), = db.execute("PRAGMA user_version").fetchall()
        schema = sorted(db.execute("SELECT type, name, tbl_name, sql FROM sqlite_schema"
                                   " WHERE name NOT LIKE 'sqlite_stat%'").fetchall())
        rows = {}
        for (name,) in db.execute("SELECT name FROM sqlite_schema WHERE type = 'table'"
                                  " AND name NOT LIKE 'sqlite_stat%'"):
            rows[name] = sorted(db.execute(f'SELECT * FROM "{name}"').fetchall(), key=repr)
        return version, schema, rows
    finally:
        db.close()


def user_version(path):
    return db_state(path)[0]


# -- groups (docs/PROTOCOL.md, "Groups") ---------------------------------------

GROUP_FRAME, GROUPS_FRAME = 0x88, 0x89
GROUP_FLAG = 0x02                # MSG and POST flags bit 1: `to` is a group
E_GROUP = 14                     # ERROR code GROUP
CREATE, RENAME, ADD, REMOVE, LEAVE, LIST, MEMBERS, EVENT = range(1, 9)
CREATED, RENAMED, ADDED, REMOVED, LEFT = range(1, 6)   # EVENT's `what`
NO_GROUP = 4000000000            # a group id no test server gives
GROUP_PRE = struct.Struct("!BII")    # op, req, group: 9 bytes

Groups = namedtuple("Groups", "op req group data")   # data: by op, below
GroupInfo = namedtuple("GroupInfo", "id admin members name")  # LIST entries
Member = namedtuple("Member", "user admin")                    # MEMBERS entries
Event = namedtuple("Event", "what by users name")              # EVENT's data


def name_bytes(name):
    return name.encode() if isinstance(name, str) else name


def group_body(op, req=0, group=0, name=None, users=None):
    """A GROUP body: the prefix, then the name (`n` u8 + bytes) if given,
    then the users (`count` u16 + u32 each) if given."""
    body = GROUP_PRE.pack(op, req, group)
    if name is not None:
        nb = name_bytes(name)
        body += bytes([len(nb)]) + nb
    if users is not None:
        body += struct.pack("!H", len(users)) + b"".join(struct.pack("!I", u) for u in users)
    return body


class _Reader:
    """Reads a GROUPS body field by field; fails on a short body."""

    def __init__(self, body, at):
        self.body, self.at = body, at

    def take(self, fmt):
        s = struct.Struct(fmt)
        assert self.at + s.size <= len(self.body), \
            f"GROUPS body of {len(self.body)} bytes ends inside a field: {self.body!r}"
        v = s.unpack_from(self.body, self.at)
        self.at += s.size
        return v if len(v) > 1 else v[0]

    def name(self):
        n = self.take("!B")
        assert self.at + n <= len(self.body), f"GROUPS name past the body: {self.body!r}"
        self.at += n
        return self.body[self.at - n:self.at]

    def flag(self):
        flags = self.take("!B")
        assert flags & ~1 == 0, f"GROUPS flags {flags:#x}: reserved bits set"
        return bool(flags)


def parse_groups(f):
    """A GROUPS frame -> Groups; data is a list of GroupInfo (LIST), of
    Member (MEMBERS), an Event, or None (the other ops). Checks that the
    body holds exactly what its op says."""
    assert f.type == GROUPS_FRAME and f.sender == 0, f"not a GROUPS from the server: {f}"
    assert len(f.body) >= GROUP_PRE.size, f"GROUPS body under 9 bytes: {f.body!r}"
    op, req, group = GROUP_PRE.unpack_from(f.body)
    r = _Reader(f.body, GROUP_PRE.size)
    if op == LIST:
        data = []
        for _ in range(r.take("!H")):
            gid, admin, members, name = r.take("!I"), r.flag(), r.take("!H"), r.name()
            data.append(GroupInfo(gid, admin, members, name))
    elif op == MEMBERS:
        data = [Member(r.take("!I"), r.flag()) for _ in range(r.take("!H"))]
    elif op == EVENT:
        assert req == 0, f"EVENT with req {req}"
        what, by, count = r.take("!B"), r.take("!I"), r.take("!H")
        users = [r.take("!I") for _ in range(count)]
        data = Event(what, by, users, r.name())
        assert CREATED <= what <= LEFT, f"EVENT what {what}"
    else:
        assert CREATE <= op <= LEAVE, f"GROUPS op {op}"
        data = None
    assert r.at == len(f.body), f"GROUPS op {op}: {len(f.body) - r.at} bytes left over"
    return Groups(op, req, group, data)


_reqs = itertools.count(1000)    # far from any sequence number a test reaches


class GroupClient(ConvClient):
    """A ConvClient that takes group messages (MSG flag GROUP), GROUPS
    frames and HISTORY pages: every read sets answers and events aside, so
    the reads of deliveries never see them; reply() and next_event() take
    them."""

    msg_flags = OWN | GROUP_FLAG

    def __init__(self, host, port, **kw):
        super().__init__(host, port, **kw)
        self.answers = deque()   # GROUPS answers not yet taken
        self.events = deque()    # GROUPS events not yet taken

    def _read(self, timeout):
        """One frame; a GROUPS or a HISTORY page is set aside (then None)."""
        f = super().read_frame(timeout)
        if f.type == PAGE_FRAME:
            self.answers.append(parse_page(f))
            return None
        if f.type != GROUPS_FRAME:
            return f
        g = parse_groups(f)
        (self.events if g.op == EVENT else self.answers).append(g)
        return None

    def read_frame(self, timeout=None):
        """The next frame other than a GROUPS."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            f = self._read(max(deadline - time.monotonic(), 0.001))
            if f is not None:
                return f

    def _set_aside(self, f, what):
        # (read_frame() would wait past a GROUPS: reply() and next_event()
        # read with _read(), and look again at what was set aside.)
        """A frame read while waiting for `what`: deliveries are kept for
        next_delivery, ACKs were counted; anything else fails."""
        if f.type == MSG:
            self.pending.append(parse_msg(f, self.msg_flags))
        elif f.type in DATA_TYPES:
            self.pending.append(f)
        elif f.type == ERROR:
            pytest.fail(f"user {self.user}: ERROR {parse_error(f.body)} while waiting for {what}")
        elif f.type != ACK:
            pytest.fail(f"user {self.user}: unexpected {f.type:#x} while waiting for {what}")

    # -- requests ----------------------------------------------------------
    def request(self, op, group=0, name=None, users=None, req=None):
        """Send a GROUP request; returns its req."""
        req = next(_reqs) if req is None else req
        self.send_frame(self.user, 0, GROUP_FRAME, group_body(op, req, group, name, users))
        return req

    def reply(self, req, timeout=None):
        """The answer to request `req`: a Groups (done) or a Page (HISTORY),
        or the Error of an ERROR GROUP whose ref is `req` (refused)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for a in self.answers:
                if a.req == req:
                    self.answers.remove(a)
                    return a
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"user {self.user}: no answer to GROUP request {req}")
            f = self._read(left)
            if f is None:
                continue
            if f.type == ERROR:
                e = parse_error(f.body)
                assert (e.code, e.ref) == (E_GROUP, req), \
                    f"user {self.user}: {e} while waiting for the answer to request {req}"
                return e
            self._set_aside(f, f"the answer to request {req}")

    def done(self, op, group=0, name=None, users=None):
        """A request that must be done; returns the answer's group."""
        req = self.request(op, group, name, users)
        a = self.reply(req)
        assert isinstance(a, Groups), f"user {self.user}: op {op} on group {group} refused: {a}"
        assert (a.op, a.req) == (op, req), f"answer {a} to op {op}, req {req}"
        if op != CREATE:
            assert a.group == group, f"answer {a} names another group than {group}"
        return a.group

    def refused(self, op, group=0, name=None, users=None):
        """A request that must be refused with ERROR GROUP (ref = its req,
        a reason given); returns the Error."""
        req = self.request(op, group, name, users)
        e = self.reply(req)
        assert not isinstance(e, Groups), \
            f"user {self.user}: op {op} on group {group} was done: {e}"
        assert e.reason, f"ERROR GROUP without a reason: {e}"
        return e

    def create(self, name, users=()):
        gid = self.done(CREATE, 0, name, list(users))
        assert gid != 0, "CREATE answered with group 0"
        return gid

    def members(self, group):
        """MEMBERS: the members as a set of Member."""
        req = self.request(MEMBERS, group)
        a = self.reply(req)
        assert isinstance(a, Groups) and (a.op, a.group) == (MEMBERS, group), \
            f"user {self.user}: MEMBERS of {group}: {a}"
        out = set(a.data)
        assert len(out) == len(a.data), f"MEMBERS lists a user twice: {a.data}"
        return out

    def groups(self):
        """LIST: the sender's groups as {id: GroupInfo}."""
        req = self.request(LIST)
        a = self.reply(req)
        assert isinstance(a, Groups) and (a.op, a.group) == (LIST, 0), \
            f"user {self.user}: LIST: {a}"
        out = {g.id: g for g in a.data}
        assert len(out) == len(a.data), f"LIST names a group twice: {a.data}"
        return out

    def next_event(self, timeout=None):
        """The next GROUPS event (Groups, data an Event)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while not self.events:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"user {self.user}: no group event")
            f = self._read(left)
            if f is not None:
                self._set_aside(f, "a group event")
        return self.events.popleft()

    def history(self, kind, peer, before=0, limit=200, req=None):
        """HISTORY: the Page, or the Error of an ERROR GROUP (ref = req)."""
        req = next(_reqs) if req is None else req
        self.send_frame(self.user, 0, HISTORY_FRAME, history_body(req, kind, peer, before, limit))
        page = self.reply(req)
        assert not isinstance(page, Groups), f"a GROUPS answers HISTORY {req}: {page}"
        return page

    def whole_history(self, kind, peer, limit):
        """Every page of a conversation, newest first, asking `limit` at a
        time as the spec says (before = the last id given); returns the
        pages (each checked: newest first, at most `limit`, `more` on all
        but the last)."""
        pages, before = [], 0
        while True:
            page = self.history(kind, peer, before, limit)
            assert isinstance(page, Page), f"user {self.user}: HISTORY refused: {page}"
            ids = [e.id for e in page.entries]
            assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids), \
                f"not newest first: {ids}"
            assert len(ids) <= limit, f"{len(ids)} entries, limit {limit}"
            assert not before or all(i < before for i in ids), f"ids {ids} not below {before}"
            pages.append(page)
            if not page.more:
                return pages
            assert ids, "an empty page says more"
            before = ids[-1]

    # -- group messages ----------------------------------------------------
    def post_group(self, group, kind, body, cid=0):
        self.send_frame(self.user, group, POST, post_body(kind, body, cid, GROUP_FLAG))
        self.sent += 1


def group_device(srv, user, name="phone", flags=DEVICE):
    """A GroupClient connection of device `name` of `user`."""
    return device(srv, user, name, flags, cls=GroupClient)


def group_marker(sender, group, *receivers):
    """As marker(), for a group: `sender` (a GroupClient) posts a fresh
    text to `group`; it must be the next delivery of every one of
    `receivers` (members' connections): a MSG with GROUP (and OWN on the
    sender's other devices) or, without CONV, a bare frame from the sender."""
    body = b"group marker %d" % next(_markers)
    sender.post_group(group, 1, body)
    return _next_is(sender, body, receivers,
                    lambda r: (group, GROUP_FLAG | (OWN if r.user == sender.user else 0)))


# -- history (docs/PROTOCOL.md, "History") -------------------------------------

HISTORY_FRAME, PAGE_FRAME = 0x8A, 0x8B
WITH_USER, WITH_GROUP = 1, 2                 # HISTORY's kind
HISTORY_HEAD = struct.Struct("!IBIQH")       # req, kind, peer, before, limit: 19 bytes
PAGE_HEAD = struct.Struct("!IBH")            # req, more, count: 7 bytes
ENTRY_HEAD = struct.Struct("!QIBBIQI")       # id, sender, kind, flags, to, time, len: 30

Page = namedtuple("Page", "req more entries")
Entry = namedtuple("Entry", "id sender kind flags to time payload")


def history_body(req, kind, peer, before=0, limit=200):
    return HISTORY_HEAD.pack(req, kind, peer, before, limit)


def parse_page(f):
    """A HISTORY page -> Page; checks that the body is exactly its
    entries."""
    assert f.type == PAGE_FRAME and f.sender == 0, f"not a page from the server: {f}"
    assert len(f.body) >= PAGE_HEAD.size, f"page body under 7 bytes: {f.body!r}"
    req, more, count = PAGE_HEAD.unpack_from(f.body)
    assert more in (0, 1), f"page `more` {more}"
    at, entries = PAGE_HEAD.size, []
    for _ in range(count):
        assert at + ENTRY_HEAD.size <= len(f.body), f"page ends inside an entry: {f.body[:80]!r}"
        mid, sender, kind, flags, to, t, n = ENTRY_HEAD.unpack_from(f.body, at)
        at += ENTRY_HEAD.size
        assert at + n <= len(f.body), f"entry payload past the page: {n} bytes"
        assert kind in DATA_TYPES, f"entry kind {kind}"
        assert flags & ~(OWN | GROUP_FLAG) == 0, f"entry flags {flags:#x}"
        entries.append(Entry(mid, sender, kind, flags, to, t, f.body[at:at + n]))
        at += n
    assert at == len(f.body), f"{len(f.body) - at} bytes after the page's entries"
    return Page(req, bool(more), entries)
