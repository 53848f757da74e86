"""Several chat-server nodes on one Redis (--cluster; docs/CLUSTER.md,
issue 15): users on different nodes chat both ways, a user's devices on
two nodes get everything, groups span nodes, large bodies from a node's
feed reach every connection whole, messages stored through one node are
fetched through another, a node that loses Redis refuses what it
cannot store (ERROR, never an ACK) and recovers, a node SIGKILLed loses
nothing acknowledged, accounts made with `chat-server user --cluster`
log in on every node.

Each test starts its own redis-server (tests/integration/redisfix.py) on a
free loopback port, with the persistence the cluster requires, and nodes
with --cluster redis://127.0.0.1:PORT."""

import itertools
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import Server, require_binary, teardown_all
from test_security import expect_error_then_eof
from convproto import connect, device, group_device, payload, plain
from proto import (ACKS_FLAG, AUTH, ERROR, TEXT, WELCOME, parse_error,
                   parse_welcome, read_data, wait_for_ack)
from redisfix import RedisServer, redis_path  # noqa: F401 (a fixture)
from sigproto import make_contacts, DELIVERED, E_DENIED, Presence, Rcpt, Typing, sig_device
from wsproto import WSClient

from proto import STORE as E_STORE  # noqa: E402 (ERROR code STORE)


@pytest.fixture
def redis(redis_path, tmp_path):  # noqa: F811 (the fixture above)
    r = RedisServer(tmp_path / "redis", redis_path)
    yield r
    r.terminate()


@pytest.fixture
def node(tmp_path, redis):
    """Factory: node(*extra_args, redis=None) -> a Server with --cluster on
    `redis` (default: the test's). All are stopped at teardown."""
    started = []
    n = itertools.count()

    def start(*args, redis=redis):
        s = Server(tmp_path / f"node{next(n)}",
                   ["--cluster", f"redis://127.0.0.1:{redis.port}", *args])
        started.append(s)
        return s

    yield start
    teardown_all(started)


def bodies(frames):
    return [payload(f) for f in frames]


# -- chatting across nodes -----------------------------------------------------

def test_users_on_two_nodes_chat_both_ways(node):
    n1, n2 = node(), node()
    a, b = plain(n1, 1, flags=0), plain(n2, 2, flags=0)
    for i in range(20):
        a.send_data(2, TEXT, b"a->b %d" % i)
        b.send_data(1, TEXT, b"b->a %d" % i)
    assert bodies(b.read_bare(20)) == [b"a->b %d" % i for i in range(20)]
    assert bodies(a.read_bare(20)) == [b"b->a %d" % i for i in range(20)]


def test_acknowledged_sends_across_nodes_arrive_in_order(node):
    n1, n2 = node(), node()
    a, b = plain(n1, 1), plain(n2, 2)
    for i in range(200):
        a.send_data(2, TEXT, b"m%d" % i)
    r = wait_for_ack(a, 200)
    assert r.errors == []
    got = bodies(b.read_bare(200))
    assert got == [b"m%d" % i for i in range(200)]
    b.ack()


def test_several_command_connections_keep_each_senders_order(node):
    # --cluster-connections 3: senders 1..6 spread over three connections
    # per node (S % 3); each one's messages arrive in its order, all ACKed
    n1, n2 = node("--cluster-connections", "3"), node("--cluster-connections", "3")
    senders = {u: plain(n1, u) for u in range(1, 7)}
    b = plain(n2, 9)
    for i in range(40):
        for u, c in senders.items():
            c.send_data(9, TEXT, b"s%d-%d" % (u, i))
    for c in senders.values():
        assert wait_for_ack(c, 40).errors == []
    got = bodies(b.read_bare(240))
    for u in senders:
        mine = [g for g in got if g.startswith(b"s%d-" % u)]
        assert mine == [b"s%d-%d" % (u, i) for i in range(40)], u
    b.ack()


