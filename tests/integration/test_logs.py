"""Structured logs (docs/OPERATIONS.md, "Logs"): `--log-format json` writes
one JSON object per line on stderr, with time, level, event and msg, and peer
and user on connection lines; a bad --log-format is a command-line error;
nothing is logged per frame at info; every event the source logs is in the
documented table.
"""

import json
import re
import subprocess
from pathlib import Path

from conftest import require_binary
from proto import (HELLO, PING, PONG, TEXT, PICTURE, WELCOME,
                   ConnectionClosed, c2s, ping_sync, read_data)
from test_security import add_user

REPO = Path(__file__).resolve().parents[2]
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")
EVENT = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*\Z")
LEVELS = {"error", "warn", "info", "debug"}


def json_lines(srv):
    """Every line of the server's stderr, parsed; fails on the first line
    that is not a log object of the documented shape."""
    raw = srv.log_path.read_bytes()
    assert raw.endswith(b"\n"), f"last line not ended:\n{raw[-300:]!r}"
    out = []
    for i, line in enumerate(raw.split(b"\n")[:-1]):
        try:
            obj = json.loads(line.decode("utf-8"))  # strict UTF-8 too
        except ValueError as e:
            raise AssertionError(f"line {i + 1} is not JSON ({e}): {line!r}")
        keys = list(obj)
        assert keys[:3] == ["time", "level", "event"] and keys[-1] == "msg", \
            f"line {i + 1}: keys {keys}"
        assert keys[3:-1] in ([], ["peer"], ["peer", "user"]), \
            f"line {i + 1}: keys {keys}"
        assert TIME.match(obj["time"]), obj
        assert obj["level"] in LEVELS, obj
        assert EVENT.match(obj["event"]), obj
        assert isinstance(obj["msg"], str) and obj["msg"], obj
        if "user" in obj:
            assert isinstance(obj["user"], int) and obj["user"] > 0, obj
        out.append(obj)
    return out


def until_closed(c, timeout=10):
    """Read frames (the ERROR that says why) until the server closes."""
    frames = []
    try:
        while True:
            frames.append(c.read_frame(timeout=timeout))
    except ConnectionClosed:
        return frames


def sync(c, user):
    """PING, then frames up to its PONG (ERRORs for refused frames among
    them): the server has handled all that c sent."""
    c.send_frame(user, 0, PING, b"sync")
    while c.read_frame().type != PONG:
        pass


def events_of(lines, event):
    return [o for o in lines if o["event"] == event]


def test_json_lines_name_their_events(start_store_server, store_dir):
    store_dir.mkdir(parents=True, exist_ok=True)
    add_user(store_dir, 1, "one")
    srv = start_store_server("--auth", "on", "--log-format", "json",
                             "--log-level", "debug")

    good = srv.client()
    good.send_hello(1, password=b"one")
    assert good.read_frame().type == WELCOME
    # bound: refusals name the peer and the user
    good.send_frame(1, 2, 0x7E, b"x")               # unknown frame type
    good.send_frame(9, 2, TEXT, b"spoofed")         # another sender
    sync(good, 1)

    bad_pw = srv.client()
    bad_pw.send_hello(1, password=b"wrong \"quoted\"\n")
    until_closed(bad_pw)                            # ERROR AUTH after 1 s

    early = srv.client()                            # not logged in
    early.send_frame(1, 2, TEXT, b"hi")
    until_closed(early)

    big = srv.client()                              # past --max-frame
    big.send_raw(c2s(1, 0, HELLO, b"")[:9] + (1 << 30).to_bytes(4, "big"))
    until_closed(big)

    srv.wait_for_log('"event":"frame_too_large"')
    assert srv.terminate() == 0

    lines = json_lines(srv)
    seen = {o["event"] for o in lines}
    for ev in ("listening", "auth_on", "store_opened", "connected",
               "logged_in", "frame_unknown_type", "frame_spoofed",
               "login_failed", "frame_before_login", "frame_too_large",
               "shutting_down", "stopped"):
        assert ev in seen, f"no {ev} line in:\n{srv.log()}"

    def one(event, client):
        peer = f"127.0.0.1:{client.local_port}"
        got = [o for o in events_of(lines, event) if o.get("peer") == peer]
        assert len(got) == 1, f"{event} of {peer}: {got}\n{srv.log()}"
        return got[0]

    # a bound connection carries its user; during a login, the user its
    # HELLO claims; a connection that named none has none
    for ev in ("logged_in", "frame_unknown_type", "frame_spoofed"):
        assert one(ev, good)["user"] == 1
    assert one("login_failed", bad_pw)["user"] == 1
    for ev, c in (("frame_before_login", early), ("frame_too_large", big)):
        assert "user" not in one(ev, c)
    assert one("frame_too_large", big)["level"] == "warn"
    # lines not about a connection have neither
    for o in events_of(lines, "listening") + events_of(lines, "stopped"):
        assert "peer" not in o and "user" not in o
    # the sentence is the text format's, without the peer prefix
    assert one("logged_in", good)["msg"] == "logged in"


