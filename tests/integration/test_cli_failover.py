"""chat-client with several servers (--host repeated): the first attempt
skips a dead server (refusing, or frozen: no WELCOME), listen moves to
another server when its own is killed, a send whose server died after
storing but before the ACK reached the client is resent to a standby on the
same data directory and delivered exactly once (the client id deduplicates
it), TLS names are checked per server, and bad --host values are usage
errors.

A DEAD address is a loopback port nothing listens on. Waits are on
conditions (a line printed, a frame seen, a process exit), never fixed sleeps.
"""

import json
import queue
import signal
import subprocess
import threading

import pytest

import tls_certs
from proto import S2C
from test_cli_client import assert_one_sentence, client_bin, free_port, run
from test_cli_devices import CuttingProxy
from test_tls import start_tls

DEADLINE = 20.0


def addr(port):
    return f"127.0.0.1:{port}"


class Proc:
    """A chat-client in the background; its stdout and stderr lines queued."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([client_bin(), *map(str, args)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.out, self.err = queue.Queue(), queue.Queue()
        self.out_lines, self.err_lines = [], []
        for stream, q, keep in ((self.proc.stdout, self.out, self.out_lines),
                                (self.proc.stderr, self.err, self.err_lines)):
            threading.Thread(target=self._pump, args=(stream, q, keep), daemon=True).start()

    @staticmethod
    def _pump(stream, q, keep):
        for line in stream:
            line = line.decode("utf-8").rstrip("\n")
            keep.append(line)
            q.put(line)
        q.put(None)

    def wait_line(self, q, match, what):
        """Return the first line (from now on) for which match(line) holds."""
        while True:
            try:
                line = q.get(timeout=DEADLINE)
            except queue.Empty:
                self.kill()
                pytest.fail(f"no {what} within {DEADLINE}s; stdout={self.out_lines!r} "
                            f"stderr={self.err_lines!r}")
            if line is None:
                pytest.fail(f"exited ({self.proc.wait()}) before {what}; "
                            f"stdout={self.out_lines!r} stderr={self.err_lines!r}")
            if match(line):
                return line

    def wait_json(self, match, what):
        return json.loads(self.wait_line(self.out, lambda l: match(json.loads(l)), what))

    def rest(self, q):
        """Every line left on q, once the process has closed the stream."""
        lines = []
        while (line := q.get(timeout=DEADLINE)) is not None:
            lines.append(line)
        return lines

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def procs():
    made = []

    def start(*args):
        p = Proc(*args)
        made.append(p)
        return p

    yield start
    for p in made:
        p.kill()


def listen_texts(p, until):
    """The texts listen prints up to and including `until`."""
    texts = []
    while True:
        m = p.wait_json(lambda m: "text" in m, f"a message (have {texts!r})")
        texts.append(m["text"])
        if m["text"] == until:
            return texts


# -- (a) the first attempt skips a dead server ------------------------------

def test_send_skips_a_dead_server(server, procs):
    l = procs("listen", "--id", 2, "--host", addr(server.port))
    l.wait_line(l.err, lambda s: s == "chat-client: listening as 2", "listening")
    dead = free_port()
    r = run("send", "--id", 1, "--to", 2, "--text", "via the live one",
            "--host", addr(dead), "--host", addr(server.port))
    assert r.returncode == 0, r.stderr.decode()
    assert r.stderr == b"" and r.stdout == b""
    m = l.wait_json(lambda m: "text" in m, "the message")
    assert m["text"] == "via the live one"


def test_port_completes_hosts_without_one(server):
    """--port (even after the --host values) is the port of a host without
    one; a request command (history) fails over like send."""
    dead = free_port()
    r = run("history", "--id", 1, "--with", 2, "--host", addr(dead),
            "--host", "127.0.0.1", "--port", server.port)
    assert r.returncode == 0, r.stderr.decode()


def test_every_server_dead_is_one_sentence():
    d1, d2 = free_port(), free_port()
    r = run("send", "--id", 1, "--to", 2, "--text", "x", "--host", addr(d1),
            "--host", addr(d2))
    assert r.returncode == 1
    line = assert_one_sentence(r)
    assert line.endswith("connection refused (is chat-server running?); "
                         "the other server failed too"), line
    r = run("listen", "--id", 1, "--host", addr(d1), "--host", addr(d2), "--count", 1)
    assert r.returncode == 1
    assert "; the other server failed too" in assert_one_sentence(r)


def test_single_host_prints_no_server_line(server, procs):
    """listen's output is unchanged with one --host: no "server" line."""
    l = procs("listen", "--id", 4, "--host", addr(server.port), "--count", 1)
    l.wait_line(l.err, lambda s: s == "chat-client: listening as 4", "listening")
    r = run("send", "--id", 1, "--to", 4, "--text", "one", "--port", server.port)
    assert r.returncode == 0, r.stderr.decode()
    assert l.proc.wait(DEADLINE) == 0
    lines = [json.loads(s) for s in l.rest(l.out)]
    assert [m.get("text") for m in lines] == ["one"]
    assert "server" not in lines[0]


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return tls_certs.make(tmp_path_factory.mktemp("certs"))