def test_a_websocket_user_and_a_tcp_user_on_two_nodes(node):
    n1, n2 = node(), node("--http-port", "auto")
    tcp = plain(n1, 1)
    ws = WSClient(n2)
    ws.hello(2, ACKS_FLAG)
    tcp.send_data(2, TEXT, b"tcp -> ws")
    assert wait_for_ack(tcp, 1).errors == []
    f = ws.read_frame()
    assert (f.sender, f.type, f.body) == (1, TEXT, b"tcp -> ws")
    ws.send_frame(2, 1, TEXT, b"ws -> tcp")
    assert bodies(tcp.read_bare(1)) == [b"ws -> tcp"]


def test_users_on_one_node_still_chat(node):
    n1, _ = node(), node()
    a, b = plain(n1, 1, flags=0), plain(n1, 2, flags=0)
    a.send_data(2, TEXT, b"same node")
    assert bodies(b.read_bare(1)) == [b"same node"]


def test_stored_through_one_node_fetched_through_another(node):
    n1, n2 = node(), node()
    a = plain(n1, 1)
    for i in range(30):
        a.send_data(3, TEXT, b"offline %d" % i)
    assert wait_for_ack(a, 30).errors == []
    c = plain(n2, 3)
    assert bodies(c.read_bare(30)) == [b"offline %d" % i for i in range(30)]
    c.ack()


def test_a_user_with_devices_on_two_nodes_gets_everything_on_both(node):
    n1, n2 = node(), node()
    phone, laptop = device(n1, 5, "phone"), device(n2, 5, "laptop")
    sender = device(n1, 6, "desk")
    for i in range(10):
        sender.post(5, TEXT, b"to 5: %d" % i, cid=i + 1)
    sender.wait_acked()
    p, l = phone.read_msgs(10), laptop.read_msgs(10)
    assert [m.payload for m in p] == [b"to 5: %d" % i for i in range(10)]
    assert [m.id for m in p] == [m.id for m in l]  # one id everywhere
    assert all(p[i].id < p[i + 1].id for i in range(9))
    # an own copy: what the phone posts reaches the laptop (not the phone)
    phone.post(6, TEXT, b"from the phone", cid=99)
    own = laptop.read_msg()
    assert (own.payload, own.to, own.sender) == (b"from the phone", 6, 5)
    assert sender.read_msg().payload == b"from the phone"


def test_large_bodies_from_the_feed_reach_every_connection_whole(node):
    """A stored message from the feed is queued to each connection that
    takes it from one block they all reference (deliver_live): bodies below
    and above the size that is referenced (OUTQ_REF_MIN, 16 KiB), up to
    1 MiB, each different, arrive whole and in order on every device of
    the receiver, a bare connection and a WebSocket one among them, and on
    every member of a group, after the feed's reply is gone."""
    n1, n2 = node("--http-port", "auto"), node()
    phone, laptop = device(n1, 5, "phone"), device(n1, 5, "laptop")
    bare = plain(n1, 5, flags=0)
    ws = WSClient(n1)
    ws.hello(5, 0)
    sender = group_device(n2, 6, "desk")
    sizes = [100, (16 << 10) - 1, 16 << 10, 64 << 10, 1 << 20, 200 << 10]
    sent = [os.urandom(n) for n in sizes]
    for i, body in enumerate(sent):
        sender.post(5, TEXT, body, cid=i + 1)
    sender.wait_acked()
    for conn in (phone, laptop):
        assert [m.payload for m in conn.read_msgs(len(sent), timeout=30)] == sent
    assert bodies(bare.read_bare(len(sent), timeout=30)) == sent
    assert [ws.read_frame(timeout=30).body for _ in sent] == sent
    # a group: one message for every member held here, devices and users
    m1, m2 = group_device(n1, 7, "a"), group_device(n1, 8, "b")
    gid = sender.create("big", [7, 8])
    sender.wait_acked()
    for i, body in enumerate(sent):
        sender.post_group(gid, TEXT, body, cid=100 + i)
    sender.wait_acked()
    for conn in (m1, m2):
        assert [m.payload for m in conn.read_msgs(len(sent), timeout=30)] == sent


