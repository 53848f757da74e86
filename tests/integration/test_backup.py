"""`chat-server backup` and `chat-server restore` (docs/OPERATIONS.md,
"Backup and restore"), and the data directory's lock (chat.lock).

A backup taken while a sender keeps sending must hold every message the
server acknowledged before the backup began; a server started on it (after
`restore`, or on the copy named chat.db) delivers them. Restore refuses
while a server runs on the directory and keeps the database it replaces.
"""

import shutil
import signal
import sqlite3
import stat
import subprocess
import threading
import time

import pytest

from conftest import require_binary
from proto import ACKS_FLAG, TEXT, c2s, read_data, wait_for_ack

RECEIVER = 3
BATCH = 25
FILLER = b"." * 1000    # 1 KiB bodies: the database grows to a few MiB


def body(i):
    return b"m%07d|" % i + FILLER


def run(*args, timeout=60):
    """chat-server with args; the CompletedProcess (text)."""
    try:
        return subprocess.run([require_binary(), *map(str, args)], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"chat-server {' '.join(map(str, args))} did not exit within {timeout} s")


def ok(r):
    assert r.returncode == 0, f"exit {r.returncode}:\n{r.stdout}{r.stderr}"
    return r


def refused(r, *words):
    """A failure with one sentence on stderr that contains each of words."""
    assert r.returncode == 1, f"exit {r.returncode}:\n{r.stdout}{r.stderr}"
    assert r.stdout == "", r.stdout
    line = r.stderr.strip()
    assert line.startswith("chat-server ") and line.endswith(".") and "\n" not in line, line
    for w in words:
        assert str(w) in line, f"{w!r} not in {line!r}"
    return line


class AckedLoad(threading.Thread):
    """Sends to an offline receiver, BATCH frames at a time, each batch
    waited for until acknowledged, until stopped. `acked` (under `cond`)
    counts the bodies body(0), body(1), ... the server has acknowledged:
    they are stored durably."""

    def __init__(self, server, user=1):
        super().__init__(daemon=True)
        self.a = server.client()
        assert self.a.hello(user, flags=ACKS_FLAG).flags & ACKS_FLAG
        self.user = user
        self.acked = 0
        self.error = None
        self.cond = threading.Condition()
        self.halt = threading.Event()

    def run(self):
        try:
            while not self.halt.is_set():
                n = self.acked
                self.a.send_raw(b"".join(c2s(self.user, RECEIVER, TEXT, body(i))
                                         for i in range(n, n + BATCH)))
                r = wait_for_ack(self.a, n + BATCH, timeout=30)
                assert r.errors == [] and r.frames == [], (r.errors, r.frames[:2])
                with self.cond:
                    self.acked = n + BATCH
                    self.cond.notify_all()
        except BaseException as e:      # pytest.fail raises a BaseException
            with self.cond:
                self.error = e
                self.cond.notify_all()

    def wait_acked(self, n, timeout=30):
        with self.cond:
            done = self.cond.wait_for(lambda: self.acked >= n or self.error, timeout)
            assert self.error is None, f"the sender failed: {self.error}"
            assert done, f"only {self.acked} of {n} messages acknowledged within {timeout} s"
            return self.acked

    def stop(self):
        self.halt.set()
        self.join(30)
        assert not self.is_alive(), "the sender did not stop"
        assert self.error is None, f"the sender failed: {self.error}"


def receiver_gets(server, n):
    """The first n messages the receiver gets, in order, are body(0..n)."""
    c = server.client()
    c.hello(RECEIVER)
    got = read_data(c, n, timeout=60)
    assert [f.sender for f in got] == [1] * n
    bad = [i for i, f in enumerate(got) if f.body != body(i)]
    assert not bad, f"{len(bad)} messages differ, first #{bad[0]}: {got[bad[0]].body[:12]!r}"


# -- backup under load ------------------------------------------------------

