"""The crash test over a cluster (issue 15, item 6; docs/CLUSTER.md 6.6):
one redis-server and three chat-server nodes (--cluster), clients that know
all three addresses, under load. Two tests: a random node SIGKILLed and
restarted on its port CHAT_CHAOS_KILLS times (default 3; `make chaos`: 20);
redis-server SIGKILLed and restarted on its port and directory
CHAT_CHAOS_REDIS_KILLS times (default 1; `make chaos`: 3). At the end every
message a sender got the acknowledgement of must be in the output of both
of the receiver's devices, no message with a client id twice, and the
acknowledged ones of each sender in order.

The clients:
- the receiver: user RECEIVER with two devices (CONV), each a
  `chat-client listen --device NAME` with the three addresses, starting on
  different nodes; libchat moves them to the next address when their node
  dies, and listen prints which server each session is on;
- senders with client ids: users CID_SENDERS, each a loop of `chat-client
  send` with the three addresses (a different one first for each), one
  message a run ("c<user>-<n>"); exit 0 is the acknowledgement; a run whose
  node dies resends to the next address with the same client id (libchat);
- a sender without client ids: user BARE_SENDER, a raw connection here
  (HELLO with ACKS, no CONV) keeping WINDOW bare data frames in flight
  ("b<user>-<n>"), which moves to the next node when its own dies and sends
  again what was not acknowledged (and what an ERROR refused): a message
  stored before the kill and sent again is stored twice, so duplicates are
  allowed for these messages, and only for these.

A kill comes once the senders got a random number of acknowledgements since
the last event (a condition, never a fixed time). While a node is down, the
receiver's devices that were on it must have moved and every sender must
have got an acknowledgement through the survivors before it is restarted on
the same port. While Redis is down every node must say so in its log, and
say it is back after the restart.

CHAT_CHAOS_SEED (default 1729) seeds the choices (which node, the event
order, the round sizes); the timing is the machine's. A summary line is
printed like the crash test's.
"""

import json
import os
import random
import re
import select
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import LISTENING, require_binary
from proto import (ACK, ACKS_FLAG, ERROR, HELLO, S2C, TEXT, WELCOME, Frame,
                   c2s, hello_body, parse_ack, parse_error, parse_welcome)
from redisfix import RedisServer, redis_path  # noqa: F401 (a fixture)
from test_cli_client import client_bin, free_port

KILLS = int(os.environ.get("CHAT_CHAOS_KILLS", "3"))
REDIS_KILLS = int(os.environ.get("CHAT_CHAOS_REDIS_KILLS", "1"))
SEED = int(os.environ.get("CHAT_CHAOS_SEED", "1729"))

RECEIVER = 500
DEVICES = ("phone", "laptop")
CID_SENDERS = (511, 512, 513)
BARE_SENDER = 521
WINDOW = 32                  # bare frames in flight (sent, not yet ACKed)
# Acknowledgements (client-id messages, bare frames) to wait for between
# two events; and while a node is down, before it is restarted.
ROUND_CID = (6, 30)
ROUND_BARE = (100, 1500)
DOWN_BARE = 50
# Deadlines: generous, the machine is a busy 2-core box and may run this
# under AddressSanitizer next to other tests. They only bound a hang.
NODE_START = 30.0
PROGRESS = 90.0              # the acknowledgements a round waits for
MOVE = 60.0                  # a client leaves a dead node
REDIS_EVENT = 60.0           # every node saw Redis go, and come back
FINAL = 180.0                # the devices have everything, and the end marks
SEND_TIMEOUT = 30            # chat-client send --timeout (10 s per address)
LISTEN_TIMEOUT = 300         # chat-client listen --timeout (reconnecting)

CID_TEXT = re.compile(r"c(\d+)-(\d+)")
BARE_TEXT = re.compile(r"b(\d+)-(\d+)")


def tail(text, n=4000):
    return text if len(text) <= n else "...\n" + text[-n:]


# -- the nodes -------------------------------------------------------------------