def test_a_group_spread_over_three_nodes(node):
    n1, n2, n3 = node(), node(), node()
    a = group_device(n1, 11, "a")
    b = group_device(n2, 12, "b")
    c = group_device(n3, 13, "c")
    gid = a.create("three", [12, 13])
    for i in range(10):
        a.post_group(gid, TEXT, b"g%d" % i, cid=i + 1)
    a.wait_acked()
    for conn in (b, c):
        got = conn.read_msgs(10)
        assert [m.payload for m in got] == [b"g%d" % i for i in range(10)]
        assert all(m.to == gid for m in got)


def test_presence_across_nodes(node):
    n1, n2 = node(), node()
    a = sig_device(n1, 1)
    a.subscribe(2)
    assert a.next_signal(Presence) == Presence(2, 0, 0)     # never seen
    b = sig_device(n2, 2)                                   # on the other node
    assert a.next_signal(Presence) == Presence(2, 1, 0)
    b2 = plain(n1, 2)                                       # a second one, here
    assert a.sync_signals() == [], "a second connection is no change"
    # a subscription made now says online (the cluster knows, not this node)
    c = sig_device(n1, 3)
    b2.close()
    c.subscribe(2)
    assert c.next_signal(Presence) == Presence(2, 1, 0)
    b.close()
    p = a.next_signal(Presence)
    assert (p.user, p.state) == (2, 0), p
    assert c.next_signal(Presence).state == 0
    assert a.sync_signals() == []


def test_a_node_killed_makes_its_users_offline_elsewhere(node):
    n1, n2 = node(), node()
    a = sig_device(n1, 1)
    a.subscribe(2)
    assert a.next_signal(Presence).state == 0
    sig_device(n2, 2)
    assert a.next_signal(Presence).state == 1
    n2.proc.kill()
    n2.wait_exit()
    # within the node's expiry (5 s) and a janitor pass, 2 is offline
    p = a.next_signal(Presence, timeout=20)
    assert (p.user, p.state) == (2, 0), p


def test_typing_receipts_and_group_events_across_nodes(node):
    n1, n2 = node(), node()
    a = sig_device(n1, 1)
    b = sig_device(n2, 2)
    c = group_device(n2, 3, "c")
    # hints reach a node from the moment its user's registration is in
    # Redis (queued before anything the user sends there): a message from
    # each proves it
    for x in (b, c):
        x.post(1, TEXT, b"registered", cid=100 + x.user)
        assert a.read_msg().payload == b"registered"
    a.typing(2)
    assert b.next_signal(Typing) == Typing(1, 0, 2, 1)
    b.typing(1, 0)
    assert a.next_signal(Typing) == Typing(2, 0, 1, 0)
    # DELIVERED reaches the author on another node when the receiver ACKs
    a.post(2, TEXT, b"m0", cid=1)
    a.acked()
    m = b.read_msg()
    b.ack(1)
    r = a.next_signal(Rcpt)
    assert (r.what, r.conv, r.by, r.upto) == (DELIVERED, 2, 2, m.id), r
    # a group created on node 1 is told to a member on node 2
    g = a.create("relayed", [3])
    ev = c.next_event()
    assert (ev.group, ev.data.by) == (g, 1), ev


# -- Redis unreachable ------------------------------------------------------------

def errors_until_acked(client, total, deadline_s=30.0):
    """Read until the server acknowledged `total` frames; return the ERRORs
    seen meanwhile."""
    r = wait_for_ack(client, total, timeout=deadline_s)
    return [e for e, _ in r.errors]


