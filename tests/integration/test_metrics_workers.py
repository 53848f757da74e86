"""--metrics-port (docs/OPERATIONS.md, "Metrics"): a plain HTTP listener
that serves /metrics and /healthz only. With --workers N, worker K listens
on the port + K - 1, reserved by the supervisor like the shared ports, so
that each worker is one Prometheus target: its page says which worker and
which node it is (chat_worker_info), and its counters are its own (the
shared --http-port reaches whichever worker the kernel picks)."""

import os
import re
import signal
import socket
import subprocess
import time

from conftest import require_binary
from convproto import plain
from proto import TEXT, ping_sync
from redisfix import redis_path  # noqa: F401 (a fixture test_cluster's use)
from test_cluster import node, redis  # noqa: F401 (fixtures)
from test_metrics import parse, promtool_check, value
from wsproto import HTTPConn, get

METRICS_ON = re.compile(r"metrics on (\S+):(\d+) \(plain HTTP")


def fetch(host, port, path, method="GET"):
    """One request on a fresh connection to host:port (Connection: close)."""
    c = HTTPConn(host, port)
    try:
        c.send(f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
               f"Connection: close\r\n\r\n".encode())
        return c.response(head=method == "HEAD")
    finally:
        c.close()


def scrape(host, port):
    r = fetch(host, port, "/metrics")
    assert r.status == 200, r
    assert r.header("content-type") == "text/plain; version=0.0.4; charset=utf-8"
    return r.body.decode()


def worker_info(samples):
    """(worker, node) of the page's chat_worker_info."""
    got = [dict(labels) for (name, labels), v in samples.items()
           if name == "chat_worker_info" and v == 1]
    assert len(got) == 1, f"chat_worker_info: {got}"
    return got[0]["worker"], got[0]["node"]


