"""More of the cluster, black-box (issue 15; docs/OPERATIONS.md "A cluster:
several nodes on Redis", docs/CLUSTER.md 6.4 and 6.5), beside
test_cluster.py:

- nodes on a Redis over TLS that wants a password (rediss://,
  --cluster-tls-ca, --cluster-password-file) chat both ways with ACKs; a
  wrong CA, a wrong TLS name or a wrong password stops a node at start
  with one sentence naming the address and what failed;
- presence across a Redis outage (SIGSTOP: a frozen Redis, to test the
  deadlines; SIGKILL and a restart: refused connects): a PRESENCE request
  gets ERROR STORE while Redis is down, never the node's stale view; a
  change made meanwhile (the watched user left) reaches the watcher once
  Redis is back, even when the watcher's node comes back after the change
  was published; /healthz says the store is down, then up;
- sends while Redis is frozen: ERROR STORE and no ACK (the kill case is
  test_cluster.py's), the fast path between two users on one node still
  goes across it, and a resend with the same client ids after Redis is
  back is acknowledged and delivered once.

Every test starts its own redis-server (redisfix.py) on a free loopback
port."""

import itertools
import re
import signal
import subprocess
import time

import pytest

import tls_certs
from conftest import Server, require_binary
from convproto import device, payload, plain
from proto import STORE as E_STORE
from proto import TEXT
from redisfix import RedisServer, RedisTLS, redis_path  # noqa: F401 (a fixture)
from sigproto import Presence, sig_device
from test_cluster import redis  # noqa: F401 (a fixture: a plain Redis)
from test_metrics import parse, scrape, value
from wsproto import get

