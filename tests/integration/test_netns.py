"""Protected mode and --max-conns-per-ip against a real non-loopback peer.

Two network namespaces joined by a veth pair: the server runs in one,
bound to 127.9.0.1 (a loopback address, so it may start with --auth off);
the client runs in the other with source address 10.9.0.2, routed to
127.9.0.1 (route_localnet lets 127/8 cross the veth). The server thus sees
a non-loopback peer on a loopback listener, which is what protected mode
must refuse. A second pair of namespaces carries IPv6 (fd00:9::/64 and
fd00:a::/64) for the per-/64 count of --max-conns-per-ip. Needs root and
iproute2; where the machine cannot make
namespaces the tests are skipped and say why.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import conftest
from conftest import require_binary
from proto import AUTH, BUSY, ERROR, WELCOME, parse_error

HERE = Path(__file__).resolve().parent
SRV_ADDR = "127.9.0.1"

# Runs in a namespace: connects `n` clients, each optionally sending HELLO,
# and prints for each the first frame's type (and ERROR code/reason) and
# whether the connection was then closed.
CLIENT = r"""
import json, socket, sys
sys.path.insert(0, sys.argv[1])
from proto import Client, ERROR, parse_error, ConnectionClosed
host, port, n, user, pw = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), \
    int(sys.argv[5]), sys.argv[6].encode()
out, keep = [], []
for i in range(n):
    c = Client(host, port, timeout=8)
    keep.append(c)
    r = {"src": c.sock.getsockname()[0]}
    c.send_hello(user + i, password=pw)
    f = c.read_frame()
    r["type"] = f.type
    if f.type == ERROR:
        e = parse_error(f.body)
        r["code"], r["reason"] = e.code, e.reason
        c.expect_eof()
        r["closed"] = True
    out.append(r)
print(json.dumps(out))
"""


def sh(*args, ns=None, check=True, **kw):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30,
                          check=check, **kw)


def namespace_pair(tag, configure):
    """Two namespaces joined by a veth pair (<tag>a in the server's, <tag>b in
    the client's), both links up, then configure(srv, cli, dev_a, dev_b).
    Yields (srv, cli); skips, saying why, where the machine cannot."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create network namespaces")
    srv, cli = f"{tag}s", f"{tag}c"
    try:
        sh("ip", "netns", "add", srv)
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"this machine cannot create network namespaces: "
                    f"{getattr(e, 'stderr', e)}".strip())
    try:
        sh("ip", "netns", "add", cli)
        sh("ip", "link", "add", f"{tag}a", "type", "veth", "peer", "name",
           f"{tag}b")
        sh("ip", "link", "set", f"{tag}a", "netns", srv)
        sh("ip", "link", "set", f"{tag}b", "netns", cli)
        for ns, dev in ((srv, f"{tag}a"), (cli, f"{tag}b")):
            sh("ip", "link", "set", "lo", "up", ns=ns)
            sh("ip", "link", "set", dev, "up", ns=ns)
        configure(srv, cli, f"{tag}a", f"{tag}b")
    except (OSError, subprocess.CalledProcessError) as e:
        for ns in (srv, cli):
            sh("ip", "netns", "del", ns, check=False)
        pytest.skip(f"cannot set up the veth pair: "
                    f"{getattr(e, 'stderr', e)}".strip())
    yield srv, cli
    for ns in (srv, cli):
        sh("ip", "netns", "del", ns, check=False)


def _ipv4(srv, cli, a, b):
    sh("ip", "addr", "add", "10.9.0.1/24", "dev", a, ns=srv)
    sh("ip", "addr", "add", f"{SRV_ADDR}/16", "dev", a, ns=srv)
    sh("ip", "addr", "add", "10.9.0.2/24", "dev", b, ns=cli)
    for ns, dev in ((srv, a), (cli, b)):
        sh("sysctl", "-qw", f"net.ipv4.conf.{dev}.route_localnet=1",
           "net.ipv4.conf.all.route_localnet=1", ns=ns)
    sh("ip", "route", "add", "127.9.0.0/16", "dev", b, ns=cli)


def _ipv6(srv, cli, a, b):
    sh("ip", "addr", "add", "fd00:9::1/64", "dev", a, "nodad", ns=srv)
    for addr in ("fd00:9::2/64", "fd00:9::3/64", "fd00:a::2/64"):
        sh("ip", "addr", "add", addr, "dev", b, "nodad", ns=cli)
    sh("ip", "-6", "route", "add", "fd00:a::/64", "dev", a, ns=srv)


@pytest.fixture(scope="module")
def netns():
    yield from namespace_pair(f"ct{os.getpid() % 100000}", _ipv4)


@pytest.fixture(scope="module")
def netns6():
    yield from namespace_pair(f"c6{os.getpid() % 100000}", _ipv6)


class NetnsServer(conftest.Server):
    """A chat-server started inside a network namespace, on `bind`."""

    def __init__(self, workdir, ns, args, bind=SRV_ADDR):
        real = conftest.subprocess.Popen

        def popen(cmd, **kw):
            return real(["ip", "netns", "exec", ns] + cmd, **kw)
        conftest.subprocess.Popen = popen
        try:
            super().__init__(workdir, ["--bind", bind, *args])
        finally:
            conftest.subprocess.Popen = real


