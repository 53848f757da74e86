"""chat-client interactive mode (chat-client --id ID ...), driven through a
pseudo-terminal: messages arriving while a line is half typed, commands,
byte-exact text and files, exit.

The client binary comes from $CHAT_CLIENT (default <repo>/build/chat-client).
"""

import os
import re
import select
import signal
import struct
import subprocess
import time
from pathlib import Path

import fcntl
import pytest
import termios

from conftest import REPO
from proto import PICTURE, TEXT, VIDEO, C2S

CLIENT = Path(os.environ.get("CHAT_CLIENT", REPO / "build" / "chat-client"))
DEADLINE = 10.0

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06"
       b"\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01"
       b"\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")


def client_bin():
    if not (CLIENT.is_file() and os.access(CLIENT, os.X_OK)):
        pytest.fail(f"client binary {CLIENT} is missing: build it with `make` "
                    f"or point $CHAT_CLIENT at it", pytrace=False)
    return str(CLIENT)


class Term:
    """chat-client on the slave side of a pty; the test types into the master
    and reads everything the client writes (stdout and stderr)."""

    def __init__(self, server, user, *args, cwd=None):
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
        env = {**os.environ, "TERM": "xterm", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        self.proc = subprocess.Popen(
            [client_bin(), "--id", str(user), "--port", str(server.port), *map(str, args)],
            stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env,
            start_new_session=True)
        os.close(slave)
        self.master = master
        self.out = b""   # everything read so far
        self.mark = 0    # expect() searches from here
        self.expect("connected to")

    def _read(self, timeout):
        r, _, _ = select.select([self.master], [], [], max(timeout, 0))
        if not r:
            return False
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: the slave side is closed (the client exited)
            chunk = b""
        if not chunk:
            return None
        self.out += chunk
        return True

    def expect(self, text, timeout=DEADLINE):
        """Wait until `text` (str or bytes) appears after the mark; move the
        mark past it and return the output from the old mark to its end."""
        needle = text.encode() if isinstance(text, str) else text
        deadline = time.monotonic() + timeout
        while True:
            i = self.out.find(needle, self.mark)
            if i >= 0:
                seen = self.out[self.mark:i + len(needle)]
                self.mark = i + len(needle)
                return seen
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no {text!r} on the terminal within {timeout}s; "
                            f"got {self.out[self.mark:]!r}")
            if self._read(left) is None:
                pytest.fail(f"the client exited ({self.proc.wait()}) before {text!r}; "
                            f"got {self.out[self.mark:]!r}")

    def type(self, text):
        os.write(self.master, text.encode() if isinstance(text, str) else text)

    def wait_exit(self, timeout=DEADLINE):
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            if self._read(min(0.1, deadline - time.monotonic())) is None:
                break
        try:
            return self.proc.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            pytest.fail(f"the client did not exit within {timeout}s: {self.out[-300:]!r}")

    def close(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        os.close(self.master)


@pytest.fixture
def terms():
    made = []
    yield made
    for t in made:
        t.close()


def term(terms, server, user, *args, **kw):
    t = Term(server, user, *args, **kw)
    terms.append(t)
    return t


def peer(server, user):
    """A raw protocol client logged in as `user` (no acks asked)."""
    c = server.client()
    c.hello(user)
    return c


def test_message_while_typing_keeps_the_half_line(server, terms):
    p = peer(server, 2)
    t = term(terms, server, 1, "--to", 2)
    t.expect("to 2> ")
    t.type("hel")
    t.expect("hel")  # echoed: the client holds the half line
    p.send_frame(2, 1, TEXT, "incoming ✓ message".encode())
    shown = t.expect("2: incoming ✓ message")
    assert re.search(rb"\[\d\d:\d\d\] 2: incoming \xe2\x9c\x93 message$", shown), shown
    t.expect("to 2> hel")  # prompt and half line redrawn below the message
    t.type("lo\r")
    f = p.read_frame()
    assert (f.sender, f.type, f.body) == (1, TEXT, b"hello")


def test_to_and_utf8_text_byte_exact(server, terms):
    p = peer(server, 7)
    t = term(terms, server, 1)
    t.type("/to 7\r")
    t.expect("to 7> ")
    texts = ["你好，世界！聊天服务器", "emoji 😀👍🏽🇫🇷 ok"]
    for s in texts:
        t.type(s + "\r")
    got = [p.read_frame() for _ in texts]
    assert [(f.sender, f.type, f.body) for f in got] == [(1, TEXT, s.encode()) for s in texts]
    # Incoming UTF-8 is shown as it is.
    p.send_frame(7, 1, TEXT, texts[1].encode())
    t.expect("7: " + texts[1])


def test_send_png_file(server, terms, tmp_path):
    p = peer(server, 3)
    f = tmp_path / "dot.png"
    f.write_bytes(PNG)
    save = tmp_path / "saved"
    save.mkdir()
    t = term(terms, server, 1, "--to", 3, "--save-dir", save)
    t.type(f"/send {f}\r")
    got = p.read_frame()
    assert (got.sender, got.type, got.body) == (1, PICTURE, PNG)
    # A picture received is saved under --save-dir with listen's naming.
    p.send_frame(3, 1, PICTURE, PNG)
    seen = t.expect(" bytes)")
    m = re.search(rb"3 sent a picture: (\S+) \((\d+) bytes\)", seen)
    assert m, seen
    assert int(m.group(2)) == len(PNG)
    saved = Path(m.group(1).decode())
    assert saved == save / "picture-from3-0001.png"
    assert saved.read_bytes() == PNG


def test_large_transfers_show_a_progress_bar(server, terms, tmp_path):
    """Over 1 MiB, both ways: a bar on stderr while it goes ("[###...]
    100% sending FILE"), then "sent FILE" once acknowledged; a large frame
    arriving shows "receiving" before the saved path."""
    p = peer(server, 3)
    big = bytes(range(256)) * (12 * 1024)            # 3 MiB
    f = tmp_path / "clip.mp4"
    f.write_bytes(big)
    save = tmp_path / "saved"
    save.mkdir()
    t = term(terms, server, 1, "--to", 3, "--save-dir", save)
    t.type(f"/send {f}\r")
    seen = t.expect(f"sent {f}".encode())
    assert re.search(rb"\[#+\.*\] +\d+% sending " + re.escape(str(f).encode()), seen), seen
    assert b"100% sending" in seen, seen
    got = p.read_frame()
    assert (got.sender, got.type, got.body) == (1, VIDEO, big)
    # Receiving: libchat reads at most 1 MiB per call, so a 3 MiB frame is
    # seen partly received at least once.
    p.send_raw(C2S.pack(3, 1, VIDEO, len(big)) + big)
    t.expect(b"% receiving")
    seen = t.expect(b" bytes)")
    assert re.search(rb"3 sent a video: \S+ \(%d bytes\)" % len(big), seen), seen


def test_send_errors_are_one_sentence(server, terms, tmp_path):
    t = term(terms, server, 1, "--to", 3)
    t.type(f"/send {tmp_path}/missing.png\r")
    t.expect("missing.png: no such file")
    t.type(f"/send {tmp_path}/notes.txt\r")
    t.expect("cannot tell the type of")


def test_quit_exits_0(server, terms):
    t = term(terms, server, 1)
    t.type("/quit\r")
    assert t.wait_exit() == 0


def test_ctrl_d_exits_0(server, terms):
    t = term(terms, server, 1)
    t.expect("> ")
    t.type(b"\x04")
    assert t.wait_exit() == 0


def test_plain_line_without_receiver_is_an_error(server, terms):
    p = peer(server, 4)
    t = term(terms, server, 1)
    t.type("lost words\r")
    t.expect("no receiver yet: choose one with /to ID")
    # Still running: the next message goes through once a receiver is set.
    t.type("/to 4\r")
    t.type("found\r")
    f = p.read_frame()
    assert (f.sender, f.type, f.body) == (1, TEXT, b"found")
    t.type("/quit\r")
    assert t.wait_exit() == 0


def test_needs_a_terminal(server):
    r = subprocess.run([client_bin(), "--id", "1", "--port", str(server.port)],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=DEADLINE)
    assert r.returncode == 2
    err = r.stderr.decode().splitlines()
    assert len(err) == 1 and err[0].startswith("chat-client: ") and "terminal" in err[0], err


def test_refusal_is_printed_and_session_goes_on(start_server, terms):
    """An ERROR frame (offline quota of the absent receiver) is shown."""
    server = start_server("--offline-max-messages", "1")
    t = term(terms, server, 1, "--to", 9)
    t.type("one\r")
    t.type("two\r")
    line = t.expect("quota is full")
    assert b"chat-client: the server refused a message: " in line, line
    t.type("/quit\r")
    assert t.wait_exit() == 0
