"""Echo mode (--echo, the article's behaviour): frames come back to their sender."""

import hashlib
import random

import pytest

from proto import PICTURE, TEXT, VIDEO, VOICE, Sender, c2s


@pytest.mark.parametrize("ftype", [TEXT, PICTURE, VOICE, VIDEO])
@pytest.mark.parametrize("receiver", [2, 0, 0xFFFFFFFF])
def test_frame_comes_back_to_its_sender(echo_server, ftype, receiver):
    a = echo_server.client()
    a.send_frame(7, receiver, ftype, b"echo me \x00\xff")
    assert a.read_frame() == (7, ftype, b"echo me \x00\xff")


def test_echo_goes_to_sender_only(echo_server):
    other = echo_server.client()
    other.hello(2)
    a = echo_server.client()
    a.send_frame(1, 2, TEXT, b"mine")
    assert a.read_frame() == (1, TEXT, b"mine")
    other.expect_no_frame()


def test_echo_to_hello_client(echo_server):
    a = echo_server.client()
    a.hello(5)
    a.send_frame(5, 6, TEXT, "回声".encode())
    assert a.read_frame() == (5, TEXT, "回声".encode())


def test_frame_sent_one_byte_at_a_time_is_echoed_intact(echo_server):
    a = echo_server.client(nodelay=True)
    a.send_bytewise(c2s(1, 2, TEXT, b"one byte per send"))
    assert a.read_frame() == (1, TEXT, b"one byte per send")


def test_1000_pipelined_frames_are_echoed_in_order(echo_server):
    a = echo_server.client()
    a.send_raw(b"".join(c2s(1, 2, TEXT, b"msg %d" % i) for i in range(1000)))
    assert [a.read_frame().body for _ in range(1000)] == [b"msg %d" % i for i in range(1000)]
    a.expect_no_frame()


def test_10_mib_picture_is_echoed_byte_exact(echo_server):
    picture = random.Random(5).randbytes(10 * 1024 * 1024)
    a = echo_server.client()
    sender = Sender(a, c2s(1, 2, PICTURE, picture))
    f = a.read_frame(timeout=30)
    sender.finish()
    assert (f.sender, f.type, len(f.body)) == (1, PICTURE, len(picture))
    assert hashlib.sha256(f.body).digest() == hashlib.sha256(picture).digest()
