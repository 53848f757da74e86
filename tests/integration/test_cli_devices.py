"""chat-client and devices (CONV, docs/PROTOCOL.md "Devices and
conversations"): `--device NAME` in every mode, several devices of one user
each getting every message once (live or after being offline), a user's own
messages reaching its other devices marked "own", and a message resent after
the client's connection was cut delivered once.

The tests marked `needs_conv` need a server that grants CONV (routing mode);
they fail at once, saying so, against one that does not. The others (usage,
a server that does not grant CONV) run against any server.

The client binary comes from $CHAT_CLIENT (default <repo>/build/chat-client).
"""

import json
import select
import socket
import struct
import subprocess
import threading

import pytest

from proto import C2S, HELLO, WELCOME, Client, parse_welcome
# (listeners and terms are fixtures: imported, they serve the tests here too)
from test_cli_client import (DEADLINE, assert_one_sentence, listen,  # noqa: F401
                             listeners, run, send)
from test_cli_interactive import term, terms  # noqa: F401

FLAG_ACKS, FLAG_CONV = 0x01, 0x02
POST = 0x87


# -- fixtures and helpers --------------------------------------------------------

def grants_conv(server):
    """Does `server` grant CONV? Asked with a raw HELLO (ACKS, CONV, the
    default device) from user 99, who then leaves."""
    c = Client(server.host, server.port)
    try:
        c.send_frame(99, 0, HELLO, bytes([1, FLAG_ACKS | FLAG_CONV, 0]))
        f = c.read_frame()
        assert f.type == WELCOME, f"expected WELCOME, got {f}"
        return bool(parse_welcome(f.body).flags & FLAG_CONV)
    finally:
        c.close()


@pytest.fixture
def conv_server(server):
    """The routing server, which must grant CONV."""
    if not grants_conv(server):
        pytest.fail("the server does not grant CONV in routing mode (docs/PROTOCOL.md, "
                    "HELLO with CONV): its side of devices is missing", pytrace=False)
    return server


def say(server, sender, to, text, *args):
    r = send(server, "--id", sender, "--to", to, "--text", text, *args)
    assert r.returncode == 0, r.stderr.decode()


def texts(msgs):
    return [m["text"] for m in msgs]


def finish(listener, timeout=DEADLINE):
    """Wait for listen to exit 0 (a listener still waiting for a message that
    never comes fails the test, with what it printed); its JSON lines."""
    try:
        rc = listener.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        listener.kill()
        out = listener.proc.stdout.read().decode("utf-8", "replace")
        pytest.fail(f"listen did not exit within {timeout}s; it printed {out!r}")
    out = listener.proc.stdout.read().decode("utf-8")
    assert rc == 0, listener.stderr_lines
    return [json.loads(line) for line in out.splitlines()]


def next_line(listener, timeout=DEADLINE):
    """The next JSON line listen prints (it flushes whole lines)."""
    r, _, _ = select.select([listener.proc.stdout], [], [], timeout)
    if not r:
        pytest.fail(f"listen printed nothing within {timeout}s")
    line = listener.proc.stdout.readline()
    assert line, f"listen exited: {listener.stderr_lines!r}"
    return json.loads(line)


# -- usage and servers without CONV (run against any server) ----------------------

@pytest.mark.parametrize("name", ["", "my phone", "a/b", "caf\u00e9", "x" * 33, "a:b"])
@pytest.mark.parametrize("mode", [["send", "--to", "2", "--text", "x"], ["listen"], []])
def test_bad_device_name_is_a_usage_error(mode, name):
    r = run(*mode, "--id", 1, "--device", name)
    assert r.returncode == 2, r.stderr
    line = assert_one_sentence(r)
    assert "--device" in line and "A-Z a-z 0-9 . _ -" in line, line


@pytest.mark.parametrize("mode", [["send", "--to", "2", "--text", "x"], ["listen"]])
def test_device_needs_control_frames(mode):
    r = run(*mode, "--id", 1, "--device", "phone", "--no-acks")
    assert r.returncode == 2
    line = assert_one_sentence(r)
    assert "--device" in line and "--no-acks" in line, line


@pytest.mark.parametrize("mode", [["send"], ["listen"], ["--id", "1"]])
def test_help_lists_device(mode):
    r = run(*mode, "--help")
    assert r.returncode == 0
    assert "--device NAME" in r.stdout.decode()