def test_redis_down_refuses_sends_and_recovers(node, redis):
    n1, n2 = node(), node()
    a, b = plain(n1, 1), plain(n2, 2)
    a.send_data(2, TEXT, b"before")
    assert wait_for_ack(a, 1).errors == []
    assert bodies(b.read_bare(1)) == [b"before"]
    b.ack()
    redis.kill()
    # a send while Redis is down: ERROR STORE, never an ACK for it
    a.send_data(2, TEXT, b"while down")
    f = a.read_frame(timeout=15)
    assert f.type == ERROR, f"expected ERROR STORE, got {f}"
    e = parse_error(f.body)
    assert e.code == E_STORE and e.ref == 2, e
    n1.wait_for_log("refusing sends until it is back", timeout=5)
    redis.restart()
    # recovered (both nodes say so): the next send is acknowledged and
    # delivered; the one refused is not
    for n in (n1, n2):
        n.wait_for_log(re.compile(r"cluster: redis \S+ is back after"), timeout=20)
        n.wait_for_log(re.compile(r"the feed from redis \S+ is back after"), timeout=20)
    a.send_data(2, TEXT, b"after")
    r = wait_for_ack(a, 3, timeout=20)
    assert r.errors == [], r.errors
    try:
        assert bodies(b.read_bare(1, timeout=20)) == [b"after"]
    except BaseException:
        print(n1.log(), n2.log(), sep="\n-----\n")
        raise


def test_weak_redis_persistence_grants_no_acknowledgement(node, redis_path, tmp_path):  # noqa: F811
    weak = RedisServer(tmp_path / "weak", redis_path, extra=("--appendfsync", "everysec"))
    try:
        n1 = node(redis=weak)
        n1.wait_for_log("appendfsync")
        a = connect(n1)
        a.send_hello(1, ACKS_FLAG)
        w = a.welcome(1)
        assert not w.flags & ACKS_FLAG, f"ACKS granted on a weak Redis: {w}"
        n1.wait_for_log("ACKS asked for and not granted")
        # messages still flow (without the promise)
        b = plain(n1, 2, flags=0)
        a.send_data(2, TEXT, b"not acknowledged")
        assert bodies(b.read_bare(1)) == [b"not acknowledged"]
    finally:
        weak.terminate()


def test_a_wrong_password_stops_the_node_with_a_sentence(redis_path, tmp_path):  # noqa: F811
    r = RedisServer(tmp_path / "pw", redis_path, extra=("--requirepass", "s3cret"))
    try:
        pw = tmp_path / "pw.txt"
        pw.write_text("wrong\n")
        p = subprocess.run([require_binary(), "--port", "0", "--data-dir",
                            str(tmp_path / "d"), "--cluster",
                            f"redis://127.0.0.1:{r.port}",
                            "--cluster-password-file", str(pw)],
                           capture_output=True, timeout=60)
        assert p.returncode != 0
        err = p.stderr.decode()
        assert f"127.0.0.1:{r.port}" in err and "pass" in err.lower(), err
        pw.write_text("s3cret\n")
        # the right one works
        s = Server(tmp_path / "ok", ["--cluster", f"redis://127.0.0.1:{r.port}",
                                     "--cluster-password-file", str(pw)])
        try:
            a, b = plain(s, 1), plain(s, 2, flags=0)
            a.send_data(2, TEXT, b"with a password")
            assert wait_for_ack(a, 1).errors == []
            assert bodies(b.read_bare(1)) == [b"with a password"]
        finally:
            s.teardown()
    finally:
        r.terminate()


def test_cluster_settings_are_checked():
    cases = [
        (["--cluster", "redis://h"], "the port is missing"),
        (["--cluster-tls-ca", "/x"], "needs --cluster"),
        (["--cluster", "redis://u:pw@h:1"], "no password in the URL"),
        (["--cluster", "redis://h:1", "--cluster-tls-name", "x"], "rediss://"),
        (["--cluster-connections", "4"], "--cluster-connections: needs --cluster"),
        (["--cluster", "redis://h:1", "--cluster-connections", "17"],
         "cluster-connections"),
        (["--cluster", "redis://h:1", "--cluster-connections", "0"],
         "cluster-connections"),
    ]
    for args, says in cases:
        p = subprocess.run([require_binary(), *args], capture_output=True, timeout=10)
        assert p.returncode == 2 and says in p.stderr.decode(), (args, p.stderr)