def test_tls_checks_each_servers_own_name(start_server, certs):
    """The certificate (for 127.0.0.1 and localhost) is checked against the
    host of each attempt, not the first one's (127.0.0.2, dead); unless
    --server-name is given, which then holds for every server."""
    srv = start_tls(start_server, certs)
    hosts = ["--host", f"127.0.0.2:{free_port()}", "--host", f"127.0.0.1:{srv.tls_port}"]
    r = run("send", "--id", 1, "--to", 2, "--text", "x", "--tls", "--ca", certs["ca"],
            *hosts)
    assert r.returncode == 0, r.stderr.decode()
    r = run("send", "--id", 1, "--to", 2, "--text", "x", "--tls", "--ca", certs["ca"],
            "--server-name", "127.0.0.2", *hosts)
    assert r.returncode == 1
    line = assert_one_sentence(r)
    assert "certificate verify failed" in line and addr(srv.tls_port) in line, line


# -- (b) listen moves to another server when its own is killed -------------

def test_listen_follows_to_the_next_server(start_server, procs):
    a, b = start_server(), start_server()
    l = procs("listen", "--id", 7, "--host", addr(a.port), "--host", addr(b.port))
    assert l.wait_json(lambda m: "server" in m, "the first server line") == \
        {"server": addr(a.port), "event": "connected"}
    a.terminate(sig=signal.SIGKILL)  # no goodbye to the client
    assert l.wait_json(lambda m: "server" in m, "the switch") == \
        {"server": addr(b.port), "event": "connected"}
    l.wait_line(l.err, lambda s: s == f"chat-client: reconnected to {addr(b.port)}",
                "reconnected")
    r = run("send", "--id", 1, "--to", 7, "--text", "after the switch",
            "--host", addr(b.port))
    assert r.returncode == 0, r.stderr.decode()
    m = l.wait_json(lambda m: "text" in m, "the message through B")
    assert (m["from"], m["text"]) == (1, "after the switch")
    assert l.proc.poll() is None  # still listening


def test_listen_skips_a_frozen_server(start_server, procs):
    """A stopped server's kernel still accepts TCP connections (its listen
    queue); only the missing WELCOME shows it. --timeout bounds that wait
    too, then the next server is tried."""
    a, b = start_server(), start_server()
    a.proc.send_signal(signal.SIGSTOP)
    try:
        l = procs("listen", "--id", 8, "--timeout", 1, "--host", addr(a.port),
                  "--host", addr(b.port))
        assert l.wait_json(lambda m: "server" in m, "the server line") == \
            {"server": addr(b.port), "event": "connected"}
    finally:
        a.proc.send_signal(signal.SIGCONT)


def test_send_past_a_frozen_first_server_within_its_timeout(start_server, procs):
    """With several --host, one attempt waits only its share of --timeout,
    so a frozen first server leaves time for the next within the command's
    own --timeout (4 s here: 2 s each)."""
    a, b = start_server(), start_server()
    l = procs("listen", "--id", 9, "--host", addr(b.port))
    l.wait_line(l.err, lambda s: s == "chat-client: listening as 9", "listening")
    a.proc.send_signal(signal.SIGSTOP)
    try:
        r = run("send", "--id", 1, "--to", 9, "--text", "past it", "--timeout", 4,
                "--host", addr(a.port), "--host", addr(b.port))
        assert r.returncode == 0, r.stderr.decode()
    finally:
        a.proc.send_signal(signal.SIGCONT)
    assert l.wait_json(lambda m: "text" in m, "the message")["text"] == "past it"


# -- (c) a lost ACK, a standby on the same data directory, no duplicate ----