def test_device_on_a_server_without_conv(echo_server):
    """An echo server never grants CONV: --device is accepted and ignored,
    the message goes out as a bare data frame and comes back as one."""
    assert not grants_conv(echo_server)
    r = send(echo_server, "--id", 1, "--to", 2, "--text", "hi", "--device", "phone")
    assert r.returncode == 0, r.stderr.decode()
    assert r.stderr == b""


# -- several devices (needs CONV) -------------------------------------------------

def test_two_devices_each_get_every_message(conv_server, listeners):
    phone = listen(listeners, conv_server, 1, "--device", "phone", "--count", 2)
    laptop = listen(listeners, conv_server, 1, "--device", "laptop", "--count", 2)
    say(conv_server, 2, 1, "a")
    say(conv_server, 2, 1, "b")
    got = [finish(phone), finish(laptop)]
    for msgs in got:
        assert [(m["from"], m["to"], m["type"], m["text"]) for m in msgs] == \
            [(2, 1, "text", "a"), (2, 1, "text", "b")], msgs
        assert not any("own" in m for m in msgs), msgs
        assert msgs[0]["id"] < msgs[1]["id"], msgs
    assert [m["id"] for m in got[0]] == [m["id"] for m in got[1]]  # one message, one id


def test_offline_device_gets_what_it_missed(conv_server, listeners):
    """Messages that arrive while both devices are offline reach each of them
    (one device's acknowledgement does not take them from the other); what a
    device acknowledged does not come again; a new device starts at the
    cursor of the user's least advanced device."""
    s = conv_server
    phone = listen(listeners, s, 1, "--device", "phone", "--count", 1)
    laptop = listen(listeners, s, 1, "--device", "laptop", "--count", 1)
    say(s, 2, 1, "m1")
    assert texts(finish(phone)) == ["m1"]
    assert texts(finish(laptop)) == ["m1"]

    say(s, 2, 1, "m2")  # both devices offline
    say(s, 2, 1, "m3")
    on_laptop = finish(listen(listeners, s, 1, "--device", "laptop", "--count", 2))
    on_phone = finish(listen(listeners, s, 1, "--device", "phone", "--count", 2))
    assert texts(on_laptop) == ["m2", "m3"]
    assert texts(on_phone) == ["m2", "m3"]
    assert [m["id"] for m in on_laptop] == [m["id"] for m in on_phone]

    # The laptop acknowledged m2 and m3: its next session starts after them.
    laptop = listen(listeners, s, 1, "--device", "laptop", "--count", 1)
    say(s, 2, 1, "m4")
    assert texts(finish(laptop)) == ["m4"]

    # A new device starts where the least advanced device (the phone, at m3)
    # is: it gets m4, which the phone still lacks, then m5.
    tablet = listen(listeners, s, 1, "--device", "tablet", "--count", 2)
    say(s, 2, 1, "m5")
    assert texts(finish(tablet)) == ["m4", "m5"]


def test_own_messages_reach_the_other_devices(conv_server, listeners):
    """A message user 1 sends from its phone reaches its laptop marked own,
    and its receiver; not the phone, not even another connection of the
    phone that is listening meanwhile."""
    s = conv_server
    laptop = listen(listeners, s, 1, "--device", "laptop", "--count", 1)
    phone = listen(listeners, s, 1, "--device", "phone", "--count", 1)
    peer = listen(listeners, s, 2, "--device", "desk", "--count", 1)
    say(s, 1, 2, "from the phone", "--device", "phone")
    mine = finish(laptop)
    theirs = finish(peer)
    assert len(mine) == 1 and len(theirs) == 1
    assert {k: mine[0][k] for k in ("from", "to", "own", "type", "text")} == \
        {"from": 1, "to": 2, "own": True, "type": "text", "text": "from the phone"}
    assert "own" not in theirs[0] and theirs[0]["from"] == 1 and theirs[0]["to"] == 2
    assert mine[0]["id"] == theirs[0]["id"]

    # The phone's first message is the reply, sent after the server took
    # "from the phone" (the marker: ids increase, so that would come first).
    say(s, 2, 1, "reply")
    got = finish(phone)
    assert texts(got) == ["reply"], got
    assert got[0]["id"] > mine[0]["id"]
    # A later session of the phone does not get it either.
    phone = listen(listeners, s, 1, "--device", "phone", "--count", 1)
    say(s, 2, 1, "reply 2")
    assert texts(finish(phone)) == ["reply 2"]