@pytest.fixture
def ns_server(tmp_path, netns):
    started = []

    def start(*args, accounts=()):
        data = tmp_path / f"s{len(started)}" / "data"
        data.mkdir(parents=True)
        for uid, pw in accounts:
            r = subprocess.run([require_binary(), "user", "--data-dir",
                                str(data), "add", str(uid)], input=pw + "\n",
                               capture_output=True, text=True, timeout=30)
            assert r.returncode == 0, r.stderr
        s = NetnsServer(tmp_path / f"s{len(started)}", netns[0], list(args))
        started.append(s)
        return s
    yield start
    for s in started:
        s.teardown()


def clients(ns, srv, n=1, user=1, password=""):
    r = sh(sys.executable, "-c", CLIENT, str(HERE), srv.host, str(srv.port),
           str(n), str(user), password, ns=ns, check=False)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_protected_mode_refuses_a_non_loopback_peer(netns, ns_server):
    srv = ns_server()
    (r,) = clients(netns[1], srv)
    assert r["src"] == "10.9.0.2"
    assert r["type"] == ERROR and r["code"] == AUTH and r["closed"], r
    assert "protected mode" in r["reason"]
    assert srv.log_lines("peer=10.9.0.2")
    assert srv.log_lines("protected mode")
    # A client on the server's own host (loopback source) is served.
    (local,) = clients(netns[0], srv, user=5)
    assert local["type"] == WELCOME, local


# Runs in a namespace: GET /healthz from the HTTP listener; prints the
# status line and whether the server closed the connection after it.
HTTP_CLIENT = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from wsproto import HTTPConn
c = HTTPConn(sys.argv[2], int(sys.argv[3]), timeout=8)
c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
r = c.response()
c.expect_eof()
print(json.dumps({"src": c.sock.getsockname()[0], "status": r.status,
                  "body": r.body.decode()}))
"""


def test_protected_mode_applies_to_http(netns, ns_server):
    from wsproto import http_port
    srv = ns_server("--http-port", "auto")
    r = sh(sys.executable, "-c", HTTP_CLIENT, str(HERE), srv.host,
           str(http_port(srv)), ns=netns[1], check=False)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["src"] == "10.9.0.2"
    assert got["status"] == 403 and "protected mode" in got["body"], got


def test_auth_on_serves_the_same_peer_after_login(netns, ns_server):
    srv = ns_server("--auth", "on", accounts=[(1, "pw1")])
    (r,) = clients(netns[1], srv, user=1, password="pw1")
    assert r["type"] == WELCOME, r


def test_insecure_open_serves_it_without_login(netns, ns_server):
    srv = ns_server("--insecure-open")
    assert srv.log_lines("--insecure-open: any client")  # warned at start
    (r,) = clients(netns[1], srv)
    assert r["type"] == WELCOME, r


def test_connections_per_address_are_capped(netns, ns_server):
    srv = ns_server("--insecure-open", "--max-conns-per-ip", "2")
    rs = clients(netns[1], srv, n=3, user=10)
    assert [r["type"] for r in rs[:2]] == [WELCOME, WELCOME], rs
    assert rs[2]["type"] == ERROR and rs[2]["code"] == BUSY, rs
    assert "--max-conns-per-ip" in rs[2]["reason"]
    # Loopback peers are not counted (a local proxy may carry many users).
    local = clients(netns[0], srv, n=3, user=20)
    assert [r["type"] for r in local] == [WELCOME] * 3, local


# -- IPv6: connections are counted per /64 --------------------------------------

CLIENT6 = r"""
import json, socket, struct, sys
host, port = sys.argv[1], int(sys.argv[2])
out, keep = [], []
for i, src in enumerate(sys.argv[3:]):
    s = socket.socket(socket.AF_INET6)
    s.settimeout(8)
    s.bind((src, 0))
    s.connect((host, port))
    keep.append(s)
    s.sendall(struct.pack("!IIBI", 50 + i, 0, 0x80, 2) + bytes([1, 0]))
    hdr = b""
    while len(hdr) < 9:
        b = s.recv(9 - len(hdr))
        if not b:
            break
        hdr += b
    if len(hdr) < 9:
        out.append({"src": src, "type": None})
        continue
    _, t, n = struct.unpack("!IBI", hdr)
    body = b""
    while len(body) < n:
        body += s.recv(n - len(body))
    r = {"src": src, "type": t}
    if t == 0x83:
        r["code"] = struct.unpack("!H", body[:2])[0]
        r["reason"] = body[10:].decode()
    out.append(r)
print(json.dumps(out))
"""


def test_ipv6_peers_are_counted_per_64(netns6, tmp_path):
    srv = NetnsServer(tmp_path / "s6", netns6[0],
                      ["--insecure-open", "--max-conns-per-ip", "2"],
                      bind="fd00:9::1")
    try:
        r = sh(sys.executable, "-c", CLIENT6, "fd00:9::1", str(srv.port),
               "fd00:9::2", "fd00:9::3", "fd00:9::3", "fd00:a::2",
               ns=netns6[1], check=False)
        assert r.returncode == 0, r.stderr
        rs = json.loads(r.stdout)
        # Two addresses of one /64 share its count: the third is refused...
        assert [x["type"] for x in rs[:2]] == [WELCOME, WELCOME], rs
        assert rs[2]["type"] == ERROR and rs[2]["code"] == BUSY, rs
        assert "--max-conns-per-ip" in rs[2]["reason"]
        # ...while another /64 has a count of its own.
        assert rs[3]["type"] == WELCOME, rs
    finally:
        srv.teardown()