class AckEater(CuttingProxy):
    """A CuttingProxy (test_cli_devices.py) that passes only the server's
    first frame (WELCOME) on each connection and swallows every later one
    (the ACK), as if it were lost when the server died. `swallowed` counts
    the connections whose ACK was eaten."""

    def __init__(self, server):
        self.swallowed = 0
        self.cond = threading.Condition()
        super().__init__(server)

    def _pump(self, src, dst, conn, from_client):
        if from_client:
            return super()._pump(src, dst, conn, from_client)
        buf, stage = b"", "welcome"  # -> "ack" -> "eaten"
        try:
            while (b := src.recv(65536)):
                if stage == "eaten":
                    continue  # swallowed: the client never sees it
                buf += b
                if stage == "welcome" and len(buf) >= S2C.size:
                    n = S2C.size + S2C.unpack(buf[:S2C.size])[2]
                    if len(buf) >= n:
                        dst.sendall(buf[:n])  # WELCOME goes through
                        buf, stage = buf[n:], "ack"
                if stage == "ack" and buf:
                    stage = "eaten"
                    with self.cond:
                        self.swallowed += 1
                        self.cond.notify_all()
        except OSError:
            pass
        self._close(conn)

    def wait_swallowed(self, n):
        with self.cond:
            assert self.cond.wait_for(lambda: self.swallowed >= n, DEADLINE), \
                f"{self.swallowed} of {n} ACKs seen"


def test_resend_to_a_standby_is_deduplicated(start_store_server, store_dir, procs):
    a = start_store_server()
    proxy = AckEater(a)
    b_port = free_port()
    texts = ["first", "second", "third"]
    # Three senders, each with its own client ids, through the proxy to A,
    # then B (not started yet) on A's data directory.
    senders = [procs("send", "--id", 1, "--to", 2, "--text", t, "--timeout", 30,
                     "--host", addr(proxy.port), "--host", addr(b_port))
               for t in texts]
    proxy.wait_swallowed(len(texts))  # A stored every one and acknowledged it
    assert all(s.proc.poll() is None for s in senders)  # ...but no one knows
    a.kill()
    proxy.close()
    b = start_store_server("--port", str(b_port), data_dir=store_dir)
    for s in senders:
        assert s.proc.wait(DEADLINE) == 0, s.err_lines
    # B acknowledged the resends without storing them again: the receiver
    # gets each message once, then the end mark sent after them.
    r = run("send", "--id", 1, "--to", 2, "--text", "end", "--host", addr(b.port))
    assert r.returncode == 0, r.stderr.decode()
    l = procs("listen", "--id", 2, "--host", addr(b.port))
    got = listen_texts(l, "end")
    assert sorted(got[:-1]) == sorted(texts), got


# -- (d) bad --host values ---------------------------------------------------

@pytest.mark.parametrize("value, why", [
    ("", "the host is empty"),
    (":8000", "the host is empty"),
    ("h:0", "the port must be 1-65535, not '0'"),
    ("h:65536", "the port must be 1-65535, not '65536'"),
    ("h:x", "the port must be 1-65535, not 'x'"),
    ("[::1", "'[' without ']'"),
    ("[::1]8000", "only ':PORT' may follow ']'"),
])
@pytest.mark.parametrize("cmd", [
    ["send", "--to", "2", "--text", "x"], ["listen"], ["group", "list"],
    ["history", "--with", "2"], ["read", "--with", "2", "--upto", "1"],
    ["typing", "--with", "2"], ["receipts", "--with", "2"]])
def test_bad_host_is_a_usage_error(cmd, value, why):
    r = run(*cmd, "--id", 1, "--host", "127.0.0.1", "--host", value)
    assert r.returncode == 2, r.stderr.decode()
    name = "group list" if cmd[0] == "group" else cmd[0]
    assert_one_sentence(r, f"chat-client: {name}: --host '{value}': {why} "
                           f"(see chat-client {name} --help)")


def test_at_most_16_hosts():
    hosts = [a for i in range(17) for a in ("--host", f"h{i}")]
    r = run("send", "--id", 1, "--to", 2, "--text", "x", *hosts)
    assert r.returncode == 2
    assert_one_sentence(r, "chat-client: send: at most 16 --host values "
                           "(see chat-client send --help)")


def test_interactive_takes_the_hosts_too():
    """The interactive mode parses --host with the common code (a bad value
    is refused before it asks for a terminal)."""
    r = run("--id", 1, "--host", "h:0")
    assert r.returncode == 2
    assert_one_sentence(r, "chat-client: interactive: --host 'h:0': the port must be "
                           "1-65535, not '0' (see chat-client interactive --help)")
