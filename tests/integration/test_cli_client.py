"""chat-client send / listen: round trips through the real server, JSON lines,
media files, exit codes and the one-sentence error messages.

The client binary comes from $CHAT_CLIENT (default <repo>/build/chat-client).
"""

import hashlib
import json
import os
import queue
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from conftest import REPO
from proto import TEXT

CLIENT = Path(os.environ.get("CHAT_CLIENT", REPO / "build" / "chat-client"))
DEADLINE = 20.0


def client_bin():
    if not (CLIENT.is_file() and os.access(CLIENT, os.X_OK)):
        pytest.fail(f"client binary {CLIENT} is missing: build it with `make` "
                    f"or point $CHAT_CLIENT at it", pytrace=False)
    return str(CLIENT)


def run(*args, timeout=DEADLINE, cwd=None):
    return subprocess.run([client_bin(), *map(str, args)], capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=timeout, cwd=cwd)


def send(server, *args, **kw):
    return run("send", "--port", server.port, *args, **kw)


def assert_one_sentence(r, expected=None):
    """Non-zero exit and exactly one line on stderr, starting with chat-client:."""
    err = r.stderr.decode()
    assert r.returncode != 0, f"expected failure, got 0; stderr={err!r}"
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {lines!r}"
    assert lines[0].startswith("chat-client: "), lines[0]
    if expected is not None:
        assert lines[0] == expected, lines[0]
    return lines[0]