def test_backup_under_load_holds_every_message_acked_before_it(
        start_store_server, store_dir, tmp_path):
    s = start_store_server()
    load = AckedLoad(s)
    load.start()
    try:
        load.wait_acked(400)
        before = load.acked          # all acknowledged before the backup began
        copy = tmp_path / "copy.db"
        r = run("backup", "--data-dir", store_dir, copy)
        # The server kept taking messages: the sender goes on being
        # acknowledged after the backup, on the same connection.
        load.wait_acked(load.acked + 2 * BATCH)
    finally:
        load.stop()
    ok(r)
    assert s.alive()
    assert r.stderr == ""
    line = r.stdout.strip()
    assert line.startswith(f"backup: {copy}: ") and "schema version 5" in line, line
    held = int(line.split(" messages")[0].rsplit(" ", 1)[1])
    assert before <= held <= load.acked + BATCH, (before, held, load.acked)
    assert not (tmp_path / "copy.db.tmp").exists()
    assert not (tmp_path / "copy.db-wal").exists(), "the copy must be one file"

    # 1. restored with `chat-server restore` into a directory that does not exist yet
    fresh = tmp_path / "restored"
    r = ok(run("restore", "--data-dir", fresh, copy))
    assert "there was no database before" in r.stdout, r.stdout
    receiver_gets(start_store_server(data_dir=fresh), before)

    # 2. a server started on a directory holding the copy as chat.db
    plain = tmp_path / "plain"
    plain.mkdir()
    shutil.copyfile(copy, plain / "chat.db")
    receiver_gets(start_store_server(data_dir=plain), before)


# -- restore --------------------------------------------------------------

def test_restore_keeps_the_database_it_replaces(start_store_server, store_dir, tmp_path):
    s = start_store_server()
    a = s.client()
    assert a.hello(1, flags=ACKS_FLAG).flags & ACKS_FLAG
    a.send_raw(b"".join(c2s(1, RECEIVER, TEXT, body(i)) for i in range(3)))
    assert wait_for_ack(a, 3).errors == []
    ok(subprocess.run([require_binary(), "user", "--data-dir", str(store_dir), "add", "7"],
                      input="pw7\n", capture_output=True, text=True, timeout=30))
    copy = tmp_path / "copy.db"
    ok(run("backup", "--data-dir", store_dir, copy))
    # Something newer, then a crash: the newest commits are in chat.db-wal.
    a.send_frame(1, RECEIVER, TEXT, b"after the backup")
    assert wait_for_ack(a, 4).errors == []
    assert s.kill() == -signal.SIGKILL
    assert (store_dir / "chat.db-wal").stat().st_size > 0

    r = ok(run("restore", "--data-dir", store_dir, copy))
    kept = sorted(store_dir.glob("chat.db.before-restore-*"))
    assert [k.name for k in kept if not k.name.endswith(("-wal", "-journal"))] \
        == [kept[0].name], kept
    assert str(kept[0]) in r.stdout and "3 messages" in r.stdout, r.stdout
    assert not (store_dir / "chat.db-wal").exists()
    assert not (store_dir / "chat.db-shm").exists()
    assert not (store_dir / "chat.db.restore-tmp").exists()

    # The restored store: what the backup held, accounts too.
    assert ok(run("user", "--data-dir", store_dir, "list")).stdout.split() == ["7"]
    s2 = start_store_server()
    c = s2.client()
    c.hello(RECEIVER)
    assert [f.body for f in read_data(c, 3)] == [body(i) for i in range(3)]
    c.expect_no_frame(0.3)
    assert s2.terminate() == 0

    # The kept database has everything, the message after the backup too.
    old = tmp_path / "old"
    old.mkdir()
    for k in kept:
        shutil.copyfile(k, old / ("chat.db" + k.name[len(kept[0].name):]))
    s3 = start_store_server(data_dir=old)
    c = s3.client()
    c.hello(RECEIVER)
    assert [f.body for f in read_data(c, 4)] == [body(i) for i in range(3)] + \
        [b"after the backup"]