PASSWORD = "tls and a password"
BACK = re.compile(r"cluster: redis \S+ is back after")
DOWN = "refusing sends until it is back"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return tls_certs.make(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def tls_redis(redis_path, tmp_path, certs):  # noqa: F811
    """Redis on a TLS port only (no plain TCP), with a password."""
    r = RedisServer(tmp_path / "tls-redis", redis_path,
                    extra=("--requirepass", PASSWORD),
                    tls=RedisTLS(certs["server"], certs["server-key"],
                                 certs["ca"]))
    yield r
    r.terminate()


@pytest.fixture
def node(request, tmp_path, redis):  # noqa: F811 (a fixture)
    """Factory: node(*extra_args, cluster=None) -> a Server on --cluster
    `cluster` (default: redis:// on the test's `redis`). Each is stopped at
    teardown (pytest runs every finalizer, even after one failed)."""
    n = itertools.count()

    def stop(s):
        if s.alive():
            s.proc.send_signal(signal.SIGCONT)  # (a test that froze it failed)
        s.teardown()

    def start(*args, cluster=None):
        url = cluster or ["--cluster", f"redis://127.0.0.1:{redis.port}"]
        s = Server(tmp_path / f"node{next(n)}", [*url, *args])
        request.addfinalizer(lambda: stop(s))
        return s

    return start


def bodies(frames):
    return [payload(f) for f in frames]


def wait_for(what, cond, timeout=20.0):
    """Poll cond() until it is true; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout} s")
        time.sleep(0.02)


# -- TLS and a password ------------------------------------------------------------

_pwfiles = itertools.count()


def tls_cluster(r, ca, tmp_path, password=PASSWORD, name=None):
    """The settings of a node on r (a tls_redis): CA file ca, the password
    in a file, --cluster-tls-name if given."""
    pw = tmp_path / f"redis-{next(_pwfiles)}.pw"
    pw.write_text(password + "\n")
    return ["--cluster", f"rediss://127.0.0.1:{r.port}", "--cluster-tls-ca",
            ca, "--cluster-password-file", str(pw),
            *(["--cluster-tls-name", name] if name else [])]


def test_two_nodes_on_redis_over_tls_with_a_password_chat_both_ways(
        node, tls_redis, certs, tmp_path):
    url = tls_cluster(tls_redis, certs["ca"], tmp_path)
    n1, n2 = node(cluster=url), node(cluster=url)
    for n in (n1, n2):  # (what --cluster-tls-ca and the password gave)
        n.wait_for_log("acknowledgements granted")
    a, b = plain(n1, 1), plain(n2, 2)
    for i in range(10):
        a.send_data(2, TEXT, b"a->b %d" % i)
        b.send_data(1, TEXT, b"b->a %d" % i)
    a.acked()
    b.acked()
    assert bodies(b.read_bare(10)) == [b"a->b %d" % i for i in range(10)]
    assert bodies(a.read_bare(10)) == [b"b->a %d" % i for i in range(10)]
    # the nodes' connections are the TLS port's (Redis has no other) and
    # authenticated: Redis counts them beside this test's own
    info = tls_redis.client().cmd("INFO", "clients").decode()
    assert int(re.search(r"connected_clients:(\d+)", info).group(1)) >= 5


def refused_at_start(args, tmp_path):
    """chat-server with args: it must stop at start; its stderr."""
    p = subprocess.run([require_binary(), "--port", "0", "--data-dir",
                        str(tmp_path / "refused"), *args],
                       capture_output=True, timeout=60)
    assert p.returncode != 0, p.stderr
    return p.stderr.decode()


def test_a_wrong_ca_name_or_password_stops_the_node_with_a_sentence(
        tls_redis, certs, tmp_path):
    where = f"127.0.0.1:{tls_redis.port}"
    # (at once, naming the setting to fix: waiting, as for a Redis that is
    # not up yet, cannot make a certificate trusted)
    err = refused_at_start(tls_cluster(tls_redis, certs["evil-ca"], tmp_path),
                           tmp_path)
    assert where in err and "certificate verify failed" in err, err
    assert "check --cluster-tls-ca" in err, err
    err = refused_at_start(tls_cluster(tls_redis, certs["ca"], tmp_path,
                                       name="elsewhere.example"), tmp_path)
    assert where in err and "certificate verify failed" in err, err
    assert "mismatch" in err and "--cluster-tls-name" in err, err
    err = refused_at_start(tls_cluster(tls_redis, certs["ca"], tmp_path,
                                       "wrong"), tmp_path)
    assert where in err and "password" in err and "WRONGPASS" in err, err


# -- presence across a Redis outage -----------------------------------------------

def outage_begins(redis, how):  # noqa: F811
    (redis.stop if how == "stop" else redis.kill)()


def outage_ends(redis, how):  # noqa: F811
    (redis.cont if how == "stop" else redis.restart)()


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_a_node_without_redis_never_serves_stale_presence(node, redis, how):  # noqa: F811
    n1, n2 = node("--http-port", "auto"), node()
    a = sig_device(n1, 1)
    a.subscribe(2)
    assert a.next_signal(Presence) == Presence(2, 0, 0)
    b = sig_device(n2, 2)
    assert a.next_signal(Presence) == Presence(2, 1, 0)
    assert get(n1, "/healthz").status == 200
    outage_begins(redis, how)
    if how == "stop":
        # asked before the node noticed (Redis frozen, its connections
        # open): the answer waits for Redis, then the command deadline
        # says ERROR STORE; never "online" from what the node saw last
        a.subscribe(2)
        e = a.expect_error_ref(E_STORE, 0)
        # (a read failed: not the words of a failed write)
        assert "presence not subscribed: the store could not be read" in e.reason, e
    for n in (n1, n2):
        n.wait_for_log(DOWN, timeout=15)
    # (and node 1's feed: what is published from now on cannot reach it)
    n1.wait_for_log("the feed from redis is down", timeout=15)
    r = get(n1, "/healthz")
    assert r.status == 503 and b'"status":"unavailable"' in r.body, r
    a.subscribe(2)  # the node knows now: refused at once
    e = a.expect_error_ref(E_STORE, 0)
    assert "presence not subscribed: the store could not be read" in e.reason, e
    assert a.sync_signals() == [], "a state while Redis is down"
    # 2 leaves while Redis is down; node 1 comes back only after node 2
    # told Redis (and published it, to nobody on node 1): what node 1's
    # watchers were told before the outage is stale then
    b.close()
    n1.proc.send_signal(signal.SIGSTOP)
    try:
        outage_ends(redis, how)
        rc = redis.client()
        wait_for("node 2 takes user 2 out of Redis",
                 lambda: rc.cmd("SCARD", "u:{2}:on") == 0)
    finally:
        n1.proc.send_signal(signal.SIGCONT)
    n1.wait_for_log(BACK, timeout=20)
    p = a.next_signal(Presence, timeout=20)
    assert (p.user, p.state) == (2, 0), p
    assert p.last_seen > 0, p
    assert get(n1, "/healthz").status == 200
    # a SUBSCRIBE now says the same, from Redis (the state may come twice
    # meanwhile: node 1 may learn it both by its feed and by asking again)
    a.subscribe(2)
    p = a.next_signal(Presence)
    assert (p.user, p.state) == (2, 0) and p.last_seen > 0, p
    # and a change from now on comes as before the outage
    sig_device(n2, 2, "laptop")
    while (p := a.next_signal(Presence)).state == 0:
        assert p.user == 2, p
    assert p == Presence(2, 1, 0), p


# -- sends while Redis is frozen ---------------------------------------------------

def live_tcp(n):
    """Connections LIVE on node n (its /metrics)."""
    return value(parse(scrape(n)), "chat_connections", transport="tcp",
                 state="live")


def test_redis_frozen_refuses_sends_not_the_fast_path(node, redis):  # noqa: F811
    n1, n2 = node("--http-port", "auto"), node()
    a, b = device(n1, 1, "desk"), device(n2, 2, "phone")
    c, d = plain(n1, 3, flags=0), plain(n1, 4, flags=0)  # no ACKS, no CONV
    a.post(2, TEXT, b"before", cid=1)
    a.acked()
    assert b.read_msg().payload == b"before"
    b.ack()
    # (the fast path is for a receiver LIVE on the node: past its first
    # fetch, which needs Redis)
    wait_for("a, c and d LIVE on node 1", lambda: live_tcp(n1) == 3)
    redis.stop()
    a.post(2, TEXT, b"while frozen", cid=2)
    # the fast path needs no Redis: across node 1 at once, while the put
    # above waits for Redis
    c.send_data(4, TEXT, b"fast while frozen")
    assert payload(d.next_delivery()) == b"fast while frozen"
    # the put: ERROR STORE at the command deadline, never an ACK
    e = a.expect_error(E_STORE)
    assert e.ref == 2 and a.ack_count < 2, (e, a.ack_count)  # (before it)
    n1.wait_for_log(DOWN, timeout=10)
    a.post(2, TEXT, b"while down", cid=3)  # the node knows: refused at once
    e = a.expect_error(E_STORE)
    assert e.ref == 3 and a.ack_count < 3, (e, a.ack_count)
    c.send_data(4, TEXT, b"fast while down")
    assert payload(d.next_delivery()) == b"fast while down"
    redis.cont()
    n1.wait_for_log(BACK, timeout=20)  # (node 2 may not have noticed at all)
    # the client resends what was refused, with the same client ids: both
    # acknowledged, each delivered once (the frozen one may have been
    # stored when Redis read it after all: its resend is recognised)
    a.post(2, TEXT, b"while frozen", cid=2)
    a.post(2, TEXT, b"while down", cid=3)
    a.post(2, TEXT, b"after", cid=4)
    a.acked()
    got = [m.payload for m in b.read_msgs(3, timeout=20)]
    assert got == [b"while frozen", b"while down", b"after"], got
    b.ack_sync()
    c.send_data(4, TEXT, b"fast after")
    assert payload(d.next_delivery()) == b"fast after"