# -- a node killed ------------------------------------------------------------------

def test_a_node_killed_under_load_loses_nothing_acknowledged(node):
    n1, n2 = node(), node()
    b = plain(n2, 2)
    a = plain(n1, 1)
    acked_upto = 0
    for i in range(300):
        a.send_data(2, TEXT, b"k%d" % i)
    r = wait_for_ack(a, 100, sent=300)
    acked_upto = r.count
    n1.proc.kill()
    n1.wait_exit()
    # every acknowledged message reaches b (through n2), in order
    got = bodies(b.read_bare(acked_upto, timeout=20))
    assert got == [b"k%d" % i for i in range(acked_upto)]
    b.ack()


# -- --workers ----------------------------------------------------------------------

def test_workers_share_the_port_and_are_restarted(node, redis):
    sup = node("--workers", "2")
    pids = [int(m) for m in re.findall(r"worker \d+: pid (\d+)",
                                       sup.wait_for_log(re.compile(
                                           r"(?s)worker \d+: pid \d+.*worker \d+: pid \d+")).group(0))]
    assert len(set(pids)) == 2 and sup.proc.pid not in pids
    # two nodes registered in Redis, one per worker
    assert int(redis.client().cmd("GET", "chat:nodes")) == 2
    # clients on whichever worker the kernel picked chat with each other
    clients = [plain(sup, 100 + i, flags=0) for i in range(8)]
    for i, c in enumerate(clients):
        c.send_data(100 + (i + 1) % 8, TEXT, b"ring %d" % i)
    for i, c in enumerate(clients):
        assert bodies(c.read_bare(1)) == [b"ring %d" % ((i - 1) % 8)]
    # a worker killed is restarted by the supervisor
    os.kill(pids[0], signal.SIGKILL)
    sup.wait_for_log(re.compile(r"(?s)restarted \(pid \d+\).*listening on"), timeout=10)
    a, b = plain(sup, 201, flags=0), plain(sup, 202, flags=0)
    a.send_data(202, TEXT, b"after the restart")
    assert bodies(b.read_bare(1)) == [b"after the restart"]
    # SIGTERM to the supervisor stops every worker, exit 0
    assert sup.terminate() == 0
    for p in pids[1:]:
        try:
            os.kill(p, 0)
            alive = True
        except ProcessLookupError:
            alive = False
        assert not alive, f"worker {p} outlived its supervisor"


def test_a_second_group_of_workers_on_the_same_port_is_refused(node, redis, tmp_path):
    # SO_REUSEPORT would let it bind the port and take half of the clients
    sup = node("--workers", "2")
    sup.wait_for_log(re.compile(r"(?s)worker \d+: pid \d+.*worker \d+: pid \d+"))
    p = subprocess.run([require_binary(), "--port", str(sup.port), "--cluster",
                        f"redis://127.0.0.1:{redis.port}", "--workers", "2",
                        "--data-dir", str(tmp_path / "second")],
                       capture_output=True, timeout=20)
    assert p.returncode == 1, p.stderr
    assert (f"--port: 127.0.0.1:{sup.port} is served by another chat-server "
            f"with --workers").encode() in p.stderr, p.stderr
    assert b"worker 1: pid" not in p.stderr  # nothing was started
    a, b = plain(sup, 301, flags=0), plain(sup, 302, flags=0)
    a.send_data(302, TEXT, b"still served")
    assert bodies(b.read_bare(1)) == [b"still served"]
    # once that group stopped, the port is free for another (no lock left)
    port = sup.port
    assert sup.terminate() == 0
    again = node("--workers", "2", "--port", str(port))
    assert again.port == port
    c, d = plain(again, 303, flags=0), plain(again, 304, flags=0)
    c.send_data(304, TEXT, b"the new group")
    assert bodies(d.read_bare(1)) == [b"the new group"]