def test_restore_refuses_while_a_server_runs(start_store_server, store_dir, tmp_path):
    s = start_store_server()
    copy = tmp_path / "copy.db"
    ok(run("backup", "--data-dir", store_dir, copy))
    before = sorted(p.name for p in store_dir.iterdir())
    refused(run("restore", "--data-dir", store_dir, copy), "runs on", store_dir,
            "stop it first")
    assert sorted(p.name for p in store_dir.iterdir()) == before
    assert s.alive()
    assert s.client().hello(5).user == 5


def test_a_second_server_on_the_same_data_dir_refuses_to_start(start_store_server, store_dir):
    s = start_store_server()
    lock = store_dir / "chat.lock"
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600
    r = run("--port", "0", "--data-dir", store_dir, timeout=10)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert f"another chat-server uses {store_dir}" in r.stderr, r.stderr
    assert s.alive() and s.client().hello(2).user == 2
    assert s.terminate() == 0
    s2 = start_store_server()     # the lock went with the first server
    assert s2.client().hello(2).user == 2


def test_restore_of_an_older_schema_is_upgraded_at_the_next_start(
        start_store_server, tmp_path):
    old = tmp_path / "v1.db"
    db = sqlite3.connect(old)
    db.executescript(
        "CREATE TABLE messages(id INTEGER PRIMARY KEY, receiver INTEGER NOT NULL,"
        " sender INTEGER NOT NULL, type INTEGER NOT NULL, ts INTEGER NOT NULL,"
        " body BLOB NOT NULL);"
        "CREATE INDEX messages_by_receiver ON messages(receiver, id);"
        "PRAGMA user_version=1;")
    db.execute("INSERT INTO messages VALUES(5, ?, 9, ?, ?, ?)",
               (RECEIVER, TEXT, int(time.time() * 1000), b"from version 1"))
    db.commit()
    db.close()
    data = tmp_path / "data"
    r = ok(run("restore", "--data-dir", data, old))
    assert "schema version 1, 1 messages" in r.stdout, r.stdout
    s = start_store_server(data_dir=data)
    s.wait_for_log("schema upgraded to version 5")
    c = s.client()
    c.hello(RECEIVER)
    assert read_data(c, 1)[0] == (9, TEXT, b"from version 1")


# -- errors ---------------------------------------------------------------

def test_backup_errors(start_store_server, store_dir, tmp_path):
    copy = tmp_path / "copy.db"
    refused(run("backup", "--data-dir", tmp_path / "nowhere", copy),
            tmp_path / "nowhere", "data directory")
    empty = tmp_path / "empty"
    empty.mkdir()
    refused(run("backup", "--data-dir", empty, copy), empty / "chat.db", "does not exist")
    assert not copy.exists()

    start_store_server()
    copy.write_bytes(b"precious")
    refused(run("backup", "--data-dir", store_dir, copy), copy, "--force")
    assert copy.read_bytes() == b"precious"
    ok(run("backup", "--data-dir", store_dir, "--force", copy))
    assert copy.read_bytes().startswith(b"SQLite format 3\0")
    for name in ["chat.db", "chat.db-wal", "chat.x"]:   # never the server's own files
        refused(run("backup", "--data-dir", store_dir, "--force", store_dir / name),
                store_dir / name, "choose another name")
    (tmp_path / "copy2.db-wal").write_bytes(b"stale")   # would be applied to it
    refused(run("backup", "--data-dir", store_dir, tmp_path / "copy2.db"),
            tmp_path / "copy2.db-wal", "--force")


