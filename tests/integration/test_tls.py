"""TLS on --tls-port (docs/OPERATIONS.md, "TLS"): the server side, with
Python's ssl module as the client (chat-client's --tls: test_cli_tls.py)."""

import hashlib
import re
import socket
import ssl
import subprocess

import pytest

import tls_certs
from conftest import require_binary
from proto import (ACKS_FLAG, PICTURE, TEXT, WELCOME, Client, c2s,
                   read_data, wait_for_ack)

TLS_PORT = re.compile(r"TLS listening on \S+:(\d+)")


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return tls_certs.make(tmp_path_factory.mktemp("certs"))


class TlsClient(Client):
    """proto.Client over TLS, verifying the server against `ca`."""

    def __init__(self, host, port, ca, cert=None, key=None, name="127.0.0.1"):
        ctx = ssl.create_default_context(cafile=ca)
        if cert:
            ctx.load_cert_chain(cert, key)
        raw = socket.create_connection((host, port), timeout=10)
        self.timeout = 10
        self.sock = ctx.wrap_socket(raw, server_hostname=name)
        self.sock.settimeout(10)
        self.local_port = self.sock.getsockname()[1]
        self._buf = bytearray()


def start_tls(start_server, certs, *args, ca=None):
    extra = ["--tls-port", "0", "--tls-cert", certs["server"], "--tls-key",
             certs["server-key"]]
    if ca:
        extra += ["--tls-ca", ca]
    srv = start_server(*extra, *args)
    srv.tls_port = int(srv.wait_for_log(TLS_PORT).group(1))
    return srv


def test_round_trip_over_tls_with_the_client_verifying(start_server, certs):
    srv = start_tls(start_server, certs)
    t = TlsClient(srv.host, srv.tls_port, certs["ca"])
    srv.clients.append(t)
    assert t.sock.version() in ("TLSv1.2", "TLSv1.3")
    t.send_hello(1, flags=ACKS_FLAG)
    assert t.read_frame().type == WELCOME
    p = srv.client()  # a plaintext client on --port, same server
    p.send_hello(2)
    assert p.read_frame().type == WELCOME
    t.send_frame(1, 2, TEXT, b"over tls")
    assert read_data(p, 1)[0].body == b"over tls"
    wait_for_ack(t, 1)
    big = bytes(range(256)) * (4 * 4096)  # 4 MiB each way
    p.send_frame(2, 1, PICTURE, big)
    f = read_data(t, 1, timeout=30)[0]
    assert hashlib.sha256(f.body).digest() == hashlib.sha256(big).digest()
    t.send_frame(1, 2, PICTURE, big)
    f = read_data(p, 1, timeout=30)[0]
    assert hashlib.sha256(f.body).digest() == hashlib.sha256(big).digest()


def test_many_small_frames_in_order_over_tls(start_server, certs):
    srv = start_tls(start_server, certs)
    a = TlsClient(srv.host, srv.tls_port, certs["ca"])
    b = TlsClient(srv.host, srv.tls_port, certs["ca"])
    srv.clients += [a, b]
    b.send_hello(2)
    assert b.read_frame().type == WELCOME
    a.send_raw(b"".join(c2s(1, 2, TEXT, b"%d" % i) for i in range(3000)))
    got = read_data(b, 3000, timeout=30)
    assert [f.body for f in got] == [b"%d" % i for i in range(3000)]


def test_plaintext_client_on_the_tls_port_is_refused_cleanly(start_server, certs):
    srv = start_tls(start_server, certs)
    c = Client(srv.host, srv.tls_port)
    c.send_frame(1, 2, TEXT, b"not tls")
    c.expect_eof()  # (after a TLS alert, which is not a frame)
    srv.wait_for_log(re.compile(r"peer=127\.0\.0\.1:\d+ .*TLS failed: "
                                r"wrong version number"))
    # Nothing else suffered: both ports still serve.
    t = TlsClient(srv.host, srv.tls_port, certs["ca"])
    srv.clients.append(t)
    t.send_hello(3)
    assert t.read_frame().type == WELCOME


def test_login_over_tls(start_store_server, store_dir, certs):
    store_dir.mkdir(parents=True)
    r = subprocess.run([require_binary(), "user", "--data-dir", str(store_dir),
                        "add", "7"], input="pw7\n", capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    srv = start_tls(start_store_server, certs, "--auth", "on")
    t = TlsClient(srv.host, srv.tls_port, certs["ca"])
    srv.clients.append(t)
    t.send_hello(7, password=b"pw7")
    assert t.read_frame().type == WELCOME


def test_client_certificates_required_with_tls_ca(start_server, certs):
    srv = start_tls(start_server, certs, ca=certs["ca"])
    assert srv.log_lines("client certificates required")
    ok = TlsClient(srv.host, srv.tls_port, certs["ca"], certs["alice"],
                   certs["alice-key"])
    srv.clients.append(ok)
    ok.send_hello(1)
    assert ok.read_frame().type == WELCOME
    for cert, key in ((None, None), (certs["mallory"], certs["mallory-key"])):
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            c = TlsClient(srv.host, srv.tls_port, certs["ca"], cert, key)
            # TLS 1.3: the server's refusal arrives after the handshake.
            c.send_hello(2)
            c.read_frame()
    srv.wait_for_log("TLS failed: peer did not return a certificate")


@pytest.mark.parametrize("bad", ["missing", "mismatch"])
def test_bad_certificate_files_stop_the_start(tmp_path, certs, bad):
    key = str(tmp_path / "nope.key") if bad == "missing" else certs["evil-key"]
    r = subprocess.run([require_binary(), "--port", "0", "--data-dir",
                        str(tmp_path / "d"), "--tls-port", "0", "--tls-cert",
                        certs["server"], "--tls-key", key],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert "cannot set up TLS" in r.stderr and key in r.stderr, r.stderr