def test_interactive_shows_own_messages_as_me(conv_server, terms):
    t = term(terms, conv_server, 1, "--device", "laptop")
    say(conv_server, 1, 7, "sent from the phone", "--device", "phone")
    t.expect("me -> 7: sent from the phone")
    say(conv_server, 7, 1, "an answer")
    t.expect("7: an answer")


# -- a resend after a cut connection is delivered once (needs CONV) -----------------

class CuttingProxy:
    """A TCP proxy between one chat-client and the server. It keeps what the
    client sends on each connection, can stop passing the server's bytes on
    (so an acknowledgement never arrives) and can cut every connection."""

    def __init__(self, server):
        self.host = "127.0.0.1"
        self._lsock = socket.create_server((self.host, 0))
        self.port = self._lsock.getsockname()[1]
        self._upstream = (server.host, server.port)
        self._lock = threading.Lock()
        self.conns = []  # [{"socks": (client, upstream), "sent": bytearray, "mute": bool}]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self._lsock.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(self._upstream)
            except OSError:  # the server is gone: so is this end
                c.close()
                continue
            conn = {"socks": (c, u), "sent": bytearray(), "mute": False}
            with self._lock:
                self.conns.append(conn)
            threading.Thread(target=self._pump, args=(c, u, conn, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c, conn, False), daemon=True).start()

    def _pump(self, src, dst, conn, from_client):
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                break
            if not data:
                break
            if from_client:
                with self._lock:
                    conn["sent"] += data
            elif conn["mute"]:
                continue  # swallowed: the client never sees it
            try:
                dst.sendall(data)
            except OSError:
                break
        self._close(conn)

    @staticmethod
    def _close(conn):
        for s in conn["socks"]:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def mute(self):
        """From now on, the server's bytes on the current connections are dropped."""
        with self._lock:
            for conn in self.conns:
                conn["mute"] = True

    def cut(self):
        with self._lock:
            conns = list(self.conns)
        for conn in conns:
            self._close(conn)

    def frames(self, i):
        """The frames the client sent on connection i: (type, body) pairs."""
        with self._lock:
            data = bytes(self.conns[i]["sent"])
        out, off = [], 0
        while off + C2S.size <= len(data):
            _, _, ftype, n = C2S.unpack_from(data, off)
            out.append((ftype, data[off + C2S.size:off + C2S.size + n]))
            off += C2S.size + n
        return out

    def close(self):
        try:  # wakes the accepting thread up (close alone would not)
            self._lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._lsock.close()
        self.cut()


@pytest.fixture
def proxy_factory():
    made = []

    def make(server):
        p = CuttingProxy(server)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def posts(frames, payload):
    """The cids of the POSTs among frames that carry `payload`."""
    return [struct.unpack("!Q", b[2:10])[0] for t, b in frames
            if t == POST and b[10:] == payload]


def test_resend_after_a_cut_connection_is_delivered_once(conv_server, listeners,
                                                          terms, proxy_factory):
    """The interactive client's connection is cut after the server accepted a
    message but before its acknowledgement reached the client: libchat
    resends it on the next connection with the same client id, the server
    acknowledges it without delivering it again, and the receiver sees it
    once, then the next message."""
    s = conv_server
    proxy = proxy_factory(s)
    receiver = listen(listeners, s, 2, "--device", "desk", "--count", 2)
    t = term(terms, proxy, 1, "--device", "laptop", "--to", 2)
    proxy.mute()  # the ACK for what follows never reaches the client
    t.type("once only\r")
    first = next_line(receiver)  # the server accepted and delivered it
    assert first["text"] == "once only", first
    proxy.cut()
    t.expect("reconnected to")
    t.type("marker\r")
    msgs = [first] + finish(receiver)
    assert texts(msgs) == ["once only", "marker"], msgs
    assert msgs[0]["id"] < msgs[1]["id"]

    # It was resent, with the cid of the first attempt.
    cid = posts(proxy.frames(0), b"once only")
    assert len(cid) == 1 and cid[0] != 0, proxy.frames(0)
    assert posts(proxy.frames(1), b"once only") == cid, proxy.frames(1)