def test_restore_errors(tmp_path, start_store_server, store_dir):
    s = start_store_server()
    assert s.terminate() == 0
    before = {p.name: p.read_bytes() for p in store_dir.iterdir()}

    refused(run("restore", "--data-dir", store_dir, tmp_path / "missing.db"),
            tmp_path / "missing.db", "No such file")
    junk = tmp_path / "junk.db"
    junk.write_bytes(bytes(range(256)) * 64)
    refused(run("restore", "--data-dir", store_dir, junk), junk, "not a database")
    other = tmp_path / "other.db"
    db = sqlite3.connect(other)
    db.executescript("CREATE TABLE t(x); INSERT INTO t VALUES(1);")
    db.close()
    refused(run("restore", "--data-dir", store_dir, other), other,
            "not a chat-server one")
    newer = tmp_path / "newer.db"
    db = sqlite3.connect(newer)
    db.executescript("CREATE TABLE messages(x); PRAGMA user_version=99;")
    db.close()
    refused(run("restore", "--data-dir", store_dir, newer), newer, "newer release")
    refused(run("restore", "--data-dir", junk, newer), junk, "data directory")
    # Nothing in the data directory changed (the lock file aside).
    assert {p.name: p.read_bytes() for p in store_dir.iterdir()} == before


@pytest.mark.parametrize("args", [
    ["backup"], ["backup", "--data-dir"], ["backup", "--bogus", "f"],
    ["backup", "a.db", "b.db"], ["backup", "--data-dir", "", "f"],
    ["restore"], ["restore", "--force", "f"], ["restore", "a.db", "b.db"],
], ids=lambda a: " ".join(a) or "none")
def test_bad_command_lines_exit_2_with_the_usage(args, tmp_path):
    r = subprocess.run([require_binary(), *args], capture_output=True, text=True,
                       timeout=10, cwd=tmp_path)
    assert r.returncode == 2, (r.returncode, r.stderr)
    first = r.stderr.splitlines()[0]
    assert first.startswith(f"chat-server {args[0]}: ") and first.endswith("."), first
    assert f"Usage: chat-server {args[0]}" in r.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("cmd", ["backup", "restore"])
def test_help(cmd, tmp_path):
    r = subprocess.run([require_binary(), cmd, "--help"], capture_output=True,
                       text=True, timeout=10, cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith(f"Usage: chat-server {cmd}"), r


def test_backup_and_restore_find_the_data_dir_in_the_config_file(
        start_store_server, store_dir, tmp_path):
    conf = tmp_path / "chat-server.conf"
    conf.write_text(f"# as the package's\ndata-dir {store_dir}\n")
    s = start_store_server("--config", conf)
    a = s.client()
    assert a.hello(1, flags=ACKS_FLAG).flags & ACKS_FLAG
    a.send_frame(1, RECEIVER, TEXT, body(0))
    assert wait_for_ack(a, 1).errors == []
    copy = tmp_path / "copy.db"
    r = ok(run("backup", "--config", conf, copy))
    assert "1 messages" in r.stdout or "1 message" in r.stdout, r.stdout
    refused(run("restore", "--config", conf, copy), "runs on", store_dir)
    # --data-dir wins over the file's
    other = tmp_path / "other"
    ok(run("restore", "--config", conf, "--data-dir", other, copy))
    assert (other / "chat.db").exists()
    # a bad file: exit 2 with the file and line
    bad = tmp_path / "bad.conf"
    bad.write_text("data-dir\n")
    r = run("backup", "--config", bad, tmp_path / "x.db")
    assert r.returncode == 2 and "bad.conf:1: data-dir: needs a value" in r.stderr


def test_user_finds_the_data_dir_in_the_config_file(store_dir, tmp_path):
    conf = tmp_path / "chat-server.conf"
    conf.write_text(f"data-dir {store_dir}\n")
    ok(subprocess.run([require_binary(), "user", "--config", str(conf), "add", "7"],
                      input="pw7\n", capture_output=True, text=True, timeout=30))
    assert ok(run("user", "--data-dir", store_dir, "list")).stdout.split() == ["7"]
    assert ok(run("user", "--config", conf, "list")).stdout.split() == ["7"]
    bad = tmp_path / "bad.conf"
    bad.write_text("data-dir\n")
    r = run("user", "--config", bad, "list")
    assert r.returncode == 2 and "bad.conf:1: data-dir: needs a value" in r.stderr
