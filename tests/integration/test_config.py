"""The config file, --check-config and live reload on SIGHUP
(docs/OPERATIONS.md, "Configuration" and "Reload")."""

import re
import shutil
import signal
import socket
import ssl
import subprocess

import pytest

import tls_certs
from conftest import require_binary
from proto import (ERROR, RATE, QUOTA, TEXT, c2s,
                   parse_error, read_data, wait_for_ack, ACKS_FLAG)

TLS_PORT = re.compile(r"TLS listening on \S+:(\d+)")


def run(*args, timeout=10):
    return subprocess.run([require_binary(), *args], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def write(path, text):
    path.write_text(text)
    return str(path)


def server_on(start_server, tmp_path, text):
    """A server started on a config file holding text; (server, its path)."""
    conf = tmp_path / "c.conf"
    write(conf, text)
    return start_server("--config", str(conf)), conf


def reload(srv, n):
    """SIGHUP, then wait until the server logged that reload n is done."""
    srv.proc.send_signal(signal.SIGHUP)
    return srv.wait_for_log(re.compile(r"reload %d: (\d+) settings changed, "
                                       r"(\d+) kept" % n))


# -- the file and --check-config --------------------------------------------

def test_check_config_prints_the_effective_settings(tmp_path):
    conf = write(tmp_path / "c.conf", "# limits\nrate-msgs 50\nport 9000\n"
                 "include more.conf\n")
    write(tmp_path / "more.conf", "max-frame 1M\n")
    r = run("--check-config", "--config", conf, "--port", "9001")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "settings are valid" in lines[0]
    assert "rate-msgs              50" in lines
    assert "port                   9001" in lines      # the flag wins
    assert "max-frame              1M" in lines
    assert "max-outbuf             65600K" in lines    # derived, 64M + 64K
    # the listing is itself a config file giving the same settings
    again = write(tmp_path / "again.conf", r.stdout)
    r2 = run("--check-config", "--config", again)
    assert r2.returncode == 0 and r2.stdout.splitlines()[2:] == lines[2:], r2


@pytest.mark.parametrize("text, words", [
    ("port 1\nbogus 2\n", ["c.conf:2:", "'bogus' is not a setting"]),
    ("\n\nrate-msgs lots\n", ["c.conf:3: rate-msgs:", "'lots' is not a count"]),
    ("max-frame\n", ["c.conf:1: max-frame: needs a value"]),
    ("config x.conf\n", ["c.conf:1: config: only on the command line"]),
    ("include missing.conf\n", ["c.conf:1: include:", "missing.conf: cannot read it"]),
    ("tls-port 8443\n", ["--tls-port: needs --tls-cert and --tls-key"]),
])
def test_a_bad_file_stops_the_start_with_file_and_line(tmp_path, text, words):
    conf = write(tmp_path / "c.conf", text)
    for args in (["--check-config", "--config", conf],
                 ["--config", conf, "--port", "0", "--data-dir",
                  str(tmp_path / "d")]):
        r = run(*args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        for w in words:
            assert w in r.stderr, (w, r.stderr)
        assert r.stderr.startswith("chat-server: ")
    assert not (tmp_path / "d").exists()    # nothing was started


def test_a_missing_file_stops_the_start(tmp_path):
    r = run("--config", str(tmp_path / "nope.conf"), "--port", "0")
    assert r.returncode == 2
    assert "nope.conf: cannot read it: No such file" in r.stderr


def test_check_config_loads_the_tls_files(tmp_path):
    bad = write(tmp_path / "bad.pem", "not a certificate\n")
    r = run("--check-config", "--tls-port", "0", "--tls-cert", bad,
            "--tls-key", bad)
    assert r.returncode == 2 and "bad.pem" in r.stderr, r.stderr


def test_server_runs_on_the_file_and_flags_win(start_server, tmp_path):
    conf = write(tmp_path / "c.conf", "offline-max-messages 1\nlog-level debug\n"
                 "max-frame 100\n")
    srv = start_server("--config", conf, "--max-frame", "200")
    assert "max frame 200 bytes" in srv.log()
    a = srv.client()
    a.hello(1)


# -- reload ---------------------------------------------------------------------

def test_reload_applies_a_new_rate_limit_to_open_connections(start_server, tmp_path):
    conf = tmp_path / "c.conf"
    write(conf, "rate-msgs 0\nrate-grace 30s\n")
    srv = start_server("--config", str(conf))
    a = srv.client()
    a.hello(1)
    b = srv.client()
    b.hello(2)
    # no limit: 3000 frames go through
    a.send_raw(b"".join(c2s(1, 2, TEXT, b"x") for _ in range(3000)))
    assert len(read_data(b, 3000)) == 3000
    write(conf, "rate-msgs 100\nrate-grace 30s\nhistory-ttl 1d\nport 1\n")
    m = reload(srv, 1)
    assert m.group(1) == "1" and m.group(2) == "1", srv.log()
    assert srv.log_lines("reload: rate-msgs 0 -> 100")
    assert srv.log_lines("history-ttl cannot change while the server runs")
    assert not srv.log_lines("reload: port")     # --port 0 wins over the file
    # the same connection is now over the new rate: ERROR RATE
    a.send_raw(b"".join(c2s(1, 2, TEXT, b"y") for _ in range(3000)))
    while True:
        f = a.read_frame(timeout=10)
        if f.type == ERROR:
            assert parse_error(f.body).code == RATE
            break
    assert srv.log_lines("over the rate limit")


def test_reload_of_a_quota(start_store_server, tmp_path):
    conf = tmp_path / "c.conf"
    write(conf, "offline-max-messages 100\n")
    s = start_store_server("--config", str(conf))
    a = s.client()
    a.hello(1, flags=ACKS_FLAG)
    a.send_raw(b"".join(c2s(1, 3, TEXT, b"q%d" % i) for i in range(3)))
    assert wait_for_ack(a, 3).errors == []
    write(conf, "offline-max-messages 4\n")
    reload(s, 1)
    assert s.log_lines("reload: offline-max-messages 100 -> 4")
    a.send_raw(b"".join(c2s(1, 3, TEXT, b"r%d" % i) for i in range(2)))
    r = wait_for_ack(a, 5)
    assert [(e.code, e.ref) for e, _ in r.errors] == [(QUOTA, 5)], r.errors


def test_a_bad_file_on_reload_changes_nothing(start_server, tmp_path):
    srv, conf = server_on(start_server, tmp_path, "rate-msgs 0\n")
    write(conf, "rate-msgs 5\nrate-grace soon\n")
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_for_log("reload: " + str(conf) + ":2: rate-grace: 'soon' is not a "
                     "duration")
    assert srv.log_lines("nothing changed")
    assert not srv.log_lines("rate-msgs 0 -> 5")
    write(conf, "rate-msgs 5\n")
    reload(srv, 1)      # the first reload that applied
    a = srv.client()
    a.hello(1)


class TlsClient:
    def __init__(self, port, ca):
        ctx = ssl.create_default_context(cafile=ca)
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")

    def subject_cn(self):
        subject = dict(x[0] for x in self.sock.getpeercert()["subject"])
        return subject["commonName"]

    def close(self):
        self.sock.close()


def test_reload_rotates_the_tls_certificate(start_server, tmp_path):
    d = tmp_path / "certs"
    certs = tls_certs.make(d)
    tls_certs._leaf(d, "renewed", "ca", "chat test server renewed",
                    san="IP:127.0.0.1,DNS:localhost")
    cert, key = tmp_path / "live.pem", tmp_path / "live.key"
    shutil.copy(certs["server"], cert)
    shutil.copy(certs["server-key"], key)
    conf = write(tmp_path / "c.conf", f"tls-port 0\ntls-cert {cert}\n"
                 f"tls-key {key}\n")
    srv = start_server("--config", conf)
    port = int(srv.wait_for_log(TLS_PORT).group(1))
    old = TlsClient(port, certs["ca"])
    assert old.subject_cn() == "chat test server"
    # a client on the old identity chats through the reload
    from test_tls import TlsClient as ChatTls
    t = ChatTls(srv.host, port, certs["ca"])
    srv.clients.append(t)
    t.hello(1)
    p = srv.client()
    p.hello(2)
    shutil.copy(d / "renewed.pem", cert)
    shutil.copy(d / "renewed.key", key)
    reload(srv, 1)
    assert srv.log_lines("TLS certificate " + str(cert) + " loaded")
    new = TlsClient(port, certs["ca"])
    assert new.subject_cn() == "chat test server renewed"
    assert old.subject_cn() == "chat test server"
    t.send_frame(1, 2, TEXT, b"still here")
    assert read_data(p, 1)[0].body == b"still here"
    p.send_frame(2, 1, TEXT, b"and back")
    assert read_data(t, 1)[0].body == b"and back"
    # a bad new file keeps the identity the server has
    write(key, "garbage\n")
    reload(srv, 2)
    assert srv.log_lines("TLS keeps the certificate it had")
    again = TlsClient(port, certs["ca"])
    assert again.subject_cn() == "chat test server renewed"
    for c in (old, new, again):
        c.close()


def test_the_settings_table_of_the_docs_is_the_source_s(tmp_path):
    """docs/OPERATIONS.md's table is build/settings-doc markdown (the table
    of src/server/config.c): `make docs-settings` rewrites it."""
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    tool = Path(require_binary()).parent / "settings-doc"
    r = subprocess.run(["/usr/bin/python3", str(root / "scripts/settings_table.py"),
                        str(tool), str(root / "docs/OPERATIONS.md"), "--check"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    # and --help names every setting the table has
    doc = (root / "docs/OPERATIONS.md").read_text()
    block = doc.split("<!-- settings: made by")[1].split("<!-- settings: end")[0]
    names = re.findall(r"^\| `([a-z-]+)` \|", block, re.M)
    assert len(names) >= 30
    out = run("--help").stdout
    for n in names:
        assert "--" + n in out, n


def test_reload_of_origins_max_connections_and_log_level(start_server, tmp_path):
    from test_security import expect_error_then_eof
    from test_ws import handshake
    from proto import BUSY
    conf = tmp_path / "c.conf"
    write(conf, "http-port auto\nlog-level info\n")
    srv = start_server("--config", str(conf))
    c, r = handshake(srv, extra={"Origin": "https://chat.example.com"})
    assert r.status == 403, r
    c.close()
    held = srv.client()
    held.hello(1)
    write(conf, "http-port auto\nhttp-allow-origin https://chat.example.com\n"
          "max-connections 1\nlog-level debug\n")
    m = reload(srv, 1)
    assert m.group(1) == "3", srv.log()
    for line in ("http-allow-origin (none) -> https://chat.example.com",
                 "max-connections 100000 -> 1", "log-level info -> debug"):
        assert srv.log_lines("reload: " + line), line
    # the held connection stays; a second is over the new limit
    e = expect_error_then_eof(srv.client(), BUSY)
    assert "--max-connections" in e.reason
    held.close()
    srv.clients.remove(held)
    write(conf, "http-port auto\nhttp-allow-origin https://chat.example.com\n"
          "log-level debug\n")
    reload(srv, 2)
    c, r = handshake(srv, extra={"Origin": "https://chat.example.com"})
    assert r.status == 101, r
    c.close()
    # at debug the server logs what it logs only at debug (a close)
    srv.wait_for_log(re.compile(r"DEBUG .*clos", re.I))


def test_reload_switches_the_log_format(start_server, tmp_path):
    import json
    srv, conf = server_on(start_server, tmp_path, "log-format text\n")
    write(conf, "log-format json\n")
    srv.proc.send_signal(signal.SIGHUP)
    line = srv.wait_for_log(re.compile(r'^\{.*"event":"reloaded".*\}$', re.M)).group(0)
    ev = json.loads(line)
    assert ev["level"] == "info" and ev["msg"].startswith("reload 1: 1 settings")
    assert srv.log_lines("reload: log-format text -> json")   # the last text line
