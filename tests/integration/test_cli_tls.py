"""chat-client (libchat) against the real server over TLS, and with logins:
the client verifies the server's certificate and host name, presents a
client certificate when asked, and logs in with --password-file."""

import subprocess
from types import SimpleNamespace

import pytest

import tls_certs
from conftest import require_binary
from test_cli_client import assert_one_sentence, listen, listeners, run  # noqa: F401
from test_tls import start_tls


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return tls_certs.make(tmp_path_factory.mktemp("certs"))


def tls_port_of(srv):
    return SimpleNamespace(port=srv.tls_port)


def start_with(start_server, certs, cert, key, *args):
    c = dict(certs, server=certs[cert], **{"server-key": certs[key]})
    return start_tls(start_server, c, *args)


def test_send_and_listen_over_tls(start_server, certs, listeners):
    srv = start_tls(start_server, certs)
    l = listen(listeners, tls_port_of(srv), 2, "--count", "1", "--tls",
               "--ca", certs["ca"])
    r = run("send", "--port", srv.tls_port, "--id", 1, "--to", 2, "--text",
            "secret hello", "--tls", "--ca", certs["ca"])
    assert r.returncode == 0, r.stderr
    rc, msgs = l.finish()
    assert rc == 0
    assert [(m["from"], m["text"]) for m in msgs] == [(1, "secret hello")]


def test_server_name_option_and_localhost(start_server, certs):
    srv = start_tls(start_server, certs)
    r = run("send", "--port", srv.tls_port, "--id", 1, "--to", 2, "--text",
            "x", "--tls", "--ca", certs["ca"], "--server-name", "localhost")
    assert r.returncode == 0, r.stderr


def test_untrusted_certificate_is_refused_by_the_client(start_server, certs):
    srv = start_with(start_server, certs, "evil", "evil-key")
    r = run("send", "--port", srv.tls_port, "--id", 1, "--to", 2, "--text",
            "must not leave", "--tls", "--ca", certs["ca"])
    line = assert_one_sentence(r)
    assert r.returncode == 1
    assert "certificate verify failed" in line, line


def test_wrong_host_certificate_is_refused_by_the_client(start_server, certs):
    srv = start_with(start_server, certs, "wronghost", "wronghost-key")
    r = run("send", "--port", srv.tls_port, "--id", 1, "--to", 2, "--text",
            "must not leave", "--tls", "--ca", certs["ca"])
    line = assert_one_sentence(r)
    assert r.returncode == 1
    assert "certificate verify failed" in line and "mismatch" in line, line


def test_client_certificate_presented_when_required(start_server, certs):
    srv = start_tls(start_server, certs, ca=certs["ca"])
    ok = run("send", "--port", srv.tls_port, "--id", 1, "--to", 2, "--text",
             "with cert", "--tls", "--ca", certs["ca"], "--cert",
             certs["alice"], "--key", certs["alice-key"])
    assert ok.returncode == 0, ok.stderr
    r = run("send", "--port", srv.tls_port, "--id", 1, "--to", 2, "--text",
            "no cert", "--tls", "--ca", certs["ca"], "--timeout", "3")
    assert_one_sentence(r)
    assert r.returncode == 1


def test_plaintext_client_on_tls_port_fails_with_a_hint(start_server, certs):
    srv = start_tls(start_server, certs)
    r = run("send", "--port", srv.tls_port, "--id", 1, "--to", 2, "--text",
            "x", "--timeout", "3")
    line = assert_one_sentence(r)
    assert "--tls" in line, line


# -- logins --------------------------------------------------------------------

@pytest.fixture
def auth_srv(start_store_server, store_dir):
    store_dir.mkdir(parents=True)
    for uid, pw in ((1, "pw one"), (2, "pw two")):
        r = subprocess.run([require_binary(), "user", "--data-dir",
                            str(store_dir), "add", str(uid)], input=pw + "\n",
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
    return start_store_server("--auth", "on")


def test_login_with_password_file(auth_srv, tmp_path, listeners):
    p1, p2 = tmp_path / "p1", tmp_path / "p2"
    p1.write_text("pw one\n")
    p2.write_text("pw two\n")
    l = listen(listeners, auth_srv, 2, "--count", "1", "--password-file", p2)
    r = run("send", "--port", auth_srv.port, "--id", 1, "--to", 2, "--text",
            "logged in", "--password-file", p1)
    assert r.returncode == 0, r.stderr
    rc, msgs = l.finish()
    assert rc == 0 and [m["text"] for m in msgs] == ["logged in"]


def test_wrong_password_is_one_sentence(auth_srv, tmp_path):
    p = tmp_path / "p"
    p.write_text("not it\n")
    r = run("send", "--port", auth_srv.port, "--id", 1, "--to", 2, "--text",
            "x", "--password-file", p)
    line = assert_one_sentence(r)
    assert r.returncode == 1
    assert "wrong user id or password" in line, line


def test_no_password_against_auth_server(auth_srv):
    r = run("send", "--port", auth_srv.port, "--id", 1, "--to", 2, "--text", "x")
    line = assert_one_sentence(r)
    assert r.returncode == 1
    assert "password" in line, line


def test_password_file_errors_are_usage_errors(tmp_path):
    r = run("send", "--id", 1, "--to", 2, "--text", "x", "--password-file",
            tmp_path / "missing")
    assert r.returncode == 2
    assert "--password-file" in assert_one_sentence(r)