class Node:
    """chat-server --cluster on a fixed port, SIGKILLed and started again on
    that port and its data directory; each run logs to its own file
    (node<i>.<run>.log)."""

    def __init__(self, index, workdir, redis_port, port):
        self.index, self.port = index, port
        self.addr = f"127.0.0.1:{port}"
        self.dir = workdir / f"node{index}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.redis_url = f"redis://127.0.0.1:{redis_port}"
        self.runs = 0
        self.proc = self.logf = None
        self.log_path = None
        self.kills = 0
        self.down = False

    def start(self):
        assert self.proc is None or self.proc.poll() is not None
        self.runs += 1
        self.log_path = self.dir / f"node{self.index}.{self.runs}.log"
        if self.logf:
            self.logf.close()
        self.logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [require_binary(), "--port", str(self.port), "--data-dir",
             str(self.dir / "data"), "--cluster", self.redis_url],
            stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf)
        deadline = time.monotonic() + NODE_START
        while not LISTENING.search(self.log()):
            if self.proc.poll() is not None:
                if "address already in use" in self.log():
                    pytest.fail(f"port {self.port} was taken while node {self.index} "
                                f"was down:\n{tail(self.log())}", pytrace=False)
                pytest.fail(f"node {self.index} exited ({self.proc.returncode}) at its "
                            f"start {self.runs}:\n{tail(self.log())}")
            if time.monotonic() > deadline:
                pytest.fail(f"node {self.index} not listening within {NODE_START} s "
                            f"(start {self.runs}):\n{tail(self.log())}")
            time.sleep(0.02)

    def log(self):
        return self.log_path.read_bytes().decode("utf-8", "replace") if self.log_path else ""

    def count(self, phrase):
        return self.log().count(phrase)

    def check_alive(self):
        if self.proc.poll() is not None:
            pytest.fail(f"node {self.index} died by itself (status {self.proc.returncode}, "
                        f"run {self.runs}):\n{tail(self.log(), 8000)}")

    def kill(self):
        self.check_alive()
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(30) == -signal.SIGKILL
        self.kills += 1

    def stop(self):
        """SIGTERM at the end: the exit status (None: it had to be killed)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is not None:
            self.logf.close()
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None
        finally:
            self.logf.close()


def host_args(nodes, first):
    """--host for each node, starting with nodes[first]."""
    out = []
    for i in range(len(nodes)):
        out += ["--host", nodes[(first + i) % len(nodes)].addr]
    return out


# -- the receiver's devices: chat-client listen ---------------------------------

class Listener:
    """`chat-client listen` of one device; its output parsed as it comes:
    the messages, and the server its session is on."""

    def __init__(self, user, device, hosts):
        self.name = device
        self.proc = subprocess.Popen(
            [client_bin(), "listen", "--id", str(user), "--device", device,
             "--timeout", str(LISTEN_TIMEOUT), *hosts],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.cond = threading.Condition()
        self.msgs = []           # the JSON objects with a "text"
        self.servers = []        # each session's server, in order
        self.ready = False
        self.out_closed = False
        self.err_lines, self.bad = [], []
        threading.Thread(target=self._out, daemon=True).start()
        threading.Thread(target=self._err, daemon=True).start()

    def _out(self):
        for line in self.proc.stdout:
            try:
                m = json.loads(line)
            except ValueError:
                m = None
            with self.cond:
                if m is None:
                    self.bad.append(line)
                elif "server" in m:
                    self.servers.append(m["server"])
                elif "text" in m:
                    self.msgs.append(m)
                else:
                    self.bad.append(line)
                self.cond.notify_all()
        with self.cond:
            self.out_closed = True
            self.cond.notify_all()

    def _err(self):
        for line in self.proc.stderr:
            line = line.decode("utf-8", "replace").rstrip("\n")
            with self.cond:
                self.err_lines.append(line)
                if line.startswith("chat-client: listening as"):
                    self.ready = True
                self.cond.notify_all()

    @property
    def server(self):
        with self.cond:
            return self.servers[-1] if self.servers else None

    def texts(self):
        with self.cond:
            return [m["text"] for m in self.msgs]

    def wait(self, pred, timeout, what, context=""):
        with self.cond:
            ok = self.cond.wait_for(lambda: pred() or self.out_closed, timeout)
            if ok and pred():
                return
        pytest.fail(f"device {self.name}: no {what} within {timeout} s (exit "
                    f"{self.proc.poll()}); stderr {self.err_lines[-10:]}; "
                    f"servers {self.servers}; {len(self.msgs)} messages\n{context}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- the senders ----------------------------------------------------------------

class Progress:
    """A condition the senders notify at each acknowledgement."""

    def __init__(self):
        self.cond = threading.Condition()

    def notify(self):
        with self.cond:
            self.cond.notify_all()

    def wait(self, pred, timeout):
        with self.cond:
            return self.cond.wait_for(pred, timeout)


class CidSender(threading.Thread):
    """A loop of `chat-client send`, one "c<user>-<n>" a run, until stopped;
    the n whose run exited 0 (acknowledged) are kept."""

    def __init__(self, user, hosts, stop, progress):
        super().__init__(daemon=True)
        self.user, self.hosts, self.stop, self.progress = user, hosts, stop, progress
        self.next_n = 0
        self.acked, self.failed = set(), []     # failed: (n, stderr)
        self.exc = None

    def send(self, text):
        return subprocess.run(
            [client_bin(), "send", "--id", str(self.user), "--to", str(RECEIVER),
             "--text", text, "--timeout", str(SEND_TIMEOUT), *self.hosts],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=SEND_TIMEOUT + 60)

    def run(self):
        try:
            while not self.stop.is_set():
                n = self.next_n
                r = self.send(f"c{self.user}-{n}")
                self.next_n += 1
                if r.returncode == 0:
                    self.acked.add(n)
                    self.progress.notify()
                elif r.returncode == 1:
                    self.failed.append((n, r.stderr.decode("utf-8", "replace").strip()))
                    self.stop.wait(0.05)   # (a refusing node: do not spin)
                else:
                    raise AssertionError(f"chat-client send exited {r.returncode}: "
                                         f"{r.stderr!r}")
        except BaseException as e:  # reported by the test
            self.exc = e

    def end_mark(self):
        """Send "end c<user>" after everything else: exit 0 required."""
        for _ in range(5):
            r = self.send(f"end c{self.user}")
            if r.returncode == 0:
                return
        pytest.fail(f"user {self.user}: end mark not acknowledged: {r.stderr!r}")


class BareSender(threading.Thread):
    """Bare data frames "b<user>-<n>" to RECEIVER on a HELLO-with-ACKS
    connection (no CONV, so no client ids), WINDOW in flight; on a lost
    connection it moves to the next node and sends again what was not
    acknowledged, and what an ERROR refused."""

    def __init__(self, user, nodes, first, progress):
        super().__init__(daemon=True)
        self.user, self.nodes, self.progress = user, nodes, progress
        self.node = first            # the node it is on, or tries next
        self.connected = False
        self.next_n = 0
        self.acked = set()
        self.carry = []              # n to send again, in order
        self.errors = []             # ERRORs got (codes and reasons)
        self.moves = self.no_acks = 0
        self.draining = threading.Event()   # no new n; end when all are acked
        self.drained = threading.Event()    # draining, and nothing in flight
        self.finish = threading.Event()     # end the thread (once drained)
        self.mark = None             # n of the end mark once queued (-1)
        self.exc = None

    def body(self, n):
        return b"end b%d" % self.user if n < 0 else b"b%d-%d" % (self.user, n)

    # -- one connection ----------------------------------------------------------
    def connect(self):
        """Bind a connection to self.node; None when it failed."""
        node = self.nodes[self.node]
        try:
            sock = socket.create_connection(("127.0.0.1", node.port), timeout=5)
        except OSError:
            return None
        sock.settimeout(None)
        try:  # (a node killed right after the connect: try another)
            sock.sendall(c2s(self.user, 0, HELLO, hello_body(ACKS_FLAG)))
        except OSError:
            sock.close()
            return None
        buf = bytearray()
        deadline = time.monotonic() + 15
        while True:
            frames = self.frames(buf)
            if frames:
                break
            left = deadline - time.monotonic()
            if left <= 0 or self.finish.is_set():
                sock.close()
                return None
            r, _, _ = select.select([sock], [], [], min(left, 0.2))
            if r:
                try:
                    data = sock.recv(1 << 16)
                except OSError:
                    data = b""
                if not data:
                    sock.close()
                    return None
                buf += data
        f = frames.pop(0)
        if f.type != WELCOME:
            self.errors.append(("login", f))
            sock.close()
            return None
        w = parse_welcome(f.body)
        if not w.flags & ACKS_FLAG:   # (persistence not checked yet: try again)
            self.no_acks += 1
            sock.close()
            return None
        assert not frames, f"frames after WELCOME: {frames}"
        return sock, buf

    @staticmethod
    def frames(buf):
        out = []
        while len(buf) >= S2C.size:
            sender, ftype, length = S2C.unpack_from(buf)
            if len(buf) < S2C.size + length:
                break
            out.append(Frame(sender, ftype, bytes(buf[S2C.size:S2C.size + length])))
            del buf[:S2C.size + length]
        return out

    def session(self, sock, buf):
        """Send and collect ACKs until the connection is lost (or drained)."""
        seq = ack = 0
        inflight = {}                # seq -> n
        refused = set()              # seqs an ERROR named
        try:
            while True:
                batch = []
                while len(inflight) < WINDOW and (self.carry or not self.draining.is_set()):
                    if self.carry:
                        n = self.carry.pop(0)
                    else:
                        n, self.next_n = self.next_n, self.next_n + 1
                    seq += 1
                    inflight[seq] = n
                    batch.append(c2s(self.user, RECEIVER, TEXT, self.body(n)))
                if batch:
                    sock.sendall(b"".join(batch))
                if not inflight and not self.carry and self.draining.is_set():
                    self.drained.set()
                    if self.finish.is_set():
                        return
                    self.finish.wait(0.05)   # (waiting for the end mark)
                    continue
                r, _, _ = select.select([sock], [], [], 0.2)
                if not r:
                    continue
                data = sock.recv(1 << 20)
                if not data:
                    return
                buf += data
                errs = 0
                for f in self.frames(buf):
                    if f.type == ERROR:
                        e = parse_error(f.body)
                        self.errors.append((e.code, e.reason))
                        refused.add(e.ref)
                        errs += 1
                    elif f.type == ACK:
                        count = parse_ack(f.body)
                        assert ack <= count <= seq, f"ACK {count} after {ack}, {seq} sent"
                        for s in range(ack + 1, count + 1):
                            n = inflight.pop(s)
                            if s in refused:
                                self.carry.append(n)
                            else:
                                self.acked.add(n)
                        ack = count
                        self.progress.notify()
                    else:
                        raise AssertionError(f"user {self.user}: unexpected frame {f}")
                if errs:
                    self.carry.sort(key=lambda n: (n < 0, n))
                    self.finish.wait(0.05)   # (a refusing node: do not spin)
        except OSError:
            return
        finally:
            sock.close()
            # what was not acknowledged: unknown fate, sent again
            self.carry = sorted(set(self.carry) | set(inflight.values()),
                                key=lambda n: (n < 0, n))

    def run(self):
        try:
            failures = 0
            while not self.finish.is_set():
                c = self.connect()
                if c is None:
                    self.connected = False
                    self.node = (self.node + 1) % len(self.nodes)
                    self.moves += 1
                    failures += 1
                    if failures % len(self.nodes) == 0:
                        self.finish.wait(0.1)   # a whole round failed
                    continue
                failures = 0
                self.connected = True
                self.session(*c)
                self.connected = False
        except BaseException as e:  # reported by the test
            self.exc = e


# -- the test ---------------------------------------------------------------------

def free_ports(n):
    ports = set()
    while len(ports) < n:
        ports.add(free_port())
    return sorted(ports)


def chaos(redis_path, tmp_path, capsys, what, node_kills, redis_kills, seed):  # noqa: F811
    """One run (run_chaos)."""
    run_chaos(redis_path, tmp_path, capsys, what, node_kills, redis_kills, seed)


def run_chaos(redis_path, tmp_path, capsys, what, node_kills, redis_kills, seed):  # noqa: F811
    """One run: node_kills node kills and redis_kills Redis kills in a
    random order, under load; then the check, after the summary line."""
    rng = random.Random(seed)
    redis = RedisServer(tmp_path / "redis", redis_path)
    nodes = [Node(i, tmp_path, redis.port, p) for i, p in enumerate(free_ports(3))]
    listeners, senders = [], []
    stop = threading.Event()
    progress = Progress()
    bare = None

    def logs():
        out = [f"seed {seed}"]
        for n in nodes:
            out.append(f"--- node {n.index} (run {n.runs}, port {n.port}) ---\n"
                       f"{tail(n.log(), 3000)}")
        out.append(f"--- redis ---\n{tail(redis.log(), 1500)}")
        return "\n".join(out)

    def check_clients():
        for n in nodes:
            if n.proc.poll() is not None and not n.down:
                n.check_alive()
        for s in senders + [bare]:
            if s.exc is not None:
                raise AssertionError(f"sender {s.user}: {s.exc!r}\n{logs()}") from s.exc
        for li in listeners:
            if li.proc.poll() is not None:
                pytest.fail(f"device {li.name}: listen exited ({li.proc.returncode}): "
                            f"{li.err_lines[-10:]}\n{logs()}")

    def acks():
        return sum(len(s.acked) for s in senders), len(bare.acked)

    def wait_progress(what, cid=0, bare_n=0, each=False):
        """Wait until `cid` more client-id messages (with each: every one of
        the senders at least one more) and `bare_n` more bare frames are
        acknowledged."""
        base = [len(s.acked) for s in senders]
        base_c, base_b = sum(base), len(bare.acked)

        def done():
            c, b = acks()
            return (c >= base_c + cid and b >= base_b + bare_n
                    and (not each or all(len(s.acked) > k for s, k in zip(senders, base))))

        deadline = time.monotonic() + PROGRESS
        while not progress.wait(done, 0.5):
            check_clients()
            if time.monotonic() > deadline:
                pytest.fail(f"{what}: no progress within {PROGRESS} s: acknowledged "
                            f"{acks()} from {(base_c, base_b)}, wanted +{cid} +{bare_n}; "
                            f"bare sender on node {bare.node} (connected {bare.connected}, "
                            f"errors {bare.errors[-3:]}); cid senders' last failures "
                            f"{[s.failed[-1:] for s in senders]}\n{logs()}")

    def wait_logs(phrase, before, what):
        deadline = time.monotonic() + REDIS_EVENT
        while not all(n.count(phrase) > b for n, b in zip(nodes, before)):
            for n in nodes:
                n.check_alive()
            if time.monotonic() > deadline:
                pytest.fail(f"{what}: not every node logged {phrase!r} within "
                            f"{REDIS_EVENT} s\n{logs()}")
            time.sleep(0.05)

    events = ["node"] * node_kills + ["redis"] * redis_kills
    rng.shuffle(events)
    rounds, kill_log = [], []
    cmd_back = f"cluster: redis 127.0.0.1:{redis.port} is back after"
    feed_back_line = f"cluster: the feed from redis 127.0.0.1:{redis.port} is back after"
    try:
        for n in nodes:
            n.start()
        # the receiver's devices, on nodes 0 and 1 first
        for i, name in enumerate(DEVICES):
            listeners.append(Listener(RECEIVER, name, host_args(nodes, i)))
        for li in listeners:
            li.wait(lambda li=li: li.ready, 30, "\"listening as\"", logs())
        # the senders: each with another node first
        bare = BareSender(BARE_SENDER, nodes, 2, progress)
        senders = [CidSender(u, host_args(nodes, i), stop, progress)
                   for i, u in enumerate(CID_SENDERS)]
        for s in senders + [bare]:
            s.start()

        for ev in events:
            before = acks()
            wait_progress(f"round {len(rounds) + 1}", rng.randint(*ROUND_CID),
                          rng.randint(*ROUND_BARE))
            after = acks()
            rounds.append((after[0] - before[0], after[1] - before[1]))
            if ev == "redis":
                down = [n.count("refusing sends until it is back") for n in nodes]
                feed = [n.count("the feed from redis is down") for n in nodes]
                back = [n.count(cmd_back) for n in nodes]
                feed_back = [n.count(feed_back_line) for n in nodes]
                redis.kill()
                kill_log.append("redis")
                wait_logs("refusing sends until it is back", down, "redis killed")
                wait_logs("the feed from redis is down", feed, "redis killed")
                redis.restart()    # (a port taken meanwhile fails with that sentence)
                wait_logs(cmd_back, back, "redis restarted")
                wait_logs(feed_back_line, feed_back, "redis restarted")
                continue
            # a node: any, or the one a device or a sender is on
            kind = rng.choice(("any", "device", "sender"))
            by_addr = {n.addr: n.index for n in nodes}
            if kind == "device":
                victim = by_addr[rng.choice(listeners).server]
            elif kind == "sender":
                victim = rng.choice([bare.node, rng.randrange(len(nodes))])
            else:
                victim = rng.randrange(len(nodes))
            node = nodes[victim]
            on_it = [li.name for li in listeners if li.server == node.addr]
            if bare.connected and bare.node == victim:
                on_it.append(f"bare {BARE_SENDER}")
            on_it += [f"cid {s.user}" for i, s in enumerate(senders) if i == victim]
            node.down = True
            node.kill()
            kill_log.append(f"{victim}:{kind}:{'+'.join(on_it) or '-'}")
            # the clients move to the survivors, and get through them
            for li in listeners:
                li.wait(lambda li=li: li.server != node.addr, MOVE,
                        f"move off node {victim}", logs())
            wait_progress(f"node {victim} down", 1, DOWN_BARE, each=True)
            assert bare.node != victim or not bare.connected
            node.start()           # the same port and data directory
            node.down = False
        wait_progress("the last round", rng.randint(*ROUND_CID), rng.randint(*ROUND_BARE))

        # Stop: the cid senders finish their run; the bare sender sends
        # what is still not acknowledged; then the end marks.
        stop.set()
        for s in senders:
            s.join(SEND_TIMEOUT + 90)
            assert not s.is_alive(), f"sender {s.user} still running"
        bare.draining.set()
        if not bare.drained.wait(PROGRESS):
            pytest.fail(f"bare sender: not everything acknowledged within {PROGRESS} s "
                        f"(carry {len(bare.carry)})\n{logs()}")
        check_clients()
        for s in senders:
            s.end_mark()
        bare.drained.clear()
        bare.carry.append(-1)
        if not bare.drained.wait(PROGRESS):
            pytest.fail(f"bare sender: end mark not acknowledged\n{logs()}")
        bare.finish.set()
        bare.join(30)
        check_clients()
        assert -1 in bare.acked

        marks = {f"end c{u}" for u in CID_SENDERS} | {f"end b{BARE_SENDER}"}
        acked_cid = {(s.user, n) for s in senders for n in s.acked}
        acked_bare = {(BARE_SENDER, n) for n in bare.acked if n >= 0}
        # A device gets its messages in id order, and each end mark was sent
        # after everything else was acknowledged: once a device has the
        # marks, nothing acknowledged is still on its way to it.
        for li in listeners:
            li.wait(lambda li=li: marks <= set(li.texts()), FINAL, "end marks", logs())
    finally:
        for li in listeners:    # (kept with the nodes' logs, for a failure)
            with open(tmp_path / f"{li.name}.jsonl", "w") as f:
                f.writelines(json.dumps(m) + "\n" for m in li.msgs)
        stop.set()
        if bare is not None:
            bare.draining.set()
            bare.finish.set()
        for li in listeners:
            li.stop()
        statuses = [n.stop() for n in nodes]
        redis.terminate()

    # -- the check -------------------------------------------------------------
    sent_cid = {(s.user, n) for s in senders for n in range(s.next_n)}
    sent_bare = {(BARE_SENDER, n) for n in range(bare.next_n)}
    report, lost_all, dup_cid_all, order_all = [], [], [], []
    dup_bare_total = 0
    for li in listeners:
        seen_cid, seen_bare, last, order = {}, {}, {}, []
        for m in li.msgs:
            t = m["text"]
            if t in marks:
                continue
            mc, mb = CID_TEXT.fullmatch(t), BARE_TEXT.fullmatch(t)
            assert mc or mb, f"device {li.name}: unexpected message {m}"
            key = (int((mc or mb).group(1)), int((mc or mb).group(2)))
            assert m["from"] == key[0], f"device {li.name}: wrong sender {m}"
            if mc:
                assert key in sent_cid, f"device {li.name}: never sent: {m}"
                seen_cid.setdefault(key, []).append(m["id"])
                if key in acked_cid:   # acknowledged before the next was sent
                    if key[1] < last.get(key[0], -1):
                        order.append(key)
                    last[key[0]] = max(key[1], last.get(key[0], -1))
            else:
                assert key in sent_bare, f"device {li.name}: never sent: {m}"
                seen_bare.setdefault(key, []).append(m["id"])
        lost = sorted((acked_cid - set(seen_cid)) | (acked_bare - set(seen_bare)))
        dup_cid = {k: v for k, v in seen_cid.items() if len(v) > 1}
        dup_bare = {k: v for k, v in seen_bare.items() if len(v) > 1}
        dup_bare_total += sum(len(v) - 1 for v in dup_bare.values())
        lost_all += [(li.name, k) for k in lost]
        if lost:   # where: the ids the other devices got them under
            texts = {("c%d-%d" if k in acked_cid else "b%d-%d") % k for k in lost}
            ids = sorted(m["id"] for o in listeners if o is not li
                         for m in o.msgs if m["text"] in texts)
            if ids:
                before = [m for m in li.msgs if m["id"] < ids[0]][-1:]
                after = [m for m in li.msgs if m["id"] > ids[-1]][:1]
                report.append(f"{li.name} lost ids {ids[0]}..{ids[-1]} (the other device "
                              f"got them), its messages around them: "
                              f"{[(m['id'], m['text']) for m in before + after]}")
        dup_cid_all += [(li.name, k, v) for k, v in dup_cid.items()]
        order_all += [(li.name, k) for k in order]
        report.append(f"{li.name}: {len(li.msgs)} delivered ({len(seen_cid)} + "
                      f"{len(seen_bare)} distinct), {len(lost)} lost, {len(dup_cid)} "
                      f"cid duplicated, {len(dup_bare)} bare duplicated"
                      + (f" {sorted(dup_bare)[:5]}" if dup_bare else "")
                      + f", sessions on {len(li.servers)} servers")
    cid_failed = sum(len(s.failed) for s in senders)
    with capsys.disabled():
        print(f"\ncluster crash test ({what}): {node_kills} node kills, {redis_kills} "
              f"redis kills (seed {seed}), "
              f"{len(sent_cid)} + {len(sent_bare)} sent (cid + bare), "
              f"{len(acked_cid)} + {len(acked_bare)} acknowledged, "
              f"{len(lost_all)} lost, {len(dup_cid_all)} cid duplicated, "
              f"{dup_bare_total} bare duplicated (allowed: no client id); "
              f"{'; '.join(report)}; cid sends failed {cid_failed}, bare ERRORs "
              f"{len(bare.errors)}, bare moves {bare.moves}; kills (node:chosen as:on it): "
              f"{' '.join(kill_log)}; ACKed per round: {rounds}")

    assert not lost_all, f"{len(lost_all)} acknowledged messages lost (seed {seed}), " \
                         f"first: {lost_all[:10]}; the devices' output (*.jsonl) " \
                         f"and the logs: {tmp_path}"
    assert not dup_cid_all, f"messages with client ids delivered twice (seed {seed}): " \
                            f"{dup_cid_all[:10]}"
    assert not order_all, f"acknowledged messages out of order (seed {seed}): {order_all[:10]}"
    assert all(s.acked for s in senders) and bare.acked, "a sender never got an ACK"
    assert statuses == [0, 0, 0], f"nodes' exit statuses after SIGTERM: {statuses}"


def test_node_kills_lose_nothing_acknowledged(redis_path, tmp_path, capsys):  # noqa: F811
    chaos(redis_path, tmp_path, capsys, "node kills", KILLS, 0, SEED)


def test_redis_kills_lose_nothing_acknowledged(redis_path, tmp_path, capsys):  # noqa: F811
    chaos(redis_path, tmp_path, capsys, "redis kills", 0, REDIS_KILLS, SEED + 1)