def test_workers_need_the_cluster():
    p = subprocess.run([require_binary(), "--workers", "2"], capture_output=True, timeout=10)
    assert p.returncode == 2 and b"--workers: needs --cluster" in p.stderr, p.stderr


# -- accounts in Redis (--auth on) ----------------------------------------------------

def cluster_user(redis, *args, password="secret\n", opts=None):
    """`chat-server user --cluster redis://...:P ARGS` with the password on
    standard input (as the SQLite variant, test_accounts.py)."""
    if opts is None:
        opts = ["--cluster", f"redis://127.0.0.1:{redis.port}"]
    return subprocess.run([require_binary(), "user", *opts, *args],
                          input=password, capture_output=True, text=True,
                          timeout=30)


def one_sentence(r):
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith("."), r.stderr
    return lines[0]


def login(srv, uid, password):
    c = srv.client()
    c.send_hello(uid, password=password.encode())
    f = c.read_frame()
    assert f.type == WELCOME, f"expected WELCOME, got {f.type:#x} {f.body!r}"
    assert parse_welcome(f.body).user == uid
    return c


def refused(srv, uid, password, code=AUTH, timeout=10.0):
    """A login refused with ERROR `code`, then the connection closed (not
    left hanging); the ERROR."""
    c = srv.client()
    c.send_hello(uid, password=password.encode())
    return expect_error_then_eof(c, code, timeout)


def test_accounts_in_redis_log_in_on_every_node(node, redis):
    r = cluster_user(redis, "add", "7", password="seven\n")
    assert r.returncode == 0 and r.stdout == "added user 7\n", r.stderr
    assert cluster_user(redis, "add", "8", password="eight\n").returncode == 0
    r = cluster_user(redis, "add", "7", password="other\n")
    assert r.returncode == 1 and "already exists" in one_sentence(r)
    # the hash is where docs/CLUSTER.md 2.3 says, never the password
    rc = redis.client()
    h = rc.cmd("HGET", "u:{7}", "pw")
    assert h.startswith(b"$argon2id$") and b"seven" not in h
    assert sorted(rc.cmd("SMEMBERS", "chat:accounts")) == [b"7", b"8"]
    n1, n2 = node("--auth", "on"), node("--auth", "on")
    n2.wait_for_log("accounts in the cluster's Redis")
    # an account made through the CLI logs in on node 2, and chats with one
    # on node 1
    a = login(n2, 7, "seven")
    b = login(n1, 8, "eight")
    a.send_frame(7, 8, TEXT, b"from node 2")
    f = read_data(b, 1)[0]
    assert (f.sender, f.body) == (7, b"from node 2")
    # a wrong password, and an id without an account: refused on both
    # nodes, the same answer after the same delay
    for n in (n1, n2):
        t0 = time.monotonic()
        e = refused(n, 7, "wrong")
        assert e.reason == "wrong user id or password"
        assert time.monotonic() - t0 >= 0.95
        assert refused(n, 99, "seven").reason == "wrong user id or password"
        assert n.log_lines("login failed: wrong password")
    # del: refused from then on, everywhere; a connection logged in before
    # keeps its session
    r = cluster_user(redis, "del", "7")
    assert r.returncode == 0 and r.stdout == "deleted user 7\n", r.stderr
    for n in (n1, n2):
        refused(n, 7, "seven")
    a.send_frame(7, 8, TEXT, b"still here")
    assert read_data(b, 1)[0].body == b"still here"
    r = cluster_user(redis, "del", "7")
    assert r.returncode == 1 and "does not exist" in one_sentence(r)
    assert rc.cmd("HGET", "u:{7}", "pw") is None
    # passwd: the new password on either node, the old one no more
    r = cluster_user(redis, "passwd", "8", password="new eight\n")
    assert r.returncode == 0 and r.stdout == "changed the password of user 8\n"
    login(n2, 8, "new eight")
    refused(n1, 8, "eight")
    r = cluster_user(redis, "passwd", "9")
    assert r.returncode == 1 and "does not exist" in one_sentence(r)
    # list: the accounts left
    r = cluster_user(redis, "list")
    assert r.returncode == 0 and r.stdout == "8\n", (r.stdout, r.stderr)
    assert rc.cmd("SMEMBERS", "chat:accounts") == [b"8"]


