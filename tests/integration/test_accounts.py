"""`chat-server user add|passwd|del|list`: accounts in <data-dir>/chat.db.

The password comes from standard input (not a terminal here), one line.
"""

import sqlite3
import subprocess

import pytest

from conftest import require_binary
from proto import TEXT


def user(data_dir, *args, password="secret\n"):
    return subprocess.run([require_binary(), "user", "--data-dir",
                           str(data_dir), *args], input=password,
                          capture_output=True, text=True, timeout=30)


def one_sentence(r):
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith("."), r.stderr
    return lines[0]


def test_add_then_list_shows_the_id(tmp_path):
    d = tmp_path / "data"
    for i in ["12", "3", "100"]:
        r = user(d, "add", i)
        assert r.returncode == 0, r.stderr
    r = user(d, "list")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["3", "12", "100"]
    assert "argon2" not in r.stdout
    db = sqlite3.connect(d / "chat.db")
    (h,), = db.execute("SELECT hash FROM accounts WHERE id=12").fetchall()
    db.close()
    assert h.startswith("$argon2id$") and "secret" not in h


def test_add_twice_fails_with_one_sentence(tmp_path):
    d = tmp_path / "data"
    assert user(d, "add", "5").returncode == 0
    r = user(d, "add", "5", password="other\n")
    assert r.returncode == 1
    assert "already exists" in one_sentence(r)


def test_passwd(tmp_path):
    d = tmp_path / "data"
    assert user(d, "add", "5").returncode == 0
    r = user(d, "passwd", "5", password="new one\n")
    assert r.returncode == 0, r.stderr
    r = user(d, "passwd", "6")
    assert r.returncode == 1
    assert "does not exist" in one_sentence(r)


def test_del_then_list_empty(tmp_path):
    d = tmp_path / "data"
    assert user(d, "add", "5").returncode == 0
    r = user(d, "del", "5")
    assert r.returncode == 0, r.stderr
    r = user(d, "list")
    assert r.returncode == 0 and r.stdout == "", (r.stdout, r.stderr)
    r = user(d, "del", "5")
    assert r.returncode == 1
    assert "does not exist" in one_sentence(r)


@pytest.mark.parametrize("password", ["", "\n", "\r\n", "x" * 1025 + "\n"])
def test_empty_or_long_password_refused(tmp_path, password):
    d = tmp_path / "data"
    r = user(d, "add", "5", password=password)
    assert r.returncode == 1
    one_sentence(r)
    assert user(d, "list").stdout == ""


def test_longest_password_accepted(tmp_path):
    r = user(tmp_path / "data", "add", "5", password="x" * 1024 + "\n")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("args", [
    [], ["frob"], ["add"], ["add", "0"], ["add", "abc"], ["add", "-1"],
    ["add", "4294967296"], ["add", "5", "6"], ["list", "5"], ["del"],
    ["--bogus", "list"],
])
def test_bad_arguments_exit_2(tmp_path, args):
    r = user(tmp_path / "data", *args)
    assert r.returncode == 2, (args, r.stdout, r.stderr)
    assert "Usage" in r.stderr


def test_server_starts_and_routes_on_a_data_dir_with_accounts(
        tmp_path, store_dir, start_store_server):
    assert user(store_dir, "add", "2").returncode == 0
    s = start_store_server()
    b = s.client()
    b.hello(2)
    a = s.client()
    a.send_frame(1, 2, TEXT, b"hello B")
    assert b.read_frame() == (1, TEXT, b"hello B")
    # while the server runs, the same binary administers the same file
    r = user(store_dir, "add", "3")
    assert r.returncode == 0, r.stderr
    assert user(store_dir, "list").stdout.split() == ["2", "3"]


def test_help_mentions_the_user_subcommand(tmp_path):
    r = subprocess.run([require_binary(), "--help"], capture_output=True,
                       text=True, timeout=5, cwd=tmp_path)
    assert "chat-server user add|passwd|del" in r.stdout
