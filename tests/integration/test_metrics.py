"""GET /metrics: the Prometheus text format, checked by Debian's promtool
(`promtool check metrics`), and its values after known traffic."""

import re
import shutil
import subprocess
import time

import pytest

from proto import (ACKS_FLAG, BADTYPE, PICTURE, TEXT, VOICE, ping_sync,
                   read_data, wait_for_ack)
from wsproto import WSClient, get

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def scrape(srv):
    r = get(srv, "/metrics")
    assert r.status == 200, r
    assert r.header("content-type") == "text/plain; version=0.0.4; charset=utf-8"
    return r.body.decode()


def parse(text):
    """{(name, frozenset(labels)): value}"""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"bad sample line {line!r}"
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(samples, name, **labels):
    key = (name, frozenset(labels.items()))
    assert key in samples, f"no sample {name}{labels}"
    return samples[key]


def promtool_check(text):
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: `make deps` installs Debian's prometheus"
    r = subprocess.run([promtool, "check", "metrics"], input=text,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), \
        f"promtool check metrics:\n{r.stdout}{r.stderr}"


def test_metrics_after_known_traffic(start_server):
    srv = start_server("--http-port", "auto", "--max-frame", "64K")
    before = parse(scrape(srv))
    assert value(before, "chat_users_online") == 0

    a, b = srv.client(), WSClient(srv)
    a.hello(1, flags=ACKS_FLAG)
    b.hello(2)
    # Wait until both are LIVE (a receiver that just logged in is SYNC
    # until its first fetch is back, and frames meanwhile take the store).
    deadline = time.monotonic() + 10
    while True:
        m = parse(scrape(srv))
        if value(m, "chat_connections", transport="ws", state="live") == 1 and \
                value(m, "chat_connections", transport="tcp", state="live") == 1:
            break
        assert time.monotonic() < deadline, "the clients never became LIVE"
        time.sleep(0.01)
    for i in range(3):
        a.send_frame(1, 2, TEXT, b"t%d" % i)
    a.send_frame(1, 2, PICTURE, b"p" * 1000)
    a.send_frame(1, 3, VOICE, b"v" * 10)        # user 3 is offline: stored
    a.send_frame(1, 2, 0x42, b"?")              # unknown type: ERROR BADTYPE
    wait_for_ack(a, 5)
    got = read_data(b, 4)
    assert [f.type for f in got] == [TEXT] * 3 + [PICTURE]
    ping_sync(b, 2)
    m = parse(scrape(srv))
    assert value(m, "chat_users_online") == 2
    assert value(m, "chat_connections", transport="tcp", state="live") == 1
    assert value(m, "chat_connections", transport="ws", state="live") == 1
    assert value(m, "chat_frames_received_total", type="text") == 3
    assert value(m, "chat_frames_received_total", type="picture") == 1
    assert value(m, "chat_frames_received_total", type="voice") == 1

    def delivered(t):
        return (value(m, "chat_frames_delivered_total", type=t, path="live"),
                value(m, "chat_frames_delivered_total", type=t, path="stored"))
    assert delivered("text") == (3, 0)
    assert delivered("picture") == (1, 0)
    assert delivered("voice") == (0, 0)
    assert value(m, "chat_frames_held_total") == 1
    assert value(m, "chat_stored_messages") >= 1  # (live copies for ACKs too)
    assert value(m, "chat_errors_sent_total", code=str(BADTYPE)) == 1
    assert value(m, "chat_websocket_upgrades_total") == 1
    assert value(m, "chat_delivery_latency_seconds_count") == 4
    assert value(m, "chat_store_transactions_total", result="ok") >= 1
    assert value(m, "chat_store_transaction_seconds_count") == \
        value(m, "chat_store_transactions_total", result="ok") + \
        value(m, "chat_store_transactions_total", result="failed")
    assert value(m, "chat_received_bytes_total") > 1000
    assert value(m, "process_resident_memory_bytes") > 1e6
    assert value(m, "chat_http_requests_total") >= 2  # (scrapes, the upgrade)

    c = srv.client()
    c.hello(3)
    assert read_data(c, 1)[0].body == b"v" * 10
    ping_sync(c, 3)
    m = parse(scrape(srv))
    assert value(m, "chat_frames_delivered_total", type="voice", path="stored") == 1
    assert value(m, "chat_users_online") == 3


def test_promtool_accepts_metrics_of_a_loaded_server(start_server):
    srv = start_server("--http-port", "auto")
    rx = srv.client()
    rx.hello(2)
    tx = srv.client()
    tx.hello(1, flags=ACKS_FLAG)
    for i in range(500):
        tx.send_frame(1, 2 if i % 2 else 9, TEXT, b"%d" % i)
    wait_for_ack(tx, 500)
    text = scrape(srv)
    promtool_check(text)
    # Every family has HELP and TYPE; no user id appears as a label.
    names = {l.split()[2] for l in text.splitlines() if l.startswith("# TYPE")}
    helps = {l.split()[2] for l in text.splitlines() if l.startswith("# HELP")}
    assert names == helps
    assert all(n.startswith(("chat_", "process_")) for n in names)
    assert "user" not in {k for (_, labels) in parse(text) for k, _ in labels}


def test_promtool_would_catch_a_bad_exposition():
    """The check above can fail: promtool rejects a counter without
    _total and a malformed line."""
    promtool = shutil.which("promtool")
    assert promtool
    r = subprocess.run([promtool, "check", "metrics"],
                       input="# HELP x_bytes b\n# TYPE x_bytes counter\nx_bytes 1\n",
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 or r.stdout.strip() or r.stderr.strip()
    with pytest.raises(AssertionError):
        promtool_check("not a metric line\n")


def test_docs_list_exactly_the_families_served(start_server):
    """docs/OPERATIONS.md's table of metrics names every family /metrics
    serves, and nothing else."""
    from conftest import REPO
    doc = (REPO / "docs" / "OPERATIONS.md").read_text()
    table = doc[doc.index("### Metrics"):doc.index("## Logs")]
    documented = set(re.findall(r"`((?:chat|process)_[a-z_]+)`", table))
    # (served by --workers' workers alone: test_metrics_workers.py)
    documented.remove("chat_worker_info")
    srv = start_server("--http-port", "auto")
    text = scrape(srv)
    served = {l.split()[2] for l in text.splitlines() if l.startswith("# TYPE")}
    assert documented == served, (documented - served, served - documented)
