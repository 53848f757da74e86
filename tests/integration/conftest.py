"""Fixtures: start chat-server on a free port, hand tests a handle, stop it.

The binary comes from $CHAT_SERVER (default <repo>/build/chat-server).
"""

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from proto import Client

REPO = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("CHAT_SERVER", REPO / "build" / "chat-server"))
SEED_DIR = REPO.parent / "shared" / "seed"

START_DEADLINE = 10.0
STOP_DEADLINE = 5.0
LISTENING = re.compile(r"listening on (\S+):(\d+)")


def require_binary():
    if not (BINARY.is_file() and os.access(BINARY, os.X_OK)):
        pytest.fail(f"server binary {BINARY} is missing: build it with `make` "
                    f"or point $CHAT_SERVER at it", pytrace=False)
    return str(BINARY)


class Server:
    """A running chat-server with its log file."""

    def __init__(self, workdir, args):
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "server.log"
        self.args = [require_binary(), "--port", "0",
                     "--data-dir", str(workdir / "data"), *args]
        self._logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                     stdout=self._logf, stderr=self._logf)
        self.exit_checked = False
        self.clients = []
        m = self.wait_for_log(LISTENING, START_DEADLINE)
        self.host, self.port = m.group(1), int(m.group(2))
        assert self.port != 0, f"server reported port 0:\n{self.log()}"

    # -- log -------------------------------------------------------------
    def log(self):
        return self.log_path.read_bytes().decode("utf-8", "replace")

    def log_lines(self, phrase):
        """Log lines containing `phrase` (case-insensitive)."""
        return [l for l in self.log().splitlines() if phrase.lower() in l.lower()]

    def wait_for_log(self, pattern, timeout=5.0):
        """Poll the log until `pattern` (str: case-insensitive substring, or a
        compiled regex) appears; return the match. Fails on deadline or exit."""
        if isinstance(pattern, str):
            pattern = re.compile(re.escape(pattern), re.IGNORECASE)
        deadline = time.monotonic() + timeout
        while True:
            m = pattern.search(self.log())
            if m:
                return m
            if self.proc.poll() is not None:
                pytest.fail(f"server exited ({self.proc.returncode}) before logging "
                            f"{pattern.pattern!r}:\n{self.log()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {pattern.pattern!r} in the log within {timeout}s:\n{self.log()}")
            time.sleep(0.02)

    # -- clients ---------------------------------------------------------
    def client(self, **kw):
        c = Client(self.host, self.port, **kw)
        self.clients.append(c)
        return c

    def alive(self):
        return self.proc.poll() is None

    # -- stopping --------------------------------------------------------
    def terminate(self, timeout=STOP_DEADLINE, sig=signal.SIGTERM):
        """Send `sig` and wait; return the exit status (the caller checks it)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait_exit(timeout)

    def wait_exit(self, timeout=STOP_DEADLINE):
        """Wait for the process to exit; return its status (the caller checks it)."""
        self.exit_checked = True
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"server did not exit within {timeout}s:\n{self.log()}")

    def teardown(self):
        for c in self.clients:
            c.close()
        if self.exit_checked:
            self._logf.close()
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            return
        crashed = self.proc.poll()
        rc = self.terminate()
        self._logf.close()
        assert crashed is None, f"server died during the test (status {crashed}):\n{self.log()}"
        assert rc == 0, f"server exited with {rc} after SIGTERM:\n{self.log()}"


def teardown_all(servers):
    """Stop every server, even after one failed its exit check (a server
    that crashed must not leave the others running); then raise the first
    failure."""
    failures = []
    for s in servers:
        try:
            s.teardown()
        except BaseException as e:  # noqa: BLE001 (raised below)
            failures.append(e)
    if failures:
        raise failures[0]


def flood(srv, send, chunk, phrase, times=300):
    """send(chunk) up to `times` times, until the server's log has phrase
    (or the server closed the connection); then wait for that line."""
    try:
        for _ in range(times):
            send(chunk)
            if srv.log_lines(phrase):
                break
    except OSError:
        pass  # closed by the server: the log line says why
    return srv.wait_for_log(phrase)


@pytest.fixture
def start_server(tmp_path):
    """Factory: start_server(*extra_args) -> Server. All are stopped at teardown."""
    servers = []

    def start(*args):
        s = Server(tmp_path / f"server{len(servers)}", list(args))
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.teardown()


@pytest.fixture
def server(start_server):
    """A server in routing mode (the default)."""
    return start_server()


@pytest.fixture
def echo_server(start_server):
    """A server in echo mode (the article's behaviour)."""
    return start_server("--echo")


# -- servers on a chosen data directory (store tests) ---------------------

class StoreServer(Server):
    """A Server on a data directory the test chooses (several servers may use
    the same one in turn: a restart), with extra environment variables."""

    def __init__(self, workdir, args, data_dir, env=None):
        workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = Path(data_dir)
        self.db_path = self.data_dir / "chat.db"
        self.log_path = workdir / "server.log"
        self.args = [require_binary(), "--port", "0",
                     "--data-dir", str(self.data_dir), *args]
        self._logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                     stdout=self._logf, stderr=self._logf,
                                     env={**os.environ, **(env or {})})
        self.exit_checked = False
        self.clients = []
        try:
            m = self.wait_for_log(LISTENING, START_DEADLINE)
        except BaseException:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self._logf.close()
            raise
        self.host, self.port = m.group(1), int(m.group(2))
        assert self.port != 0, f"server reported port 0:\n{self.log()}"

    def kill(self):
        """SIGKILL (no clean shutdown); return the exit status."""
        return self.terminate(sig=signal.SIGKILL)


@pytest.fixture
def store_dir(tmp_path):
    """The data directory start_store_server uses unless told otherwise."""
    return tmp_path / "store-data"


@pytest.fixture
def start_store_server(tmp_path, store_dir):
    """Factory: start_store_server(*extra_args, data_dir=store_dir, env=None)
    -> StoreServer. Every server started without data_dir shares store_dir,
    so starting another after stopping one is a restart on the same store.
    All are stopped at teardown (a server whose exit the test already
    checked, e.g. after kill(), is left as it is)."""
    servers = []

    def start(*args, data_dir=None, env=None):
        s = StoreServer(tmp_path / f"store-server{len(servers)}", list(args),
                        data_dir or store_dir, env)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.teardown()
