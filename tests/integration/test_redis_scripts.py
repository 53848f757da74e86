"""The cluster store's Lua scripts (src/server/redis/*.lua, docs/CLUSTER.md
2.7) against a real redis-server: each script's contract, and the promises
of src/server/store.h they must keep. Needs redis-server only (not the
chat-server binary); the module is skipped when it is not installed.

The class Store below calls the scripts as the C side will: the KEYS and
ARGV of each contract, the replies parsed as documented.
"""

import importlib.util
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from redisfix import RedisServer, RespError, Subscriber, redis_path, redis_server  # noqa: F401 (fixtures)

REPO = Path(__file__).resolve().parents[2]
SCRIPT_DIR = REPO / "src" / "server" / "redis"
EPOCH_MS = 1704067200000
DAY = 86400000


def _embed():
    spec = importlib.util.spec_from_file_location("embed_lua", REPO / "scripts" / "embed_lua.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


EMBED = _embed()
SCRIPTS = {name: (text, sha, ro) for name, text, sha, ro in EMBED.scripts(str(SCRIPT_DIR))}
HEADER = "Q" + "IIIBIq"  # id u64, sender, receiver, group, type, sdev, ts
HDR = struct.calcsize(">" + HEADER)
assert HDR == 33


def entry(id_, sender, receiver, grp, typ, sdev, ts, body):
    return struct.pack(">" + HEADER, id_, sender, receiver, grp, typ, sdev, ts) + body


def unentry(e):
    f = struct.unpack(">" + HEADER, e[:HDR])
    return dict(id=f[0], sender=f[1], receiver=f[2], group=f[3], type=f[4],
                sdev=f[5], ts=f[6], body=e[HDR:])


def dev_pack(cursor, seen, conv, conns, name):
    return struct.pack(">QqBH", cursor, seen, int(conv), conns) + name


def dev_unpack(v):
    c, s, f, n = struct.unpack(">QqBH", v[:19])
    return dict(cursor=c, seen=s, conv=f & 1, conns=n, name=v[19:])


def snap_unpack(b):
    v, g, n = struct.unpack(">QIB", b[:13])
    name = b[13:13 + n]
    (cnt,) = struct.unpack(">H", b[13 + n:15 + n])
    members, off = [], 15 + n
    for _ in range(cnt):
        u, fl, j = struct.unpack(">IBQ", b[off:off + 13])
        members.append((u, fl, j))
        off += 13
    assert off == len(b)
    return dict(version=v, group=g, name=name, members=members)


class Store:
    """The scripts called as their contracts say (the C side's job)."""

    def __init__(self, conn):
        self.c = conn

    def cmd(self, *args):
        return self.c.cmd(*args)

    def now(self):
        s, us = self.cmd("TIME")
        return int(s) * 1000 + int(us) // 1000

    def run(self, name, keys, args, ro=False):
        _, sha, _ = SCRIPTS[name]
        return self.cmd("EVALSHA_RO" if ro else "EVALSHA", sha, len(keys), *keys, *args)

    # -- writes ------------------------------------------------------------
    def put(self, a, b, body=b"hi", sdev=0, typ=1, cid=0, quota=0, maxm=0, maxb=0,
            own=0, dedup=DAY, contacts=0, history=0, grp=0, again=0, again_ts=0):
        lo, hi = min(a, b), max(a, b)
        keys = [f"u:{{{b}}}:log", f"u:{{{b}}}", f"u:{{{a}}}:log", f"u:{{{a}}}:cid:{sdev}",
                f"u:{{{b}}}:on", f"u:{{{a}}}:on", "chat:ids", "chat:alive",
                f"u:{{{a}}}:ct", f"u:{{{b}}}:ct", f"cv:{{{lo}}}:{{{hi}}}"]
        return self.run("put", keys, [a, b, sdev, typ, cid, body, quota, maxm, maxb,
                                      own, dedup, contacts, history, grp, again, again_ts])

    def gput(self, a, g, body=b"hi", sdev=0, typ=1, cid=0, dedup=DAY, again=0, again_ts=0):
        keys = [f"g:{{{g}}}:m", f"g:{{{g}}}:log", f"u:{{{a}}}:cid:{sdev}", "chat:ids",
                "chat:alive", "chat:gdirty"]
        return self.run("gput", keys, [a, g, sdev, typ, cid, body, dedup, again, again_ts])

    def delete(self, u, id_):
        return self.run("del", [f"u:{{{u}}}:log", f"u:{{{u}}}"], [u, id_])

    def device(self, u, name=b"", conv=0, ttl=0, dedup=DAY):
        r = self.run("device", [f"u:{{{u}}}", f"u:{{{u}}}:log", f"u:{{{u}}}:on",
                                "chat:devno", "chat:alive"], [u, name, conv, ttl, dedup])
        d = dict(dev=r[0], cursor=r[1], all=r[2], conv=r[3], created=r[4],
                 cids=[(r[i].decode(), r[i + 1]) for i in range(5, len(r), 2)])
        assert all(isinstance(x, int) for x in r[:5])
        return d

    def cursor(self, u, dev, cursor, closed=0, ttl=0):
        return self.run("cursor", [f"u:{{{u}}}", f"u:{{{u}}}:log", f"u:{{{u}}}:g",
                                   "chat:gdirty"], [u, dev, cursor, closed, ttl])

    def heartbeat(self, node, ttl=5000):
        return self.run("heartbeat", ["chat:alive"], [node, ttl])

    def online(self, u, node, op=1):
        return self.run("online", [f"u:{{{u}}}:on", "chat:alive"], [u, node, op])

    def group(self, op, g=0, actor=0, name=b"", joined=0, was=0, maxm=1024, users=()):
        return self.run("group", ["chat:gids", "chat:groups:all", "chat:gdirty"],
                        [op, g, actor, name, joined, was, maxm, *users])

    def read_mark(self, u, peer=0, group=0, upto=0, ts=0):
        return self.run("read_mark", [f"u:{{{u}}}:rd"], [peer, group, upto, ts])

    def janitor(self, ttl=0, hist=0, dttl=0, count=1000, groups=100):
        return self.run("janitor", ["chat:janitor:scan", "chat:alive", "chat:gdirty"],
                        [ttl, hist, dttl, count, groups])

    def account(self, u, op, hash_=b""):
        return self.run("account", [f"u:{{{u}}}", "chat:accounts"], [u, op, hash_])

    # -- reads (EVALSHA_RO) ----------------------------------------------------
    def fetch(self, u, dev=0, conv=0, after=0, rows=100, nbytes=1 << 20, ttl=0):
        r = self.run("fetch", [f"u:{{{u}}}:log", f"u:{{{u}}}:g"],
                     [u, dev, conv, after, rows, nbytes, ttl], ro=True)
        return r[0], r[1], [unentry(e) for e in r[2:]]

    def marks(self, pairs):
        keys = []
        for x, _ in pairs:
            keys += [f"u:{{{x}}}", f"u:{{{x}}}:rd"]
        r = self.run("marks", keys, [f for _, f in pairs], ro=True)
        return [tuple(r[i:i + 3]) for i in range(0, len(r), 3)]

    def presence(self, u, users, check=1):
        keys = [f"u:{{{u}}}:ct", f"u:{{{u}}}:g"]
        for x in users:
            keys += [f"u:{{{x}}}", f"u:{{{x}}}:g"]
        r = self.run("presence", keys, [u, check, *users], ro=True)
        return [tuple(r[i:i + 3]) for i in range(0, len(r), 3)]

    def history(self, key, min_id=0, before=0, rows=100, nbytes=1 << 20, hist=DAY, ttl=0):
        r = self.run("history", [key], [min_id, before, rows, nbytes, hist, ttl], ro=True)
        return r[0], [unentry(e) for e in r[1:]]

    # -- looking inside ----------------------------------------------------------
    def log(self, u):
        return [unentry(e) for e in self.cmd("ZRANGE", f"u:{{{u}}}:log", 0, -1)]

    def quota(self, u):
        n, b = self.cmd("HMGET", f"u:{{{u}}}", "qn", "qb")
        return (int(n) if n else 0, int(b) if b else 0)

    def dev(self, u, dev):
        return dev_unpack(self.cmd("HGET", f"u:{{{u}}}", f"d:{dev}"))

    def set_dev(self, u, dev, **kw):
        d = self.dev(u, dev)
        d.update(kw)
        self.cmd("HSET", f"u:{{{u}}}", f"d:{dev}",
                 dev_pack(d["cursor"], d["seen"], d["conv"], d["conns"], d["name"]))


@pytest.fixture(scope="module")
def loaded(redis_server):
    """Every script loaded once (SCRIPT LOAD survives FLUSHALL)."""
    c = redis_server.client()
    for name, (text, sha, _) in SCRIPTS.items():
        assert c.cmd("SCRIPT", "LOAD", text).decode() == sha, name
    c.close()
    return redis_server


@pytest.fixture
def st(loaded):
    c = loaded.client()
    c.cmd("FLUSHALL")
    yield Store(c)
    c.close()


@pytest.fixture
def sub(loaded):
    subs = []

    def make(*channels):
        s = Subscriber(loaded.port, *channels)
        subs.append(s)
        return s

    yield make
    for s in subs:
        s.close()


def live(st, node, *users):
    """Node alive for 60 s, holding users."""
    st.heartbeat(node, 60000)
    for u in users:
        st.online(u, node)


# -- the embedding ----------------------------------------------------------------

def test_generated_table_matches_redis(tmp_path, loaded):
    """embed_lua.py writes each script's text, length and the SHA1 that
    SCRIPT LOAD answers, in the order of the header's enum."""
    out = tmp_path / "redis_scripts.c"
    subprocess.run([sys.executable, str(REPO / "scripts" / "embed_lua.py"), str(SCRIPT_DIR),
                    str(REPO / "src" / "server" / "redis_scripts.h"), str(out)], check=True)
    rows = re.findall(r'\{"([a-z_0-9]+)", s(\d+), (\d+), "([0-9a-f]{40})", ([01])\}',
                      out.read_text())
    assert [r[0] for r in rows] == sorted(SCRIPTS)
    assert {"put", "gput", "del", "fetch", "device", "cursor", "heartbeat", "online",
            "group", "read_mark", "marks", "presence", "history", "janitor"} <= set(SCRIPTS)
    c = loaded.client()
    for name, idx, length, sha, ro in rows:
        text = SCRIPTS[name][0]
        assert int(length) == len(text)
        assert c.cmd("SCRIPT", "LOAD", text).decode() == sha
        assert not re.search(rb"^--@include", text, re.M)
        assert int(ro) == (name in ("fetch", "marks", "presence", "history"))
    c.close()
    header = (REPO / "src" / "server" / "redis_scripts.h").read_text()
    enum = re.search(r"enum redis_script_id \{([^}]*)\}", header).group(1)
    assert re.findall(r"REDIS_SCRIPT_([A-Z_0-9]+)", enum) == \
        [n.upper() for n in sorted(SCRIPTS)] + ["COUNT"]


def test_read_only_scripts_run_read_only(st):
    assert st.fetch(1) == (0, 0, [])
    with pytest.raises(RespError) as e:
        st.c.cmd("EVALSHA_RO", SCRIPTS["put"][1], 0)
    assert "write" in e.value.text.lower()


def test_out_of_memory_refuses_writes_whole(st):
    """#!lua without allow-oom: a writing script is refused before it
    starts (never half-way); the read-only ones still answer."""
    _, id_, _ = st.put(1, 2)
    ids = st.cmd("GET", "chat:ids")
    st.cmd("CONFIG", "SET", "maxmemory", 1)
    try:
        with pytest.raises(RespError) as e:
            st.put(1, 2, b"more")
        assert e.value.text.startswith("OOM")
        assert [r["id"] for r in st.fetch(2)[2]] == [id_]
    finally:
        st.cmd("CONFIG", "SET", "maxmemory", 0)
    assert st.cmd("GET", "chat:ids") == ids and st.quota(2) == (1, 2)


def test_bad_arguments_write_nothing(st):
    for kw in (dict(cid="0123"), dict(cid="18446744073709551616"), dict(typ=0),
               dict(sdev=1 << 32), dict(quota=2)):
        with pytest.raises(RespError) as e:
            st.put(1, 2, **kw)
        assert e.value.text.startswith("CHATARG "), e.value.text
    with pytest.raises(RespError) as e:
        st.put(1, 0)
    assert e.value.text.startswith("CHATARG ")
    with pytest.raises(RespError) as e:
        st.group(1, actor=1, name=b"")
    assert e.value.text.startswith("CHATARG name")
    assert st.cmd("DBSIZE") == 0


# -- put ------------------------------------------------------------------------

def test_put_ids_increase_above_the_floor(st):
    t0 = st.now()
    ids = []
    for i in range(50):
        status, id_, how = st.put(1, 2, b"m%d" % i)
        assert (status, how) == (0, 0)
        ids.append(id_)
    t1 = st.now()
    assert ids == sorted(ids) and len(set(ids)) == 50
    assert ids[0] >= (t0 - EPOCH_MS) * 1000
    log = st.log(2)
    assert [e["id"] for e in log] == ids
    for e in log:
        assert t0 <= e["ts"] <= t1
        assert e["id"] // 1000 + EPOCH_MS >= e["ts"]  # the counter only runs ahead
    assert int(st.cmd("GET", "chat:ids")) == ids[-1]
    # a counter ahead of the clock goes on from where it is
    ahead = (t1 - EPOCH_MS) * 1000 + 10 ** 9
    st.cmd("SET", "chat:ids", ahead)
    assert st.put(1, 2)[1] == ahead + 1


def test_put_entry_layout_and_charge(st):
    status, id_, how = st.put(7, 9, b"hello", sdev=3, typ=2, grp=0)
    (raw,) = st.cmd("ZRANGE", "u:{9}:log", 0, -1)
    e = unentry(raw)
    assert raw == entry(id_, 7, 9, 0, 2, 3, e["ts"], b"hello")
    assert st.cmd("ZSCORE", "u:{9}:log", raw) == str(id_).encode()
    assert st.quota(9) == (1, 5)
    assert st.cmd("EXISTS", "u:{7}:log") == 0  # no own copy asked
    assert st.cmd("EXISTS", "u:{7}:ct") == 0 and st.cmd("EXISTS", "cv:{7}:{9}") == 0


def test_put_dedup_returns_the_first_id_and_stores_nothing(st, sub):
    live(st, 1, 2)
    s = sub("chat:node:1")
    first = st.put(1, 2, b"one", sdev=4, cid=12345)
    assert first[0] == 0 and first[2] == 0
    assert s.get()[1][5:] == st.cmd("ZRANGE", "u:{2}:log", 0, -1)[0]
    before = (st.cmd("GET", "chat:ids"), st.quota(2), st.cmd("ZCARD", "u:{2}:log"))
    again = st.put(1, 2, b"one, resent", sdev=4, cid=12345)
    assert again == [0, first[1], 1]
    assert (st.cmd("GET", "chat:ids"), st.quota(2), st.cmd("ZCARD", "u:{2}:log")) == before
    assert s.get(0.3) is None  # nothing handed off
    # the same cid from another device is another message
    other = st.put(1, 2, b"two", sdev=5, cid=12345)
    assert other[2] == 0 and other[1] > first[1]
    # remembered with the message's id, PEXPIRE = the window
    assert st.cmd("ZSCORE", "u:{1}:cid:4", "12345") == str(first[1]).encode()
    assert 0 < st.cmd("PTTL", "u:{1}:cid:4") <= DAY
    # a cid older than the window is unknown again
    st.cmd("ZADD", "u:{1}:cid:4", (st.now() - 2 * DAY - EPOCH_MS) * 1000, "777")
    assert st.put(1, 2, b"late", sdev=4, cid=777)[2] == 0


def test_put_cid_set_keeps_the_last_4096_within_the_window(st):
    base = (st.now() - EPOCH_MS) * 1000 - 10 ** 6
    ahead = base + 10 ** 9 + 1  # the counter ahead of the clock: ids go on from it
    st.cmd("SET", "chat:ids", ahead + ((ahead + 1) % 64 == 0))  # next: no multiple of 64
    for i in range(1, 4100):
        st.c.send("ZADD", "u:{1}:cid:0", base + i, "c%d" % i)
    for _ in range(1, 4100):
        st.c.read_reply()
    st.put(1, 2, cid=5)
    assert st.cmd("ZCARD", "u:{1}:cid:0") == 4096
    assert st.cmd("ZSCORE", "u:{1}:cid:0", "c4") is None
    assert st.cmd("ZSCORE", "u:{1}:cid:0", "c5") is not None
    # every 64th id, the client ids older than the window go as well
    st.cmd("ZADD", "u:{1}:cid:0", 1, "ancient")
    ids = int(st.cmd("GET", "chat:ids"))
    st.cmd("SET", "chat:ids", ids + 63 - ids % 64)
    assert st.put(1, 2, cid=6)[1] % 64 == 0
    assert st.cmd("ZSCORE", "u:{1}:cid:0", "ancient") is None
    assert st.cmd("ZCARD", "u:{1}:cid:0") == 4096


def test_quota_refusals_store_nothing(st, sub):
    live(st, 1, 2)
    s = sub("chat:node:1")
    assert st.put(1, 2, b"a", quota=1, maxm=2)[0] == 0
    assert st.put(1, 2, b"b", quota=1, maxm=2)[0] == 0
    s.drain()
    ids = st.cmd("GET", "chat:ids")
    assert st.put(1, 2, b"c", quota=1, maxm=2, cid=99, own=1) == [-1, 0, 0]
    assert st.quota(2) == (2, 2) and st.cmd("ZCARD", "u:{2}:log") == 2
    assert st.cmd("GET", "chat:ids") == ids
    assert st.cmd("EXISTS", "u:{1}:cid:0") == 0 and st.cmd("EXISTS", "u:{1}:log") == 0
    assert s.get(0.3) is None
    # bytes: 2 + 4 > 5 refused, 2 + 3 fits
    assert st.put(1, 2, b"dddd", quota=1, maxb=5)[0] == -1
    assert st.put(1, 2, b"ddd", quota=1, maxb=5)[0] == 0
    assert st.quota(2) == (3, 5)
    # quota 0: a durable copy of a frame delivered live is stored regardless
    assert st.put(1, 2, b"eeee", quota=0, maxm=1, maxb=1)[0] == 0
    assert st.quota(2) == (4, 9)


def test_own_copies_count_against_no_one(st):
    # the author's own copies are not its quota's
    st.put(1, 2, b"x", own=1)
    assert len(st.log(1)) == 1 and st.quota(1) == (0, 0)
    assert st.put(3, 1, b"yy", quota=1, maxm=1)[0] == 0
    assert st.put(3, 1, b"z", quota=1, maxm=1)[0] == -1


def test_own_copy_only_when_asked(st):
    _, i1, _ = st.put(1, 2, b"plain")
    _, i2, _ = st.put(1, 2, b"own", own=1, sdev=6)
    _, i3, _ = st.put(1, 1, b"to self", own=1)
    assert [e["id"] for e in st.log(1)] == [i2, i3]  # i3: once, as its receiver
    assert st.log(1)[0] == st.log(2)[1]
    assert [e["id"] for e in st.log(2)] == [i1, i2]


def test_put_contacts_and_history(st):
    st.put(5, 3, b"h", contacts=1, history=1)
    assert st.cmd("SMEMBERS", "u:{5}:ct") == [b"3"] and st.cmd("SMEMBERS", "u:{3}:ct") == [b"5"]
    assert st.cmd("ZRANGE", "cv:{3}:{5}", 0, -1) == st.cmd("ZRANGE", "u:{3}:log", 0, -1)
    # a group message's copy for one receiver: neither
    st.put(6, 3, b"g", contacts=1, history=1, grp=44)
    assert st.cmd("EXISTS", "u:{6}:ct") == 0 and st.cmd("EXISTS", "cv:{3}:{6}") == 0
    assert st.log(3)[-1]["group"] == 44


def test_put_again_is_zadd_nx_of_the_same_id(st, sub):
    live(st, 1, 2)
    s = sub("chat:node:1")
    _, id_, _ = st.put(1, 2, b"x", own=1)
    s.drain()
    e = st.log(2)[0]
    ids = st.cmd("GET", "chat:ids")
    assert st.put(1, 2, b"x", own=1, again=id_, again_ts=e["ts"]) == [0, id_, 2]
    assert st.quota(2) == (1, 1) and len(st.log(2)) == 1
    # deleted meanwhile: stored again, same id and time, no new id, no hand-off
    assert st.delete(2, id_) == 1
    assert st.put(1, 2, b"x", own=1, cid=8, again=id_, again_ts=e["ts"]) == [0, id_, 0]
    assert st.log(2) == [e] and st.quota(2) == (1, 1)
    assert len(st.log(1)) == 1  # the own copy was there: not twice
    assert st.cmd("GET", "chat:ids") == ids
    assert st.cmd("ZSCORE", "u:{1}:cid:0", "8") == str(id_).encode()
    assert s.get(0.3) is None


def test_handoff_to_live_nodes_only(st, sub):
    live(st, 1, 2)
    live(st, 2, 2, 1)
    st.cmd("HSET", "chat:alive", 3, st.now() - 1)  # node 3: dead
    st.cmd("SADD", "u:{2}:on", 3)
    s1, s2, s3 = sub("chat:node:1"), sub("chat:node:2"), sub("chat:node:3")
    _, id_, _ = st.put(1, 2, b"hey", own=1)
    e = st.cmd("ZRANGE", "u:{2}:log", 0, -1)[0]
    assert s1.drain() == [("chat:node:1", b"\x01" + struct.pack(">I", 2) + e)]
    assert sorted(s2.drain()) == sorted([("chat:node:2", b"\x01" + struct.pack(">I", 2) + e),
                                         ("chat:node:2", b"\x01" + struct.pack(">I", 1) + e)])
    assert s3.get(0.3) is None
    assert sorted(st.cmd("SMEMBERS", "u:{2}:on")) == [b"1", b"2"]  # dead one removed


def test_handoff_finding_every_node_dead_publishes_offline(st, sub):
    st.cmd("HSET", "chat:alive", 4, st.now() - 1)
    st.cmd("SADD", "u:{2}:on", 4)
    p = sub("chat:presence")
    st.put(1, 2)
    ch, data = p.get()
    state, user, ts = struct.unpack(">BIq", data)
    assert (state, user) == (0, 2)
    assert st.cmd("EXISTS", "u:{2}:on") == 0


# -- fetch ------------------------------------------------------------------------

def test_fetch_order_limits_and_more(st):
    ids = [st.put(1, 2, b"%d" % i * 10)[1] for i in range(5)]
    more, nxt, rows = st.fetch(2, rows=2)
    assert [r["id"] for r in rows] == ids[:2] and more == 1 and nxt == ids[1]
    assert rows[0]["body"] == b"0" * 10 and rows[0]["sender"] == 1 and rows[0]["receiver"] == 2
    more, nxt, rows = st.fetch(2, after=ids[1], rows=100)
    assert [r["id"] for r in rows] == ids[2:] and more == 0 and nxt == ids[4]
    # bytes: at least one row, then until max_bytes is reached
    more, _, rows = st.fetch(2, nbytes=1)
    assert len(rows) == 1 and more == 1
    more, _, rows = st.fetch(2, nbytes=20)
    assert len(rows) == 2 and more == 1
    assert st.fetch(2, after=ids[4]) == (0, ids[4], [])
    assert st.fetch(2, rows=0)[2][0]["id"] == ids[0]  # 0 rows counts as 1


def test_fetch_own_copies_for_other_conv_devices_only(st):
    _, to_me, _ = st.put(3, 1, b"in")
    _, mine5, _ = st.put(1, 3, b"from 5", sdev=5, own=1)
    _, mine6, _ = st.put(1, 3, b"from 6", sdev=6, own=1)
    assert [r["id"] for r in st.fetch(1, dev=5, conv=1)[2]] == [to_me, mine6]
    assert [r["id"] for r in st.fetch(1, dev=7, conv=1)[2]] == [to_me, mine5, mine6]
    assert [r["id"] for r in st.fetch(1, dev=7, conv=0)[2]] == [to_me]
    assert [r["id"] for r in st.fetch(3)[2]] == [mine5, mine6]


def test_fetch_merges_groups_after_joined(st):
    st.heartbeat(1)
    pre = st.put(9, 1, b"before")[1]
    status, g, _ = st.group(1, actor=2, name=b"g", joined=pre, users=[1])
    assert status == 0
    one = st.put(9, 1, b"1:1")[1]
    g1 = st.gput(2, g, b"group")[1]
    mine = st.gput(1, g, b"mine", sdev=4)[1]
    two = st.put(9, 1, b"1:1 again")[1]
    _, _, rows = st.fetch(1, dev=8, conv=1)
    assert [r["id"] for r in rows] == [pre, one, g1, mine, two]
    assert rows[2]["group"] == g and rows[2]["receiver"] == 0
    assert [r["id"] for r in st.fetch(1, dev=4, conv=1)[2]] == [pre, one, g1, two]
    assert [r["id"] for r in st.fetch(1, dev=8, conv=0)[2]] == [pre, one, g1, two]
    assert [r["id"] for r in st.fetch(1, after=one, rows=1)[2]] == [g1]
    # joined later: the group's messages up to it are not for this member
    st.group(6, g, joined=g1, was=pre, users=[1])
    assert [r["id"] for r in st.fetch(1, dev=8, conv=1)[2]] == [pre, one, mine, two]
    # member 2 (joined at pre as well) gets its own g1 on another device
    assert [r["id"] for r in st.fetch(2, dev=1, conv=1)[2]] == [g1, mine]
    assert [r["id"] for r in st.fetch(2, dev=0, conv=1)[2]] == [mine]


def test_fetch_ttl_hides_old_messages(st):
    old_ts = st.now() - 2 * DAY
    old_id = (old_ts - EPOCH_MS) * 1000
    st.cmd("ZADD", "u:{2}:log", old_id, entry(old_id, 1, 2, 0, 1, 0, old_ts, b"old"))
    _, new, _ = st.put(1, 2)
    assert [r["id"] for r in st.fetch(2, ttl=DAY)[2]] == [new]
    assert [r["id"] for r in st.fetch(2)[2]] == [old_id, new]


def test_fetch_budget_gives_next_when_nothing_was_for_the_device(st):
    """20,000 own copies before a message: a non-CONV device's fetch stops
    on its budget with no row, more = 1 and next past what it read."""
    base = (st.now() - EPOCH_MS) * 1000
    for i in range(20000):
        st.c.send("ZADD", "u:{1}:log", base + i, entry(base + i, 1, 2, 0, 1, 5, st_now_ms(base + i), b""))
    for _ in range(20000):
        st.c.read_reply()
    st.cmd("SET", "chat:ids", base + 20000)
    _, mine, _ = st.put(3, 1, b"for me")
    more, nxt, rows = st.fetch(1, dev=0, conv=0, rows=10)
    assert rows == [] and more == 1 and base <= nxt < base + 20000
    after, got = nxt, []
    for _ in range(5):
        more, after, rows = st.fetch(1, after=after, rows=10)
        got += rows
        if not more:
            break
    assert [r["id"] for r in got] == [mine] and more == 0


def st_now_ms(id_):
    return id_ // 1000 + EPOCH_MS


# -- devices ----------------------------------------------------------------------

def test_device_create_and_look_up(st, sub):
    live(st, 1, 5)
    s = sub("chat:node:1")
    d = st.device(5)
    assert d == dict(dev=0, cursor=0, all=1, conv=0, created=1, cids=[])
    assert s.get() == ("chat:node:1", b"\x02" + struct.pack(">IHH", 5, 1, 0))
    p = st.device(5, b"phone", conv=1)
    assert (p["dev"], p["all"], p["conv"], p["created"]) == (1, 2, 1, 1)
    assert s.get()[1] == b"\x02" + struct.pack(">IHH", 5, 2, 1)
    assert st.device(5, b"phone", conv=1)["created"] == 0
    assert s.get(0.3) is None  # nothing changed: nothing published
    assert st.device(5, b"phone", conv=0)["conv"] == 0
    assert s.get()[1] == b"\x02" + struct.pack(">IHH", 5, 2, 0)
    assert st.device(6, b"tab")["dev"] == 2  # numbers are never reused
    rec = st.dev(5, 1)
    assert rec["name"] == b"phone" and rec["conns"] == 3 and rec["conv"] == 0
    assert st.cmd("HGET", "u:{5}", "n:phone") == b"1"


def test_new_device_starts_at_the_least_active_cursor(st):
    a = st.device(5, b"a")
    b = st.device(5, b"b")
    st.cursor(5, a["dev"], 100)
    st.cursor(5, b["dev"], 50)
    assert st.device(5, b"c")["cursor"] == 50
    # b not seen within the device ttl and without connections: not counted
    st.set_dev(5, b["dev"], seen=st.now() - 2 * DAY, conns=0)
    st.set_dev(5, 3, conns=0, cursor=100)
    assert st.device(5, b"d", ttl=DAY)["cursor"] == 100
    # a connection keeps a device counted whatever its age
    st.set_dev(5, b["dev"], conns=1)
    assert st.device(5, b"e", ttl=DAY)["cursor"] == 50


def test_device_returns_its_client_ids_oldest_first(st):
    d = st.device(5, b"p", conv=1)
    ids = [st.put(5, 6, cid=c, sdev=d["dev"])[1] for c in (30, 10, 20)]
    st.cmd("ZADD", f"u:{{5}}:cid:{d['dev']}", (st.now() - 2 * DAY - EPOCH_MS) * 1000, "99")
    got = st.device(5, b"p", conv=1)["cids"]
    assert got == [("30", ids[0]), ("10", ids[1]), ("20", ids[2])]


def test_device_64_max_replaces_the_least_recently_seen(st):
    for i in range(64):
        st.device(5, b"d%d" % i)
    st.set_dev(5, 10, seen=1)
    st.cmd("ZADD", "u:{5}:cid:10", 1, "1")
    d = st.device(5, b"new")
    assert d["all"] == 64 and d["dev"] == 65
    assert st.cmd("HGET", "u:{5}", "d:10") is None and st.cmd("HGET", "u:{5}", "n:d9") is None
    assert st.cmd("EXISTS", "u:{5}:cid:10") == 0


# -- cursors and deletion --------------------------------------------------------------

def test_cursor_deletes_only_what_every_device_passed(st):
    a = st.device(2, b"a")["dev"]
    b = st.device(2, b"b")["dev"]
    ids = [st.put(1, 2, b"x" * (i + 1))[1] for i in range(3)]
    assert st.quota(2) == (3, 6)
    assert st.cursor(2, a, ids[2]) == [1, 0, 0]
    assert len(st.log(2)) == 3
    assert st.cursor(2, b, ids[1]) == [1, 2, 0]
    assert [e["id"] for e in st.log(2)] == [ids[2]] and st.quota(2) == (1, 3)
    assert st.cursor(2, b, ids[0]) == [1, 0, 0]  # lower: nothing
    assert st.dev(2, b)["cursor"] == ids[1]
    assert st.cursor(2, b, ids[2]) == [1, 1, 0]
    assert st.cmd("EXISTS", "u:{2}:log") == 0
    assert st.cmd("HMGET", "u:{2}", "qn", "qb") == [None, None]
    assert st.cursor(2, 77, ids[2]) == [0, 0, 0]  # unknown device


def test_cursor_closed_and_stale_devices(st):
    a = st.device(2, b"a")["dev"]
    b = st.device(2, b"b")["dev"]
    _, id_, _ = st.put(1, 2)
    st.cursor(2, b, 0)
    assert st.dev(2, b)["conns"] == 1  # a connection each device lookup
    st.cursor(2, b, 0, closed=1)
    assert st.dev(2, b)["conns"] == 0
    st.cursor(2, b, 0, closed=1)
    assert st.dev(2, b)["conns"] == 0  # never below 0
    # b not seen for the ttl and without a connection: no longer holds it
    st.set_dev(2, b, seen=st.now() - 2 * DAY)
    assert st.cursor(2, a, id_, ttl=DAY) == [1, 1, 0]
    # but with a connection it does
    _, id2, _ = st.put(1, 2)
    st.set_dev(2, b, conns=1)
    assert st.cursor(2, a, id2, ttl=DAY) == [1, 0, 0]


def test_cursor_trims_1024_per_call(st):
    d = st.device(2)["dev"]
    for i in range(1500):
        st.c.send("EVALSHA", SCRIPTS["put"][1], 11, "u:{2}:log", "u:{2}", "u:{1}:log",
                  "u:{1}:cid:0", "u:{2}:on", "u:{1}:on", "chat:ids", "chat:alive",
                  "u:{1}:ct", "u:{2}:ct", "cv:{1}:{2}", 1, 2, 0, 1, 0, b"ab", 0, 0, 0, 0,
                  DAY, 0, 0, 0, 0, 0)
    last = [st.c.read_reply() for _ in range(1500)][-1][1]
    assert st.quota(2) == (1500, 3000)
    assert st.cursor(2, d, last) == [1, 1024, 1]
    assert st.quota(2) == (476, 952)
    assert st.cursor(2, d, last) == [1, 476, 0]
    assert st.cmd("EXISTS", "u:{2}:log") == 0 and st.quota(2) == (0, 0)


def test_cursor_own_copies_go_once_every_conv_device_has_them(st):
    default = st.device(1)["dev"]                 # not CONV, lags
    p = st.device(1, b"p", conv=1)["dev"]
    t = st.device(1, b"t", conv=1)["dev"]
    _, own, _ = st.put(1, 3, b"mine", sdev=p, own=1)
    _, inc, _ = st.put(3, 1, b"for 1")
    st.cursor(1, p, own)
    assert st.cursor(1, t, inc) == [1, 1, 0]      # the own copy; not the message to 1
    assert [e["id"] for e in st.log(1)] == [inc]
    assert st.cursor(1, default, inc) == [1, 0, 0]  # p has not got it
    assert st.cursor(1, p, inc) == [1, 1, 0]
    assert st.cmd("EXISTS", "u:{1}:log") == 0


def test_cursor_marks_the_users_groups_dirty(st):
    st.heartbeat(1)
    _, g, _ = st.group(1, actor=2, name=b"g")
    d = st.device(2)["dev"]
    st.cmd("DEL", "chat:gdirty")
    st.cursor(2, d, 0)
    assert st.cmd("SMEMBERS", "chat:gdirty") == []
    st.cursor(2, d, 5)
    assert st.cmd("SMEMBERS", "chat:gdirty") == [str(g).encode()]


def test_del(st):
    _, a, _ = st.put(1, 2, b"aaa")
    _, b, _ = st.put(1, 2, b"bb", own=1)
    assert st.delete(2, a) == 1 and st.quota(2) == (1, 2)
    assert st.delete(2, a) == 0 and st.delete(2, 12345) == 0
    assert st.delete(1, b) == 1 and st.quota(1) == (0, 0)  # an own copy: not charged
    assert st.quota(2) == (1, 2)
    assert st.delete(2, b) == 1
    assert st.cmd("EXISTS", "u:{2}:log") == 0 and st.cmd("EXISTS", "u:{2}") == 0


# -- nodes and presence ---------------------------------------------------------------

def test_heartbeat(st):
    t0 = st.now()
    was, now, exp = st.heartbeat(7, 5000)
    assert was == 0 and t0 <= now and exp == now + 5000
    assert st.cmd("HGET", "chat:alive", 7) == str(exp).encode()
    assert st.heartbeat(7, 5000)[0] == 1
    st.cmd("HSET", "chat:alive", 7, st.now() - 1)
    assert st.heartbeat(7, 5000)[0] == 0


def test_presence_registration_events(st, sub):
    st.heartbeat(1)
    st.heartbeat(2)
    p = sub("chat:presence")
    assert st.online(5, 1) == [1, 1]
    state, user, _ = struct.unpack(">BIq", p.get()[1])
    assert (state, user) == (1, 5)
    assert st.online(5, 2) == [0, 2]
    assert st.online(5, 1, 0) == [0, 1]
    assert p.get(0.3) is None
    assert st.online(5, 2, 0) == [1, 0]
    assert struct.unpack(">BIq", p.get()[1])[:2] == (0, 5)
    assert st.cmd("EXISTS", "u:{5}:on") == 0
    # a dead node's stale entry does not make the user online
    st.cmd("HSET", "chat:alive", 3, st.now() - 1)
    st.cmd("SADD", "u:{6}:on", 3)
    assert st.online(6, 1) == [1, 1]
    assert [struct.unpack(">BIq", m[1])[:2] for m in p.drain()] == [(0, 6), (1, 6)]
    assert st.cmd("SMEMBERS", "u:{6}:on") == [b"1"]


# -- groups ---------------------------------------------------------------------

def test_group_operations_and_codes(st, sub):
    s = sub("chat:groups")
    status, g, snap = st.group(1, actor=1, name=b"team", joined=100, users=[2, 3, 0, 2, 1], maxm=3)
    assert status == 0 and g == 1
    sn = snap_unpack(snap)
    assert sn == dict(version=1, group=1, name=b"team",
                      members=[(1, 1, 100), (2, 0, 100), (3, 0, 100)])
    assert s.get()[1] == snap
    assert st.cmd("SMEMBERS", "u:{3}:g") == [b"1"] and st.cmd("SMEMBERS", "chat:groups:all") == [b"1"]
    assert st.group(1, actor=1, name=b"big", users=[2, 3, 4], maxm=3) == [-13, 0, b""]
    assert st.group(2, g=9, actor=1, name=b"x") == [-10, 9, b""]
    assert st.group(2, g=g, actor=4, name=b"x") == [-11, g, b""]
    assert st.group(2, g=g, actor=2, name=b"x") == [-12, g, b""]
    assert st.group(3, g=g, actor=1, users=[4], maxm=3) == [-13, g, b""]
    assert s.get(0.3) is None  # refusals publish nothing
    status, _, snap = st.group(3, g=g, actor=1, users=[4], joined=200, maxm=4)
    assert snap_unpack(snap)["members"][-1] == (4, 0, 200) and snap_unpack(snap)["version"] == 2
    status, _, snap = st.group(2, g=g, actor=1, name=b"renamed")
    assert snap_unpack(snap)["name"] == b"renamed" and st.cmd("HGET", "g:{1}", "name") == b"renamed"
    # a member removes itself without being an admin
    status, _, snap = st.group(4, g=g, actor=3, users=[3])
    assert status == 0 and [m[0] for m in snap_unpack(snap)["members"]] == [1, 2, 4]
    assert st.cmd("EXISTS", "u:{3}:g") == 0
    assert st.group(4, g=g, actor=2, users=[4]) == [-12, g, b""]
    # removing nobody changes nothing
    assert st.group(4, g=g, actor=1, users=[9]) == [0, g, b""]
    # the last admin leaves: the longest-standing member becomes admin
    status, _, snap = st.group(5, g=g, actor=1)
    assert snap_unpack(snap)["members"] == [(2, 1, 100), (4, 0, 200)]
    s.drain()
    st.gput(2, g, b"m")
    assert st.cmd("EXISTS", "g:{1}:log") == 1
    # the last member leaving deletes the group and its messages
    st.group(5, g=g, actor=4)
    status, _, snap = st.group(5, g=g, actor=2)
    assert snap_unpack(snap) == dict(version=snap_unpack(snap)["version"], group=g, name=b"",
                                     members=[])
    assert snap_unpack(snap)["version"] == 7  # 6 changes, then the deletion
    assert s.drain()[-1][1] == snap
    for k in ("g:{1}", "g:{1}:m", "g:{1}:log", "u:{2}:g"):
        assert st.cmd("EXISTS", k) == 0, k
    assert st.cmd("SMEMBERS", "chat:groups:all") == []
    assert st.group(5, g=g, actor=2) == [-10, g, b""]


def test_group_joined_only_for_was(st):
    _, g, _ = st.group(1, actor=1, name=b"g", joined=10, users=[2])
    st.group(3, g=g, actor=1, users=[3], joined=20)
    status, _, snap = st.group(6, g=g, joined=30, was=20, users=[2, 3])
    assert status == 0
    assert snap_unpack(snap)["members"] == [(1, 1, 10), (2, 0, 10), (3, 0, 30)]
    assert st.cmd("ZSCORE", "g:{1}:m", 3) == b"30"
    assert st.group(6, g=99, joined=1, was=0, users=[1]) == [0, 99, b""]


def test_gput(st, sub):
    live(st, 1)
    live(st, 2)
    st.cmd("HSET", "chat:alive", 3, st.now() - 1)
    s1, s2, s3 = sub("chat:node:1"), sub("chat:node:2"), sub("chat:node:3")
    _, g, _ = st.group(1, actor=1, name=b"g", users=[2])
    assert st.gput(5, g) == [-11, 0, 0]
    assert st.gput(1, 77) == [-10, 0, 0]
    status, id_, how = st.gput(2, g, b"hello", sdev=3, cid=41)
    assert (status, how) == (0, 0)
    (raw,) = st.cmd("ZRANGE", f"g:{{{g}}}:log", 0, -1)
    e = unentry(raw)
    assert (e["id"], e["sender"], e["receiver"], e["group"], e["sdev"], e["body"]) == \
        (id_, 2, 0, g, 3, b"hello")
    msg = b"\x03" + struct.pack(">I", g) + raw
    assert s1.drain() == [("chat:node:1", msg)] and s2.drain() == [("chat:node:2", msg)]
    assert s3.get(0.3) is None
    assert st.cmd("SMEMBERS", "chat:gdirty") == [str(g).encode()]
    assert st.gput(2, g, b"again", sdev=3, cid=41) == [0, id_, 1]
    assert st.cmd("ZCARD", f"g:{{{g}}}:log") == 1
    assert st.gput(2, g, b"hello", sdev=3, again=id_, again_ts=e["ts"]) == [0, id_, 2]
    assert st.quota(0) == (0, 0) and st.quota(2) == (0, 0)


# -- signals ----------------------------------------------------------------------

def test_read_marks_keep_the_highest(st):
    assert st.read_mark(1, peer=2, upto=50, ts=1000) == 1
    assert st.read_mark(1, peer=2, upto=40, ts=2000) == 0
    assert st.read_mark(1, peer=2, upto=50, ts=3000) == 0
    assert st.read_mark(1, group=7, upto=9, ts=5) == 1
    assert st.cmd("HGETALL", "u:{1}:rd") == [b"u2", b"50:1000", b"g7", b"9:5"]
    with pytest.raises(RespError):
        st.read_mark(1, peer=2, group=7, upto=1)
    d = st.device(2)["dev"]
    st.cursor(2, d, 70)
    st.device(2, b"x")
    st.read_mark(2, peer=1, upto=60, ts=7)
    # with peer 2: (2, "u1") then (1, "u2")
    assert st.marks([(2, "u1"), (1, "u2")]) == [(70, 60, 7), (0, 50, 1000)]
    assert st.marks([(1, "g7"), (3, "g7")]) == [(0, 9, 5), (0, 0, 0)]


def test_presence_permission_and_last_seen(st):
    t0 = st.now()
    st.device(2)
    st.device(2, b"b")
    st.put(1, 3, contacts=1)
    _, g, _ = st.group(1, actor=1, name=b"g", users=[4])
    res = st.presence(1, [1, 2, 3, 4, 5])
    assert [a for a, _, _ in res] == [1, 0, 1, 1, 0]
    assert res[1][1] >= t0 and res[2][1] == 0
    assert [a for a, _, _ in st.presence(1, [2, 5], check=0)] == [1, 1]
    # online: a live node holds a connection; a dead node's entry does not count
    assert [o for _, _, o in res] == [0, 0, 0, 0, 0]
    st.heartbeat(7)
    st.online(2, 7)
    st.cmd("HSET", "chat:alive", 8, st.now() - 1)
    st.cmd("SADD", "u:{3}:on", 8)
    assert [o for _, _, o in st.presence(1, [2, 3], check=0)] == [1, 0]


def test_history_pages(st):
    ids = [st.put(1, 2, b"%d" % i, history=1)[1] for i in range(5)]
    st.put(2, 1, b"back", history=1)
    more, rows = st.history("cv:{1}:{2}", rows=3)
    assert more == 1 and [r["body"] for r in rows] == [b"back", b"4", b"3"]
    more, rows = st.history("cv:{1}:{2}", before=ids[3], rows=3)
    assert more == 0 and [r["id"] for r in rows] == [ids[2], ids[1], ids[0]]
    assert st.history("cv:{1}:{2}", min_id=ids[3], before=ids[4]) == (0, [])
    assert st.history("cv:{1}:{2}", hist=0) == (0, [])
    more, rows = st.history("cv:{1}:{2}", nbytes=1)
    assert more == 1 and len(rows) == 1
    old_ts = st.now() - 2 * DAY
    old_id = (old_ts - EPOCH_MS) * 1000
    st.cmd("ZADD", "cv:{1}:{2}", old_id, entry(old_id, 1, 2, 0, 1, 0, old_ts, b"old"))
    assert len(st.history("cv:{1}:{2}", hist=DAY)[1]) == 6
    assert len(st.history("cv:{1}:{2}", hist=3 * DAY)[1]) == 7


# -- janitor ------------------------------------------------------------------------

def run_pass(st, **kw):
    """Slices until a pass over the keys ended and nothing is left."""
    total = [0, 0, 0, 0, 0]
    for _ in range(100):
        r = st.janitor(**kw)
        total = [t + x for t, x in zip(total, r[2:7])]
        if r[0] == b"0" and r[6] == 0:
            return total
    raise AssertionError("the janitor did not finish")


def test_janitor_ttl_purges(st):
    old_ts = st.now() - 2 * DAY
    old_id = (old_ts - EPOCH_MS) * 1000
    st.cmd("ZADD", "u:{2}:log", old_id, entry(old_id, 1, 2, 0, 1, 0, old_ts, b"old!"))
    st.cmd("HSET", "u:{2}", "qn", 1, "qb", 4)
    st.cmd("ZADD", "g:{3}:log", old_id, entry(old_id, 1, 0, 3, 1, 0, old_ts, b"g"))
    st.cmd("ZADD", "cv:{1}:{2}", old_id, entry(old_id, 1, 2, 0, 1, 0, old_ts, b"h"))
    _, new, _ = st.put(1, 2, b"new", history=1)
    assert run_pass(st, ttl=DAY, hist=DAY)[0] == 3
    assert [e["id"] for e in st.log(2)] == [new] and st.quota(2) == (1, 3)
    assert st.cmd("EXISTS", "g:{3}:log") == 0
    assert st.cmd("ZCARD", "cv:{1}:{2}") == 1
    # history turned off: its sets go
    assert run_pass(st)[0] == 1 and st.cmd("EXISTS", "cv:{1}:{2}") == 0


def test_janitor_forgets_devices_and_dead_nodes(st, sub):
    live(st, 1, 2)
    a = st.device(2, b"a")["dev"]
    b = st.device(2, b"b")["dev"]
    _, id_, _ = st.put(1, 2, b"x")
    st.cursor(2, a, id_)
    st.cmd("HSET", "chat:alive", 9, st.now() - 1)   # node 9 died holding 2 and 4
    st.cmd("SADD", "u:{2}:on", 9)
    st.cmd("SADD", "u:{4}:on", 9)
    st.set_dev(2, b, seen=st.now() - 2 * DAY)       # conns 1: a dead node's
    p = sub("chat:presence")
    n = sub("chat:node:1")
    assert run_pass(st, dttl=DAY)[1:3] == [0, 2]    # u:{2} kept (online), 2 dead entries
    assert [struct.unpack(">BIq", m[1])[:2] for m in p.drain()] == [(0, 4)]
    assert len(st.log(2)) == 1
    st.online(2, 1, 0)                              # 2 offline: b's count is stale
    purged, forgotten, _, _, _ = run_pass(st, dttl=DAY)
    assert (purged, forgotten) == (1, 1)
    assert st.cmd("HGET", "u:{2}", f"d:{b}") is None and st.cmd("HGET", "u:{2}", "n:b") is None
    assert st.dev(2, a)["conns"] == 0
    assert st.cmd("EXISTS", "u:{2}:log") == 0 and st.quota(2) == (0, 0)
    assert n.get(0.3) is None  # no live node holds 2 any more


def test_janitor_group_floors(st):
    st.heartbeat(1)
    pre = st.put(8, 9, b"")[1]
    _, g, _ = st.group(1, actor=1, name=b"g", joined=pre, users=[2, 3])
    d1 = st.device(1)["dev"]
    d2 = st.device(2)["dev"]
    ids = [st.gput(1, g, b"%d" % i)[1] for i in range(3)]
    st.cursor(1, d1, ids[2])
    st.cursor(2, d2, ids[2])
    # member 3 has no device: held back from its joining
    assert run_pass(st)[3] == 0 and st.cmd("ZCARD", "g:{1}:log") == 3
    d3 = st.device(3)["dev"]
    st.cursor(3, d3, ids[1])
    assert run_pass(st)[3] == 2
    assert [unentry(e)["id"] for e in st.cmd("ZRANGE", "g:{1}:log", 0, -1)] == [ids[2]]
    # with history: only what is older than it
    st.cursor(3, d3, ids[2])
    assert run_pass(st, hist=DAY)[3] == 0 and st.cmd("ZCARD", "g:{1}:log") == 1
    st.cmd("SADD", "chat:gdirty", g)
    assert run_pass(st)[3] == 1 and st.cmd("EXISTS", "g:{1}:log") == 0


def test_janitor_scan_cursor_lives_in_redis(st):
    for u in range(1, 301):
        st.cmd("SADD", f"u:{{{u}}}:on", 5)
    st.cmd("HSET", "chat:alive", 5, st.now() - 1)
    r = st.janitor(count=10)
    assert r[0] != b"0" and st.cmd("GET", "chat:janitor:scan") == r[0]
    assert run_pass(st, count=50)[2] + r[4] == 300
    assert st.cmd("KEYS", "u:*") == []


# -- persistence -------------------------------------------------------------------

def test_acknowledged_puts_survive_sigkill(redis_path, tmp_path):
    """appendfsync always: a put whose reply came is in Redis after a
    SIGKILL and a restart on the same directory and port."""
    srv = RedisServer(tmp_path / "r", redis_path)
    try:
        c = srv.client()
        for text, _, _ in SCRIPTS.values():
            c.cmd("SCRIPT", "LOAD", text)
        ids = [Store(c).put(1, 2, b"%d" % i)[1] for i in range(20)]
        c.close()
        srv.kill()
        srv.restart()
        c = srv.client()
        st = Store(c)
        with pytest.raises(RespError) as e:  # the script cache is gone
            st.put(1, 2)
        assert e.value.text.startswith("NOSCRIPT")
        assert [e["id"] for e in st.log(2)] == ids and st.quota(2) == (20, sum(len(b"%d" % i) for i in range(20)))
        c.close()
    finally:
        srv.terminate()


def test_group_joined_zero_is_the_last_id(st):
    # The cluster's nodes give no ids: joined 0 on CREATE and ADD means
    # "every message accepted after this change" (the last id given).
    st.put(7, 8, b"before")
    last = int(st.cmd("GET", "chat:ids"))
    _, g, snap = st.group(1, actor=1, name=b"z", users=[2])
    assert snap_unpack(snap)["members"] == [(1, 1, last), (2, 0, last)]
    st.put(7, 8, b"between")
    now = int(st.cmd("GET", "chat:ids"))
    assert now > last
    _, _, snap = st.group(3, g=g, actor=1, users=[3])
    assert snap_unpack(snap)["members"][-1] == (3, 0, now)
    # an explicit joined is kept as given
    _, _, snap = st.group(3, g=g, actor=1, users=[4], joined=5)
    assert snap_unpack(snap)["members"][-1] == (4, 0, 5)


def test_relay_reaches_the_users_other_live_nodes_only(st, sub):
    st.heartbeat(1)
    st.heartbeat(2)
    st.online(9, 1)
    st.online(9, 2)
    st.cmd("HSET", "chat:alive", 3, st.now() - 1)  # node 3: dead
    st.cmd("SADD", "u:{9}:on", 3)
    n1, n2, n3 = sub("chat:node:1"), sub("chat:node:2"), sub("chat:node:3")
    n = st.run("relay", ["u:{9}:on", "chat:alive"], [9, 1, 4, 0x8D, b"\x00body"])
    assert n == 1
    assert n2.get()[1] == struct.pack(">BIIB", 4, 9, 4, 0x8D) + b"\x00body"
    assert n1.get(0.3) is None  # the origin told its own
    assert n3.get(0.1) is None  # dead: skipped, and removed
    assert sorted(st.cmd("SMEMBERS", "u:{9}:on")) == [b"1", b"2"]
    with pytest.raises(RespError):
        st.run("relay", ["u:{9}:on", "chat:alive"], [0, 1, 4, 0x8D, b""])


# -- account (chat-server user --cluster) -------------------------------------------

H1 = b"$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2g"
H2 = H1[:-4] + b"AAAA"


def test_account_add_passwd_del(st):
    st.cmd("HSET", "u:{7}", "qn", 1)             # the user has other fields
    assert st.account(7, 1, H1) == 1              # add
    assert st.cmd("HGET", "u:{7}", "pw") == H1
    assert st.cmd("SMEMBERS", "chat:accounts") == [b"7"]
    assert st.account(7, 1, H2) == 0              # add again: refused
    assert st.cmd("HGET", "u:{7}", "pw") == H1
    assert st.account(8, 2, H2) == 0              # passwd without an account
    assert st.cmd("EXISTS", "u:{8}") == 0
    assert st.account(7, 2, H2) == 1              # passwd
    assert st.cmd("HGET", "u:{7}", "pw") == H2
    assert st.account(7, 3) == 1                  # del: pw and the member
    assert st.cmd("HGET", "u:{7}", "pw") is None
    assert st.cmd("SMEMBERS", "chat:accounts") == []
    assert st.cmd("HGET", "u:{7}", "qn") == b"1"  # the rest stays
    assert st.account(7, 3) == 0                  # del again: refused


def test_account_bad_arguments_write_nothing(st):
    for u, op, h in ((0, 1, H1), (7, 0, H1), (7, 4, H1), (7, 1, b""),
                     (7, 1, b"plain password"), (7, 2, b"$argon2" + b"x" * 121),
                     (7, 3, H1)):
        with pytest.raises(RespError) as e:
            st.account(u, op, h)
        assert e.value.text.startswith("CHATARG "), e.value.text
    assert st.cmd("DBSIZE") == 0