def test_text_format_is_the_default(start_server):
    srv = start_server()
    c = srv.client()
    c.hello(1)
    c.send_frame(1, 2, 0x7E, b"x")
    sync(c, 1)
    line = srv.wait_for_log(re.compile(
        rf"^\S+Z WARN peer=127\.0\.0\.1:{c.local_port} user=1: refused frame: "
        r"unknown frame type 126", re.M))
    assert line
    assert not srv.log().startswith("{")


def test_bad_log_format_is_a_usage_error(tmp_path):
    r = subprocess.run([require_binary(), "--port", "0", "--data-dir",
                        str(tmp_path / "d"), "--log-format", "bogus"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, r
    assert r.stderr.count("\n") == 1, r.stderr
    assert "--log-format" in r.stderr and "'bogus'" in r.stderr and \
        "text or json" in r.stderr, r.stderr
    assert not (tmp_path / "d").exists()


def test_no_line_per_frame_at_info(start_server):
    srv = start_server("--log-format", "json", "--log-level", "info")
    rx = srv.client()
    rx.hello(2)
    tx = srv.client()
    tx.hello(1)
    ping_sync(tx, 1)
    ping_sync(rx, 2)
    before = json_lines(srv)

    n = 3000
    tx.send_raw(b"".join(c2s(1, 2, TEXT if i % 2 else PICTURE, b"m%d" % i)
                         for i in range(n)))
    got = read_data(rx, n, timeout=60)              # the marker: all delivered
    assert got[-1].body == b"m%d" % (n - 1)
    # and stored ones, delivered when their receiver comes
    tx.send_raw(b"".join(c2s(1, 3, TEXT, b"s%d" % i) for i in range(n)))
    ping_sync(tx, 1)
    later = srv.client()
    later.hello(3)
    assert read_data(later, n, timeout=60)[-1].body == b"s%d" % (n - 1)

    after = json_lines(srv)
    new = after[len(before):]
    assert not new, f"{len(new)} lines for {2 * n} frames:\n" + \
        "\n".join(json.dumps(o) for o in new[:20])


# -- every event in the source is documented, and only those --------------

CALL = re.compile(
    r"\b(?:log_(?:error|warn|info|debug)\(|"
    r"CLOG\(\s*\w+\s*,[^,]+,|log_peer\([^,]+,|"
    r"refuse_once\(\s*\w+\s*,\s*\w+\s*,)\s*\"([^\"]*)\"")


def source_events():
    found = {}
    for d in ("src/server", "src/common", "tests/support"):
        for f in sorted((REPO / d).glob("*.[ch]")):
            for m in CALL.finditer(f.read_text()):
                found.setdefault(m.group(1), f.name)
    return found


def documented_events():
    text = (REPO / "docs" / "OPERATIONS.md").read_text()
    sec = text.split("### Log events", 1)[1].split("\n#", 1)[0]
    return [m.group(1) for m in re.finditer(r"^\| `([^`]+)` \|", sec, re.M)]


def test_every_event_is_documented():
    src = source_events()
    doc = documented_events()
    assert len(src) > 60, sorted(src)
    for ev in src:
        assert EVENT.match(ev), f"event {ev!r} ({src[ev]}) is not snake_case"
    assert len(doc) == len(set(doc)), "an event listed twice"
    missing = sorted(set(src) - set(doc))
    stale = sorted(set(doc) - set(src))
    assert not missing, f"events logged but not in docs/OPERATIONS.md: {missing}"
    assert not stale, f"events in docs/OPERATIONS.md never logged: {stale}"