class Listener:
    """`chat-client listen` in the background; ready once it said so on stderr."""

    def __init__(self, server, user, *args, cwd=None):
        self.proc = subprocess.Popen(
            [client_bin(), "listen", "--port", str(server.port), "--id", str(user),
             *map(str, args)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, cwd=cwd)
        self.stderr_lines = []
        self._q = queue.Queue()
        self._t = threading.Thread(target=self._read_stderr, daemon=True)
        self._t.start()
        self.wait_stderr(f"chat-client: listening as {user}")

    def _read_stderr(self):
        for line in self.proc.stderr:
            line = line.decode("utf-8", "replace").rstrip("\n")
            self.stderr_lines.append(line)
            self._q.put(line)
        self._q.put(None)

    def wait_stderr(self, expected, timeout=DEADLINE):
        while True:
            try:
                line = self._q.get(timeout=timeout)
            except queue.Empty:
                self.proc.kill()
                pytest.fail(f"no {expected!r} on listen's stderr within {timeout}s")
            if line is None:
                pytest.fail(f"listen exited ({self.proc.wait()}) before {expected!r}: "
                            f"{self.stderr_lines!r}")
            if line == expected:
                return

    def finish(self, timeout=DEADLINE):
        """Wait for exit; return (exit code, list of parsed JSON lines)."""
        try:
            out = self.proc.stdout.read()
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail("listen did not exit")
        self._t.join(timeout)
        text = out.decode("utf-8")  # the output itself must be valid UTF-8
        return rc, [json.loads(l) for l in text.splitlines()]

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def listeners():
    made = []
    yield made
    for l in made:
        l.kill()


def listen(listeners, server, user, *args, **kw):
    l = Listener(server, user, *args, **kw)
    listeners.append(l)
    return l


# -- round trips -----------------------------------------------------------

TEXTS = ["你好，世界！聊天服务器", "Привет, мир! Ёж", "שלום עולם", "emoji 😀👍🏽🇫🇷 ok",
         'quote " backslash \\ tab \t newline \n end']


def test_text_round_trip_in_many_scripts(server, listeners):
    l = listen(listeners, server, 2, "--count", len(TEXTS))
    for t in TEXTS:
        r = send(server, "--id", 1, "--to", 2, "--text", t)
        assert r.returncode == 0, r.stderr.decode()
        assert r.stderr == b"" and r.stdout == b""
    rc, msgs = l.finish()
    assert rc == 0, l.stderr_lines
    assert [core(m) for m in msgs] == [{"from": 1, "type": "text", "text": t}
                                       for t in TEXTS]
    ids = [m["id"] for m in msgs]  # (CONV: the server's ids, increasing)
    assert ids == sorted(set(ids)) and all(m["to"] == 2 for m in msgs)


def core(m):
    """A listen line without its CONV fields (server id, receiver)."""
    return {k: v for k, v in m.items() if k not in ("id", "to")}


def test_json_escaping_of_raw_bytes(server, listeners):
    """Control characters are escaped, invalid UTF-8 becomes U+FFFD as Python's
    errors="replace" does, valid UTF-8 stays as it is."""
    l = listen(listeners, server, 2, "--count", 1)
    body = (b'a"b\\c\n\r\t\x01\x1f\x7f|\xff|\xe4\xb8|\xc3\xa9|\xed\xa0\x80|'
            b'\xf0\x9f\x98|\xc0\xaf|\xe2\x82\xac')
    raw = server.client()
    raw.send_frame(5, 2, TEXT, body)  # the article's client: no HELLO
    out = l.proc.stdout.readline()
    assert b"\\u0001" in out and b"\\u001f" in out, out
    assert "é".encode() in out and "€".encode() in out, out  # kept as UTF-8
    assert core(json.loads(out)) == {"from": 5, "type": "text",
                                     "text": body.decode("utf-8", "replace")}
    assert l.proc.wait(DEADLINE) == 0


def test_video_20mib_byte_exact(start_server, listeners, tmp_path):
    server = start_server("--max-frame", "32M")
    save = tmp_path / "saved"
    save.mkdir()
    video = tmp_path / "clip.mp4"
    data = os.urandom(20 * 1024 * 1024)
    video.write_bytes(data)
    l = listen(listeners, server, 2, "--count", 1, "--save-dir", save)
    r = send(server, "--id", 1, "--to", 2, "--file", video)
    assert r.returncode == 0, r.stderr.decode()
    rc, msgs = l.finish()
    assert rc == 0, l.stderr_lines
    assert len(msgs) == 1 and msgs[0]["from"] == 1 and msgs[0]["type"] == "video"
    assert msgs[0]["bytes"] == len(data)
    saved = Path(msgs[0]["file"])
    assert saved.parent == save
    assert hashlib.sha256(saved.read_bytes()).digest() == hashlib.sha256(data).digest()


def test_media_type_flag_and_unique_names(server, listeners, tmp_path):
    f = tmp_path / "notes.dat"
    f.write_bytes(b"\x89PNG\r\n\x1a\n" + b"x" * 100)
    l = listen(listeners, server, 2, "--count", 2, "--save-dir", tmp_path)
    for _ in range(2):
        r = send(server, "--id", 1, "--to", 2, "--file", f, "--type", "picture")
        assert r.returncode == 0, r.stderr.decode()
    rc, msgs = l.finish()
    assert rc == 0
    assert [m["type"] for m in msgs] == ["picture", "picture"]
    assert [Path(m["file"]).name for m in msgs] == ["picture-from1-0001.png",
                                                     "picture-from1-0002.png"]
    for m in msgs:
        assert Path(m["file"]).read_bytes() == f.read_bytes()


def test_stored_for_absent_user_then_listen(server, listeners):
    r = send(server, "--id", 1, "--to", 7, "--text", "while you were away ✉")
    assert r.returncode == 0, r.stderr.decode()
    l = listen(listeners, server, 7, "--count", 1)
    rc, msgs = l.finish()
    assert rc == 0
    assert [core(m) for m in msgs] == [
        {"from": 1, "type": "text", "text": "while you were away ✉"}]
    # Acknowledged before exit: a second session gets nothing again.
    l2 = listen(listeners, server, 7, "--count", 1)
    r = send(server, "--id", 1, "--to", 7, "--text", "second")
    assert r.returncode == 0
    rc, msgs = l2.finish()
    assert rc == 0 and [core(m) for m in msgs] == [
        {"from": 1, "type": "text", "text": "second"}]


def test_send_no_acks(server, listeners):
    l = listen(listeners, server, 2, "--count", 1)
    r = send(server, "--id", 1, "--to", 2, "--text", "article style", "--no-acks")
    assert r.returncode == 0, r.stderr.decode()
    rc, msgs = l.finish()
    assert rc == 0 and [core(m) for m in msgs] == [
        {"from": 1, "type": "text", "text": "article style"}]


# -- send failures -----------------------------------------------------------

def test_send_missing_file(server, tmp_path):
    missing = tmp_path / "nope.mp4"
    r = send(server, "--id", 1, "--to", 2, "--file", missing)
    assert r.returncode == 1
    assert_one_sentence(r, f"chat-client: cannot read {missing}: No such file or directory")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_send_connection_refused():
    port = free_port()
    r = run("send", "--port", port, "--id", 1, "--to", 2, "--text", "hi")
    assert r.returncode == 1
    assert_one_sentence(r, f"chat-client: cannot connect to 127.0.0.1:{port}: "
                           "connection refused (is chat-server running?)")


def test_listen_connection_refused():
    port = free_port()
    r = run("listen", "--port", port, "--id", 1)
    assert r.returncode == 1 and r.stdout == b""
    assert_one_sentence(r, f"chat-client: cannot connect to 127.0.0.1:{port}: "
                           "connection refused (is chat-server running?)")


def test_send_too_large(start_server, tmp_path):
    server = start_server("--max-frame", "1024")
    f = tmp_path / "big.png"
    f.write_bytes(b"\0" * 2000)
    r = send(server, "--id", 1, "--to", 2, "--file", f)
    assert r.returncode == 1
    line = assert_one_sentence(r)
    assert "too large" in line and "2000" in line and "1024" in line, line
    r = send(server, "--id", 1, "--to", 2, "--text", "x" * 1500)
    assert r.returncode == 1
    assert "too large" in assert_one_sentence(r)


def test_send_unknown_extension(server, tmp_path):
    f = tmp_path / "report.pdf"
    f.write_bytes(b"%PDF")
    r = send(server, "--id", 1, "--to", 2, "--file", f)
    assert r.returncode == 2
    line = assert_one_sentence(r)
    assert "report.pdf" in line and "--type" in line, line


def test_send_timeout_when_server_never_answers():
    with socket.socket() as s:  # accepts (backlog) but never answers HELLO
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = run("send", "--port", port, "--id", 1, "--to", 2, "--text", "hi",
                "--timeout", 1)
    assert r.returncode == 1
    assert "timed out after 1 s" in assert_one_sentence(r)


def test_send_refused_by_server_reason(start_server):
    """An ERROR frame naming the message: the server's reason is shown."""
    server = start_server("--offline-max-messages", "1")
    assert send(server, "--id", 1, "--to", 9, "--text", "one").returncode == 0
    r = send(server, "--id", 1, "--to", 9, "--text", "two")
    assert r.returncode == 1
    line = assert_one_sentence(r)
    assert line.startswith("chat-client: the server refused the message: "), line
    assert "QUOTA" in line.upper(), line


# -- usage -------------------------------------------------------------------

@pytest.mark.parametrize("args,phrase", [
    ([], "subcommand"),
    (["frobnicate"], "frobnicate"),
    (["send", "--to", "2", "--text", "x"], "--id"),
    (["send", "--id", "1", "--text", "x"], "--to"),
    (["send", "--id", "1", "--to", "2"], "--text"),
    (["send", "--id", "1", "--to", "2", "--text", "x", "--file", "a.png"], "--file"),
    (["send", "--id", "0", "--to", "2", "--text", "x"], "--id"),
    (["send", "--id", "abc", "--to", "2", "--text", "x"], "abc"),
    (["send", "--id", "1", "--to", "2", "--file", "a.png", "--type", "doc"], "doc"),
    (["send", "--id", "1", "--to", "2", "--text", "x", "--bogus"], "--bogus"),
    (["send", "--id", "1", "--to", "2", "--text"], "--text"),
    (["send", "--id", "1", "--to", "2", "--text", "x", "--port", "70000"], "70000"),
    (["listen"], "--id"),
    (["listen", "--id", "1", "--count", "-1"], "-1"),
    (["listen", "--id", "1", "--save-dir", "/nonexistent/dir"], "/nonexistent/dir"),
])
def test_bad_usage_exits_2_with_a_sentence(args, phrase):
    r = run(*args)
    assert r.returncode == 2, (args, r.stderr)
    last = r.stderr.decode().splitlines()[-1]
    assert last.startswith("chat-client: ") and phrase in last, last


@pytest.mark.parametrize("sub,flags", [
    ("send", ["--id", "--to", "--text", "--file", "--type", "--host", "--port",
              "--no-acks", "--timeout", "8888", "127.0.0.1"]),
    ("listen", ["--id", "--count", "--save-dir", "--host", "--port", "--no-acks",
                "--timeout", "8888", "127.0.0.1"]),
])
def test_help(sub, flags):
    r = run(sub, "--help")
    assert r.returncode == 0
    out = r.stdout.decode()
    for f in flags:
        assert f in out, f"{sub} --help lacks {f}"


# -- reconnect across a server restart -----------------------------------------

def test_listen_reconnects_across_a_server_restart_and_loses_nothing(
        start_store_server, listeners):
    """listen keeps its session across a SIGKILL and restart of the server
    (same port, same data directory): a message acknowledged before the
    crash, one sent while the listener is still reconnecting, and one sent
    after all arrive exactly in order, and listen exits 0 after them."""
    port = free_port()
    s1 = start_store_server("--port", str(port))
    l = listen(listeners, s1, 2, "--count", 3, "--timeout", 30)
    assert send(s1, "--id", 1, "--to", 2, "--text", "before").returncode == 0

    assert s1.kill() == -9                  # crash: no clean shutdown
    s2 = start_store_server("--port", str(port))  # same port, same store
    # Sent as soon as the server is back: the listener may or may not have
    # reconnected yet; either way the message must reach it.
    assert send(s2, "--id", 1, "--to", 2, "--text", "during").returncode == 0
    assert send(s2, "--id", 1, "--to", 2, "--text", "after").returncode == 0

    rc, msgs = l.finish(timeout=40)
    assert rc == 0, l.stderr_lines
    texts = [m["text"] for m in msgs]
    # At least once, in order: "before" may come twice if the listener's ACK
    # for it died with the server; nothing may be missing or reordered.
    distinct = [t for i, t in enumerate(texts) if i == 0 or t != texts[i - 1]]
    assert distinct == ["before", "during", "after"][:len(distinct)], texts
    assert "during" in distinct, texts


# -- against the article's own server ------------------------------------------

ARTICLE_SERVER = """
import sys, logging
sys.path.insert(0, {seed!r})
import article_server as a
from tornado.netutil import bind_sockets
from tornado.ioloop import IOLoop
s = a.ChatServer()
s.add_sockets(bind_sockets({port}, address="127.0.0.1"))
logging.getLogger().info("READY")
IOLoop.current().start()
"""


@pytest.fixture
def article_server():
    """The article's Tornado server (echoes text frames, speaks no control
    frames), on a free port; its DEBUG log shows what it decoded."""
    from conftest import SEED_DIR
    if not (SEED_DIR / "article_server.py").is_file():
        pytest.skip(f"article server not found at {SEED_DIR}/article_server.py")
    port = free_port()
    p = subprocess.Popen(["/usr/bin/python3", "-u", "-c",
                          ARTICLE_SERVER.format(seed=str(SEED_DIR), port=port)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(l.decode("utf-8", "replace"))
                                     for l in p.stdout], daemon=True).start()

    def wait_for(needle, timeout=DEADLINE):
        seen = []
        while True:
            try:
                line = lines.get(timeout=timeout)
            except queue.Empty:
                pytest.fail(f"no {needle!r} from the article server: {seen!r}")
            seen.append(line)
            if needle in line:
                return line

    wait_for("READY")
    yield port, wait_for
    p.kill()
    p.wait()


def test_send_to_the_article_server_without_control_frames(article_server):
    """--no-acks speaks the article's protocol only: the article's server
    decodes our frame (it would choke on a HELLO: its reader takes any first
    13 bytes as a data header) and the command exits 0 once it is written."""
    port, wait_for = article_server
    r = run("send", "--port", port, "--no-acks", "--id", 10000000,
            "--to", 10000001, "--text", "hello article")
    assert r.returncode == 0, r.stderr
    assert "sender:10000000" in wait_for("sender:")
    assert "receiver:10000001" in wait_for("receiver:")
    assert "data:(b'hello article',)" in wait_for("data:")


def test_listen_count_takes_exactly_n_and_leaves_the_rest(start_store_server,
                                                          listeners):
    """Five messages wait for user 2 and arrive in one read; `listen --count 2`
    twice then `--count 1` print 1,2 / 3,4 / 5: what a run did not print is
    not acknowledged (kept for the next run), and nothing comes twice."""
    s = start_store_server()
    for i in range(1, 6):
        assert send(s, "--id", 1, "--to", 2, "--text", f"m{i}").returncode == 0
    got = []
    for n in (2, 2, 1):
        rc, msgs = listen(listeners, s, 2, "--count", n).finish()
        assert rc == 0
        got.append([m["text"] for m in msgs])
    assert got == [["m1", "m2"], ["m3", "m4"], ["m5"]], got
