"""Routing mode (the default): frames go to the receiver's connections."""

import hashlib
import random
import re
import struct

import pytest

from proto import (ERROR, PICTURE, SLOW, TEXT, ConnectionClosed, Sender, c2s,
                   parse_error)

DEFAULT_MAX_FRAME = 16 * 1024 * 1024


def test_route_text_from_article_client_to_hello_client(server):
    b = server.client()
    welcome = b.hello(2)
    assert welcome.user == 2 and welcome.max_frame == DEFAULT_MAX_FRAME
    a = server.client()                         # article-style: no HELLO
    a.send_frame(1, 2, TEXT, b"hello B")
    f = b.read_frame()
    assert (f.sender, f.type, f.body) == (1, TEXT, b"hello B")
    a.expect_no_frame()


def test_welcome_grants_acks_only_when_asked(server):
    """ACKS is granted to a client that asks (durable store), never unasked."""
    assert server.client().hello(2, flags=1).flags == 1
    assert server.client().hello(3).flags == 0


def test_frame_sent_one_byte_at_a_time_is_routed_intact(server):
    b = server.client()
    b.hello(2)
    a = server.client(nodelay=True)
    a.send_bytewise(c2s(1, 2, TEXT, b"split into 29 tiny segments"))
    assert b.read_frame() == (1, TEXT, b"split into 29 tiny segments")


def test_hello_sent_one_byte_at_a_time_is_answered(server):
    b = server.client(nodelay=True)
    b.send_bytewise(c2s(2, 0, 0x80, b"\x01\x00"))
    assert b.read_frame().type == 0x81
    a = server.client()
    a.send_frame(1, 2, TEXT, b"after split hello")
    assert b.read_frame().body == b"after split hello"


def test_1000_pipelined_frames_arrive_in_order(server):
    b = server.client()
    b.hello(2)
    a = server.client()
    a.send_raw(b"".join(c2s(1, 2, TEXT, b"msg %d" % i) for i in range(1000)))
    got = [b.read_frame() for _ in range(1000)]
    assert [f.body for f in got] == [b"msg %d" % i for i in range(1000)]
    assert all(f.sender == 1 and f.type == TEXT for f in got)
    b.expect_no_frame()


def test_10_mib_picture_arrives_byte_exact(server):
    picture = random.Random(10).randbytes(10 * 1024 * 1024)
    b = server.client()
    b.hello(2)
    a = server.client()
    sender = Sender(a, c2s(1, 2, PICTURE, picture))
    f = b.read_frame(timeout=30)
    sender.finish()
    assert (f.sender, f.type, len(f.body)) == (1, PICTURE, len(picture))
    assert hashlib.sha256(f.body).hexdigest() == hashlib.sha256(picture).hexdigest()


TEXTS = {
    "chinese": "你好，世界！这是一条中文消息。",
    "cyrillic": "Привет, мир! Съешь же ещё этих мягких булок.",
    "hebrew": "שלום עולם",
    "arabic": "مرحبا بالعالم",
    "emoji": "👋🌍🎉 👨‍👩‍👧‍👦 🏳️‍🌈",
    "mixed": "Hi 你好 Привет שלום مرحبا 👋 ok",
    "empty": "",
}


@pytest.mark.parametrize("text", TEXTS.values(), ids=TEXTS.keys())
def test_text_in_any_script_arrives_byte_exact(server, text):
    body = text.encode("utf-8")
    b = server.client()
    b.hello(2)
    a = server.client()
    a.send_frame(1, 2, TEXT, body)
    f = b.read_frame()
    assert (f.sender, f.type, f.body) == (1, TEXT, body)
    assert f.body.decode("utf-8") == text


def test_every_device_of_the_receiver_gets_the_frame(server):
    phone, laptop = server.client(), server.client()
    phone.hello(2)
    laptop.hello(2)
    a = server.client()
    a.send_frame(1, 2, TEXT, b"to all my devices")
    assert phone.read_frame() == (1, TEXT, b"to all my devices")
    assert laptop.read_frame() == (1, TEXT, b"to all my devices")


def test_offline_frames_are_delivered_in_order_on_connect(server):
    d = server.client()
    d.hello(4)
    a = server.client()
    for i in range(5):
        a.send_frame(1, 3, TEXT, b"offline %d" % i)
    # Frames from one connection are handled in order: once D has this one,
    # the five frames for the absent user 3 have been stored.
    a.send_frame(1, 4, TEXT, b"barrier")
    assert d.read_frame().body == b"barrier"

    c = server.client()
    c.hello(3)
    a.send_frame(1, 3, TEXT, b"live")
    got = [c.read_frame() for _ in range(6)]
    assert [f.body for f in got] == [b"offline %d" % i for i in range(5)] + [b"live"]
    assert all(f.sender == 1 and f.type == TEXT for f in got)


def test_pipelined_frames_leave_in_few_writes(server):
    """Batching: frames for a connection are appended to its buffer and the
    connection is written once per loop iteration, not once per frame. The
    server reports its write system calls in its stop line."""
    b = server.client()
    b.hello(2)
    a = server.client()
    a.send_raw(b"".join(c2s(1, 2, TEXT, b"msg %d" % i) for i in range(1000)))
    got = [b.read_frame() for _ in range(1000)]
    assert got[-1].body == b"msg 999"
    for c in (a, b):
        c.close()
    assert server.terminate() == 0
    m = re.search(r"(\d+) routed, .* (\d+) writes", server.log())
    assert m, server.log()
    routed, writes = int(m.group(1)), int(m.group(2))
    assert routed == 1000
    # 1 WELCOME + the 1000 frames, in however many reads the kernel made of
    # 20 KB: a handful of writes, never one per frame.
    assert writes <= 20, f"{writes} writes for {routed} frames"
