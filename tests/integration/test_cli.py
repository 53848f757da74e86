"""Command line and start-up log."""

import re
import subprocess

import pytest

from conftest import require_binary

FLAGS = ["--bind", "--port", "--echo", "--data-dir", "--max-frame",
         "--max-outbuf", "--log-level", "--help", "--version"]


def run(*args, cwd=None):
    return subprocess.run([require_binary(), *args], capture_output=True,
                          text=True, timeout=5, stdin=subprocess.DEVNULL, cwd=cwd)


def test_help_lists_every_flag_with_its_default(tmp_path):
    r = run("--help", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for flag in FLAGS:
        assert flag in out, f"--help does not mention {flag}:\n{out}"
    for default in ["8888", "127.0.0.1", "chat-data"]:
        assert default in out, f"--help does not show default {default}:\n{out}"
    assert re.search(r"\(default\s+16M\)", out), f"no max-frame default:\n{out}"
    assert re.search(r"64M\s+\+\s+64K", out), f"no max-outbuf default:\n{out}"


def test_version_exits_0(tmp_path):
    r = run("--version", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.strip(), (r.stdout, r.stderr)


@pytest.mark.parametrize("args, flag", [
    (["--bogus"], "--bogus"),
    (["--port", "99999"], "--port"),
    (["--port", "abc"], "--port"),
    (["--max-frame", "abc"], "--max-frame"),
    (["--max-outbuf", "12x"], "--max-outbuf"),
    (["--log-level", "loud"], "--log-level"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_flag_exits_2_with_one_line_naming_it(tmp_path, args, flag):
    # --port 0 keeps a server that wrongly starts from clashing on 8888.
    extra = [] if flag == "--port" else ["--port", "0"]
    try:
        r = run(*extra, "--data-dir", str(tmp_path / "d"), *args, cwd=tmp_path)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{args} did not make the server exit")
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected a one-line error, got:\n{r.stderr}"
    assert flag in lines[0], lines[0]


def test_startup_log_says_where_and_which_store(start_server):
    server = start_server()
    log = server.log()
    assert f"listening on 127.0.0.1:{server.port}" in log
    assert re.search(r"store: sqlite \S*/chat\.db", log), log
    first = log.splitlines()[0]
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:?00) "
                    r"(ERROR|WARN|INFO|DEBUG) \S", first, re.IGNORECASE), first


def test_connection_events_name_the_peer(start_server):
    server = start_server("--log-level", "debug")
    c = server.client()
    c.hello(5)
    server.wait_for_log(f"peer=127.0.0.1:{c.local_port}")
