"""--cluster-wait N (docs/CLUSTER.md 4.4, issue 15): a node acknowledges a
send only once N Redis replicas have it. A primary and a replica
(redis-server --replicaof) are started by each test; "the replica is
behind" is a replica frozen with SIGSTOP (the primary still counts it as
connected, so WAIT gets no answer from it), "caught up" is SIGCONT plus the
test's own WAIT 1 on the primary."""

import re
import subprocess
import time

import pytest

from conftest import Server, require_binary, teardown_all
from convproto import plain
from proto import STORE as E_STORE
from proto import TEXT, parse_error, ERROR
from redisfix import RedisServer, Resp, redis_path  # noqa: F401 (a fixture)
from sigproto import Posted, sig_device
from test_metrics import parse, scrape


def replica_link_up(replica, timeout=15.0):
    """Wait until the replica says its link to the primary is up."""
    deadline = time.monotonic() + timeout
    info = ""
    while time.monotonic() < deadline:
        c = Resp(replica.port)
        try:
            info = c.cmd("INFO", "replication").decode()
        finally:
            c.close()
        if "master_link_status:up" in info:
            return
        time.sleep(0.05)
    pytest.fail(f"the replica never linked to its primary:\n{info}")


@pytest.fixture
def pair(redis_path, tmp_path):  # noqa: F811 (the fixture above)
    """(primary, replica): two redis-servers with the cluster's persistence,
    the replica linked."""
    primary = RedisServer(tmp_path / "primary", redis_path)
    replica = RedisServer(tmp_path / "replica", redis_path,
                          extra=("--replicaof", "127.0.0.1", str(primary.port)))
    replica_link_up(replica)
    yield primary, replica
    replica.cont()  # (harmless when it is running)
    replica.terminate()
    primary.terminate()


@pytest.fixture
def waiting_node(tmp_path, pair):
    started = []

    def start(*args):
        primary, _ = pair
        s = Server(tmp_path / f"node{len(started)}",
                   ["--cluster", f"redis://127.0.0.1:{primary.port}",
                    "--http-port", "auto", *args])
        started.append(s)
        return s

    yield start
    teardown_all(started)


def waits(srv):
    m = parse(scrape(srv))
    return {r: m.get(("chat_store_replica_waits_total",
                      frozenset({("result", r)})), 0)
            for r in ("ok", "short")}


def test_acknowledged_only_once_the_replica_has_it(pair, waiting_node):
    primary, replica = pair
    n = waiting_node("--cluster-wait", "1")
    a, b = sig_device(n, 1, "a"), sig_device(n, 2, "b")
    for i in range(20):
        a.post(2, TEXT, b"w%d" % i, cid=i + 1)
    a.acked()
    posted = [a.next_signal(Posted) for _ in range(20)]
    assert [p.cid for p in posted] == list(range(1, 21))
    # acknowledged => on the replica already (no waiting for it here: the
    # ACK is the promise)
    c = Resp(replica.port)
    try:
        assert c.cmd("ZCARD", "u:{2}:log") == 20
    finally:
        c.close()
    got = b.read_msgs(20)
    assert [m.payload for m in got] == [b"w%d" % i for i in range(20)]
    assert [m.id for m in got] == [p.id for p in posted]
    w = waits(n)
    assert w["ok"] >= 1 and w["short"] == 0, w
    # Redis forgets the scripts: the next puts are answered NOSCRIPT,
    # reloaded and sent again after the WAIT that followed them; a later
    # WAIT vouches for them, and they are acknowledged as before
    c = Resp(primary.port)
    try:
        c.cmd("SCRIPT", "FLUSH")
    finally:
        c.close()
    for i in range(20, 30):
        a.post(2, TEXT, b"w%d" % i, cid=i + 1)
    a.acked()
    got = b.read_msgs(10)
    assert [m.payload for m in got] == [b"w%d" % i for i in range(20, 30)]
    c = Resp(replica.port)
    try:
        assert c.cmd("ZCARD", "u:{2}:log") == 30
    finally:
        c.close()
    assert waits(n)["short"] == 0


def test_a_replica_behind_refuses_the_ack_and_a_resend_is_acknowledged(pair, waiting_node):
    primary, replica = pair
    n = waiting_node("--cluster-wait", "1", "--cluster-wait-timeout", "300ms")
    a, b = sig_device(n, 1, "a"), sig_device(n, 2, "b")
    a.post(2, TEXT, b"before", cid=1)
    a.acked()
    assert b.read_msg().payload == b"before"
    a.sync_signals()  # (its POSTED)
    replica.stop()  # frozen: connected, never acknowledging
    a.post(2, TEXT, b"while behind", cid=2)
    errors = a.wait_acked()
    assert [e.code for e in errors] == [E_STORE], errors
    assert errors[0].ref == 2 and "cluster-wait" in errors[0].reason, errors
    n.wait_for_log("acknowledgements after 1 replica(s) too, within 300 ms")
    n.wait_for_log("cluster: WAIT 1 300 got 0 replicas")
    # stored on the primary (it may be delivered: at least once)
    held = b.read_msg()
    assert held.payload == b"while behind"
    assert [p for p in a.sync_signals() if isinstance(p, Posted)] == []
    assert waits(n)["short"] >= 1
    # the replica catches up; the resend of cid 2 is deduplicated and now
    # acknowledged, with the first one's id
    replica.cont()
    c = Resp(primary.port)
    try:
        assert c.cmd("WAIT", 1, 10000) == 1
    finally:
        c.close()
    a.post(2, TEXT, b"while behind", cid=2)
    a.acked()
    posted = [p for p in a.sync_signals() if isinstance(p, Posted)]
    assert posted == [Posted(2, held.id)], posted
    # no second copy: the next message is the next thing b gets
    a.post(2, TEXT, b"after", cid=3)
    a.acked()
    assert b.read_msg().payload == b"after"


def test_no_replica_at_all_refuses_every_send_with_a_reason(pair, waiting_node):
    primary, replica = pair
    replica.terminate()
    n = waiting_node("--cluster-wait", "1", "--cluster-wait-timeout", "50ms")
    a = plain(n, 1)
    for i in range(5):
        a.send_data(2, TEXT, b"x%d" % i)
    f = a.read_frame(timeout=10)
    while f.type != ERROR:
        f = a.read_frame(timeout=10)
    e = parse_error(f.body)
    assert e.code == E_STORE and "replicas" in e.reason, e
    # the node stays up and its heartbeat gets through the WAITs
    n.wait_for_log("cluster: WAIT 1 50 got 0 replicas")
    assert n.alive()


def test_cluster_wait_settings_are_checked():
    cases = [
        (["--cluster-wait", "1"], "needs --cluster"),
        (["--cluster", "redis://127.0.0.1:1", "--cluster-wait-timeout", "2s"],
         "needs --cluster-wait"),
        (["--cluster", "redis://127.0.0.1:1", "--cluster-wait", "1",
          "--cluster-wait-timeout", "5s"], "cluster-wait-timeout"),
        (["--cluster", "redis://127.0.0.1:1", "--cluster-wait", "17"],
         "cluster-wait"),
    ]
    for args, says in cases:
        p = subprocess.run([require_binary(), *args], capture_output=True,
                           timeout=10)
        assert p.returncode == 2 and says in p.stderr.decode(), (args, p.stderr)