def test_user_list_and_settings_from_a_config_file(redis, tmp_path):
    pw = tmp_path / "redis.pw"
    pw.write_text("s3cret\n")
    rc = redis.client()
    rc.cmd("CONFIG", "SET", "requirepass", "s3cret")
    conf = tmp_path / "chat-server.conf"
    conf.write_text(f"cluster redis://127.0.0.1:{redis.port}\n"
                    f"cluster-password-file {pw}\n"
                    f"data-dir {tmp_path / 'unused'}\n")
    for i in ("12", "3", "100"):
        r = cluster_user(redis, "add", i, opts=["--config", str(conf)])
        assert r.returncode == 0, r.stderr
    r = cluster_user(redis, "list", opts=["--config", str(conf)])
    assert r.returncode == 0 and r.stdout.split() == ["3", "12", "100"], r.stderr
    assert not (tmp_path / "unused").exists()  # Redis, not --data-dir
    # the command line wins over the file: a wrong password file there
    bad = tmp_path / "bad.pw"
    bad.write_text("wrong\n")
    r = cluster_user(redis, "list", opts=["--config", str(conf),
                                          "--cluster-password-file", str(bad)])
    assert r.returncode == 1
    err = one_sentence(r)
    assert f"127.0.0.1:{redis.port}" in err, err
    # a bad URL is a bad command line, as for the server
    r = cluster_user(redis, "list", opts=["--cluster", "redis://h"])
    assert r.returncode == 2 and "the port is missing" in r.stderr, r.stderr


def test_login_while_redis_is_down_is_refused_with_a_reason(node, redis):
    assert cluster_user(redis, "add", "7", password="seven\n").returncode == 0
    n1 = node("--auth", "on")
    login(n1, 7, "seven")
    redis.kill()
    n1.wait_for_log("refusing sends until it is back", timeout=10)
    e = refused(n1, 7, "seven", code=E_STORE)
    assert "cannot read your account" in e.reason, e
    assert n1.log_lines("the store cannot read the account now")
    # the CLI says so too, in one sentence, exit 1
    r = cluster_user(redis, "list")
    assert r.returncode == 1 and f"127.0.0.1:{redis.port}" in one_sentence(r)
    redis.restart()
    n1.wait_for_log(re.compile(r"cluster: redis \S+ is back after"), timeout=20)
    login(n1, 7, "seven")


def test_with_auth_presence_only_of_contacts_across_nodes(node, redis):
    for i in (1, 2, 3, 4, 5):
        assert cluster_user(redis, "add", str(i), password="pw\n").returncode == 0
    n1, n2 = node("--auth", "on"), node("--auth", "on")
    a = sig_device(n1, 1, password=b"pw")
    b = sig_device(n2, 2, password=b"pw")
    c = sig_device(n1, 3, password=b"pw")  # (group events stay on a node)
    g = make_contacts(a, b, c, TEXT)
    rc = redis.client()
    assert rc.cmd("SMEMBERS", "u:{1}:ct") == [b"2"]
    a.subscribe(2, 3, 4, 5)
    denied = {a.expect_error_ref(E_DENIED, u).ref for u in (4, 5)}
    assert denied == {4, 5}
    states = {a.next_signal(Presence).user for _ in range(2)}
    assert states == {2, 3}
    b.subscribe(1)                        # the other way round too
    assert b.next_signal(Presence).user == 1
    assert g
