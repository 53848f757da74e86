"""The article's own client (../shared/seed/article_client.py) against our server."""

import queue
import subprocess
import sys
import threading
import time

import pytest

from conftest import SEED_DIR

PYTHON = "/usr/bin/python3"     # Debian's, with python3-tornado

SCRIPT = """
import sys
sys.path.insert(0, {seed!r})
import article_client as a
from tornado import ioloop
c = a.ChatClient("127.0.0.1", {port})
c.start()
ioloop.IOLoop.current().start()
"""


def lines_of(stream):
    """Lines of `stream`, read by a thread, as a queue (None at EOF)."""
    q = queue.Queue()

    def pump():
        for line in stream:
            q.put(line.decode("utf-8", "replace"))
        q.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return q


def wait_for_line(q, needle, seen, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"no {needle!r} from the article client in {timeout}s:\n" + "".join(seen))
        try:
            line = q.get(timeout=left)
        except queue.Empty:
            continue
        if line is None:
            pytest.fail(f"article client exited before {needle!r}:\n" + "".join(seen))
        seen.append(line)
        if needle in line:
            return line


@pytest.fixture
def article_client():
    if not (SEED_DIR / "article_client.py").is_file():
        pytest.skip(f"article client not found at {SEED_DIR}/article_client.py")
    if subprocess.run([PYTHON, "-c", "import tornado"], capture_output=True).returncode:
        pytest.skip("python3-tornado is not installed for /usr/bin/python3")
    procs = []

    def start(port):
        p = subprocess.Popen([PYTHON, "-c", SCRIPT.format(seed=str(SEED_DIR), port=port)],
                             stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.kill()
        p.wait()


def test_article_client_gets_its_echo(echo_server, article_client):
    client = article_client(echo_server.port)
    stderr = lines_of(client.stderr)
    client.stdin.write(b"hello world\n")
    client.stdin.flush()
    seen = []
    wait_for_line(stderr, "sender:10000000", seen)
    wait_for_line(stderr, "msg_type:1", seen)
    wait_for_line(stderr, "msg_len:11", seen)
    wait_for_line(stderr, "data:(b'hello world',)", seen)