def free_ports(n):
    """A port P with P .. P+n-1 all free on 127.0.0.1 (tried, then let go)."""
    for _ in range(50):
        socks = []
        try:
            first = socket.socket()
            socks.append(first)
            first.bind(("127.0.0.1", 0))
            base = first.getsockname()[1]
            if base + n - 1 > 65535:
                continue
            for i in range(1, n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", base + i))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError(f"no {n} consecutive free ports")


def start_refused(*args):
    """Run chat-server with args, expecting it to refuse to start."""
    return subprocess.run([require_binary(), "--port", "0", *args],
                          capture_output=True, timeout=20)


# -- one process -----------------------------------------------------------------

def test_metrics_port_serves_metrics_and_health_only(start_server):
    srv = start_server("--metrics-port", "auto", "--http-port", "auto")
    m = srv.wait_for_log(METRICS_ON)
    host, port = m.group(1), int(m.group(2))
    text = scrape(host, port)
    samples = parse(text)
    assert value(samples, "chat_build_info", version="0.1.0") == 1
    # a single process says no worker
    assert not [k for k in samples if k[0] == "chat_worker_info"]
    r = fetch(host, port, "/healthz")
    assert (r.status, r.body) == (200, b'{"status":"ok"}\n'), r
    assert fetch(host, port, "/metrics", method="HEAD").status == 200
    # nothing else: not the web client, not its files, not /ws
    for path in ("/", "/index.html", "/ws", "/metricsx", "/healthz/"):
        r = fetch(host, port, path)
        assert r.status == 404, (path, r)
        assert b"serves /metrics and /healthz only" in r.body, (path, r)
    # the HTTP port still serves both, and the web client
    assert get(srv, "/metrics").status == 200
    assert get(srv, "/healthz").status == 200
    assert get(srv, "/").status == 200


def test_metrics_port_auto_refused_with_workers():
    p = start_refused("--cluster", "redis://127.0.0.1:1", "--workers", "2",
                      "--metrics-port", "auto")
    assert p.returncode == 2, p.stderr
    assert b"--metrics-port: auto is not for --workers" in p.stderr, p.stderr


# -- --workers ------------------------------------------------------------------------

def test_each_worker_answers_on_its_own_metrics_port(node, redis):
    base = free_ports(2)
    sup = node("--workers", "2", "--metrics-port", str(base))
    sup.wait_for_log(f"/metrics of worker 1 to 2 on ports {base} to {base + 1}")
    for k in (1, 2):
        sup.wait_for_log(f"worker {k}'s metrics on 127.0.0.1:{base + k - 1} ")
    pages = {k: scrape("127.0.0.1", base + k - 1) for k in (1, 2)}
    promtool_check(pages[1])
    infos = {k: worker_info(parse(pages[k])) for k in (1, 2)}
    assert [infos[k][0] for k in (1, 2)] == ["1", "2"], infos
    # two nodes in Redis, one per worker, each page naming its own
    assert int(redis.client().cmd("GET", "chat:nodes")) == 2
    assert {infos[1][1], infos[2][1]} == {"1", "2"}, infos

    # a client on whichever worker the kernel picked: its page alone
    # counts it, and its frames
    a = plain(sup, 100, flags=0)

    def live_tcp():
        return {k: value(parse(scrape("127.0.0.1", base + k - 1)),
                         "chat_connections", transport="tcp", state="live")
                for k in (1, 2)}

    # (LIVE once its first fetch is back: a moment after WELCOME)
    deadline = time.monotonic() + 10
    while sorted((counts := live_tcp()).values()) != [0, 1]:
        assert time.monotonic() < deadline, f"LIVE on no worker: {counts}"
        time.sleep(0.01)
    mine = next(k for k in (1, 2) if counts[k] == 1)
    other = 3 - mine
    before = {k: value(parse(scrape("127.0.0.1", base + k - 1)),
                       "chat_frames_received_total", type="text")
              for k in (1, 2)}
    for i in range(5):
        a.send_data(101, TEXT, b"to an offline user %d" % i)
    ping_sync(a, 100)  # the worker has handled all five
    after = {k: value(parse(scrape("127.0.0.1", base + k - 1)),
                      "chat_frames_received_total", type="text")
             for k in (1, 2)}
    assert after[mine] == before[mine] + 5, (before, after)
    assert after[other] == before[other], (before, after)


def test_a_restarted_worker_serves_its_metrics_port_again(node, redis):
    base = free_ports(2)
    sup = node("--workers", "2", "--metrics-port", str(base))
    pid1 = int(sup.wait_for_log(re.compile(r"worker 1: pid (\d+)")).group(1))
    sup.wait_for_log(f"worker 1's metrics on 127.0.0.1:{base} ")
    sup.wait_for_log(f"worker 2's metrics on 127.0.0.1:{base + 1} ")
    w1, n1 = worker_info(parse(scrape("127.0.0.1", base)))
    w2, n2 = worker_info(parse(scrape("127.0.0.1", base + 1)))
    assert (w1, w2) == ("1", "2") and n1 != n2
    os.kill(pid1, signal.SIGKILL)
    sup.wait_for_log(re.compile(
        rf"(?s)worker 1 restarted \(pid \d+\).*worker 1's metrics on "
        rf"127\.0\.0\.1:{base} "), timeout=10)
    # the new process (a new node of the cluster) on the same port
    w1b, n1b = worker_info(parse(scrape("127.0.0.1", base)))
    assert w1b == "1" and n1b not in (n1, n2), (n1, n2, n1b)
    assert worker_info(parse(scrape("127.0.0.1", base + 1))) == (w2, n2)


def test_a_taken_metrics_port_stops_the_start():
    base = free_ports(2)
    taken = socket.socket()
    try:
        taken.bind(("127.0.0.1", base + 1))
        taken.listen(1)
        p = start_refused("--cluster", "redis://127.0.0.1:1", "--workers", "2",
                          "--metrics-port", str(base))
    finally:
        taken.close()
    assert p.returncode == 1, p.stderr
    assert (f"--metrics-port: cannot bind 127.0.0.1:{base + 1} for worker 2's "
            f"metrics: Address already in use").encode() in p.stderr, p.stderr
    assert b"worker 1: pid" not in p.stderr  # no worker was started


def test_metrics_ports_must_not_meet_the_shared_ones():
    base = free_ports(2)
    p = start_refused("--cluster", "redis://127.0.0.1:1", "--workers", "2",
                      "--metrics-port", str(base), "--http-port",
                      str(base + 1))
    assert p.returncode == 1, p.stderr
    assert (f"the workers' metrics ports {base} to {base + 1} include "
            f"{base + 1}").encode() in p.stderr, p.stderr
    p = start_refused("--cluster", "redis://127.0.0.1:1", "--workers", "2",
                      "--metrics-port", "65535")
    assert p.returncode == 1, p.stderr
    assert b"need the ports 65535 to 65536, past 65535" in p.stderr, p.stderr
