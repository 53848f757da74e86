"""chat-client TLS flags: usage errors (exit 2, one sentence) and unusable
TLS files (exit 1, one sentence naming the file), in every mode. No server
is needed: every case fails before any connection.

The TLS round trips themselves are unit-tested against an in-process TLS
server (tests/unit/test_libchat_tls.c).
"""

import pytest

from test_cli_client import assert_one_sentence, run

# Arguments each mode needs besides the flag under test. The interactive
# mode checks its flags before it asks for a terminal.
MODES = {
    "send": ["send", "--id", 1, "--to", 2, "--text", "hi"],
    "listen": ["listen", "--id", 1],
    "interactive": ["--id", 1],
}


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("flags,needle", [
    (["--ca", "ca.pem"], "--ca needs --tls"),
    (["--server-name", "example.org"], "--server-name needs --tls"),
    (["--cert", "c.pem", "--key", "k.pem"], "--cert needs --tls"),
    (["--tls", "--cert", "c.pem"], "--cert needs --key"),
    (["--tls", "--key", "k.pem"], "--key needs --cert"),
    (["--tls", "--server-name", ""], "--server-name must not be empty"),
    (["--tls", "--ca"], "--ca needs a value"),
])
def test_tls_usage_errors(mode, flags, needle):
    r = run(*MODES[mode], *flags)
    assert r.returncode == 2, r.stderr
    line = assert_one_sentence(r)
    assert needle in line, line
    assert "--help" in line, line


@pytest.mark.parametrize("mode", ["send", "listen"])
def test_tls_missing_ca_file(mode, tmp_path):
    missing = tmp_path / "nope.pem"
    r = run(*MODES[mode], "--port", 1, "--tls", "--ca", missing)
    assert r.returncode == 1, r.stderr
    line = assert_one_sentence(r)
    assert line == (f"chat-client: TLS: cannot load the CA file {missing}: "
                    "No such file or directory"), line


def test_tls_ca_file_not_pem(tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    r = run(*MODES["send"], "--port", 1, "--tls", "--ca", bad)
    assert r.returncode == 1, r.stderr
    line = assert_one_sentence(r)
    assert line.startswith(f"chat-client: TLS: cannot load the CA file {bad}: "), line


def test_tls_flags_in_help():
    for mode in ("send", "listen"):
        out = run(mode, "--help").stdout.decode()
        for flag in ("--tls", "--ca FILE", "--server-name NAME", "--cert FILE",
                     "--key FILE"):
            assert flag in out, (mode, flag)
    assert "--tls" in run("--id", 1, "--help").stdout.decode()
    assert "--tls" in run("--help").stdout.decode()
