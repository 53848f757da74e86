#!/usr/bin/python3
"""Write the seed corpus of the fuzz targets (tests/fuzz/corpus/).

    tests/fuzz/make_corpus.py [DIR]      (default: tests/fuzz/corpus)

frame/: inputs of fuzz_frame: single and pipelined frames in both
directions, control bodies on their own, truncated frames, a 4 GiB length.
conn/: inputs of fuzz_conn: one selector byte (bit 0: the harness prefixes
a valid first frame; bit 1: a data frame instead of HELLO; bit 2: HELLO
asks for ACKS; bit 3: the first 256 bytes go in chunks of (byte >> 4) + 1),
then the bytes client B sends. The receiver that is always connected is
user 2 (FUZZ_USER_A in fuzz_conn.c); B binds as user 1 when the harness
prefixes a frame.

Deterministic: the same files every time (names say what each one is).
"""
import os
import struct
import sys

TEXT, PICTURE, VOICE, VIDEO = 1, 2, 3, 4
HELLO, WELCOME, ACK, ERROR, PING, PONG = 0x80, 0x81, 0x82, 0x83, 0x84, 0x85
MSG, POST, GROUP, HISTORY = 0x86, 0x87, 0x88, 0x8A
RECEIPT, TYPING, PRESENCE = 0x8C, 0x8D, 0x8E
SIGNALS = 0x04
ACKS, CONV = 0x01, 0x02
A, B = 2, 1          # receiver, sender (fuzz_conn.c)


def c2s(sender, receiver, ftype, body=b""):
    return struct.pack("!IIBI", sender, receiver, ftype, len(body)) + body


def s2c(sender, ftype, body=b""):
    return struct.pack("!IBI", sender, ftype, len(body)) + body


def hello(flags=0, password=b"", version=1):
    return bytes([version, flags]) + password


def hello_conv(flags, device, password=b""):
    return bytes([1, flags | CONV, len(device)]) + device + password


def post(kind, cid, payload, flags=0):
    return struct.pack("!BBQ", kind, flags, cid) + payload


def welcome(flags, user, max_frame):
    return struct.pack("!BBII", 1, flags, user, max_frame)


def ack(n):
    return struct.pack("!Q", n)


def error(code, ref, reason):
    return struct.pack("!HQ", code, ref) + reason


def frame_seeds():
    utf8 = "你好, привет, שלום 👋".encode()
    long_reason = ("é" * 150).encode()          # 300 bytes, cut on a boundary
    s = {
        "c2s-text": c2s(B, A, TEXT, b"hello"),
        "c2s-text-utf8": c2s(B, A, TEXT, utf8),
        "c2s-picture": c2s(B, A, PICTURE, b"\x89PNG\r\n\x1a\n" + bytes(32)),
        "c2s-voice": c2s(B, A, VOICE, b"OggS" + bytes(28)),
        "c2s-video": c2s(B, A, VIDEO, b"\x00\x00\x00\x18ftypmp42"),
        "c2s-empty-body": c2s(B, A, TEXT),
        "c2s-hello": c2s(B, 0, HELLO, hello()),
        "c2s-hello-acks": c2s(B, 0, HELLO, hello(ACKS)),
        "c2s-hello-password": c2s(B, 0, HELLO, hello(ACKS, b"correct horse")),
        "c2s-hello-short": c2s(B, 0, HELLO, b"\x01"),
        "c2s-ack": c2s(B, 0, ACK, ack(3)),
        "c2s-ping": c2s(B, 0, PING, b"p" * 64),
        "c2s-pong": c2s(B, 0, PONG, b"abc"),
        "c2s-unknown-type": c2s(B, A, 0x42, b"?"),
        "c2s-pipelined": c2s(B, 0, HELLO, hello(ACKS)) + c2s(B, A, TEXT, b"one")
                         + c2s(B, A, PICTURE, b"two") + c2s(B, 0, PING, b"x")
                         + c2s(B, 0, ACK, ack(0)),
        "c2s-4gib-length": struct.pack("!IIBI", B, A, TEXT, 0xFFFFFFFF),
        "c2s-truncated-header": c2s(B, A, TEXT, b"abc")[:12],
        "c2s-truncated-body": c2s(B, A, TEXT, b"abcdef")[:16],
        "s2c-text": s2c(B, TEXT, b"hello"),
        "s2c-video": s2c(B, VIDEO, bytes(100)),
        "s2c-welcome": s2c(0, WELCOME, welcome(ACKS, A, 16 << 20)),
        "s2c-ack": s2c(0, ACK, ack(2**64 - 1)),
        "s2c-error": s2c(0, ERROR, error(3, 7, b"spoofed sender")),
        "s2c-error-long-utf8": s2c(0, ERROR, error(1, 0, long_reason)),
        "s2c-ping": s2c(0, PING, b"12345678"),
        "s2c-pipelined": s2c(0, WELCOME, welcome(0, A, 1024)) + s2c(B, TEXT, b"x")
                         + s2c(0, ACK, ack(1)) + s2c(0, ERROR, error(2, 0, b"")),
        "s2c-4gib-length": struct.pack("!IBI", B, TEXT, 0xFFFFFFFF),
        "s2c-truncated": s2c(B, TEXT, b"abcdef")[:11],
        # bodies on their own (the target also parses the whole input as
        # each control body)
        "body-hello": hello(ACKS, b"pw"),
        "body-welcome": welcome(ACKS, 42, 1 << 24),
        "body-ack": ack(12345),
        "body-error": error(12, 0, b"invalid receiver: user id 0"),
        "body-error-nul": error(4, 1, b"bad\x00tail"),
        "body-post": post(TEXT, 9, b"hi"),
        "body-receipt": struct.pack("!BBIIQQ", 2, 2, 7, 0, 99, 0),
        "body-typing": struct.pack("!BIB", 0, 7, 1),
        "body-presence-req": struct.pack("!BHII", 1, 2, 7, 8),
        "body-presence": struct.pack("!IBQ", 7, 0, 1700000000000),
        "body-post-group": post(TEXT, 9, b"", flags=2),
        "empty": b"",
    }
    return s


def conn_seeds():
    text = lambda body, to=A, frm=B: c2s(frm, to, TEXT, body)
    big = bytes(range(256)) * 240                       # 61440 bytes
    s = {
        # the harness adds HELLO(1) or a first data frame
        "prefixed-hello-text": b"\x01" + text(b"hi"),
        "prefixed-hello-acks-text": b"\x05" + text(b"hi") + text(b"again"),
        "prefixed-data-text": b"\x03" + text(b"article client"),
        "prefixed-hello-chunked": b"\xf9" + text(b"split into 16-byte chunks" * 4),
        "prefixed-hello-bytewise": b"\x09" + text(b"one byte per read"),
        # streams that bind themselves
        "hello-text": b"\x00" + c2s(B, 0, HELLO, hello()) + text(b"hello"),
        "hello-acks-pipelined": b"\x00" + c2s(B, 0, HELLO, hello(ACKS))
            + text(b"1") + c2s(B, A, PICTURE, b"2" * 100)
            + c2s(B, A, VOICE, b"3" * 10) + c2s(B, A, VIDEO, b"4")
            + c2s(B, 0, PING, b"ping") + c2s(B, 0, ACK, ack(0)),
        "hello-password": b"\x00" + c2s(B, 0, HELLO, hello(ACKS, b"secret")) + text(b"x"),
        "hello-bad-version": b"\x00" + c2s(B, 0, HELLO, hello(0, b"", 9)) + text(b"x"),
        "hello-short": b"\x00" + c2s(B, 0, HELLO, b"\x01"),
        "hello-late": b"\x01" + c2s(B, 0, HELLO, hello()),
        "hello-user0": b"\x00" + c2s(0, 0, HELLO, hello()),
        "article-text": b"\x00" + text(b"no HELLO at all") + text(b"second"),
        "article-user0": b"\x00" + text(b"x", A, 0),
        "to-self": b"\x01" + text(b"echo?", B),
        "to-offline": b"\x05" + text(b"stored", 77) + text(b"", 78),
        "receiver-zero": b"\x01" + text(b"nobody", 0),
        "spoof": b"\x01" + text(b"not me", A, 99),
        "unknown-types": b"\x01" + c2s(B, A, 0x00, b"z") + c2s(B, A, 0x7f, b"")
            + c2s(B, A, WELCOME, bytes(10)) + c2s(B, A, ERROR, bytes(10)) + c2s(B, A, 0xff),
        "ack-too-many": b"\x05" + c2s(B, 0, ACK, ack(1000)),
        "ack-bad-size": b"\x01" + c2s(B, 0, ACK, b"\x00" * 3),
        "ping-too-big": b"\x01" + c2s(B, 0, PING, b"p" * 65),
        "pong-unasked": b"\x01" + c2s(B, 0, PONG, b"q"),
        "length-4gib": b"\x01" + struct.pack("!IIBI", B, A, TEXT, 0xFFFFFFFF),
        "length-over-max": b"\x01" + struct.pack("!IIBI", B, A, TEXT, (16 << 20) + 1),
        "truncated-header": b"\x01" + text(b"abc")[:7],
        "truncated-body": b"\x01" + text(b"abcdefgh")[:17],
        "big-frame": b"\x01" + c2s(B, A, PICTURE, big),
        "many-small": b"\x05" + b"".join(text(b"%d" % i) for i in range(200)),
        "empty": b"\x00",
        # devices and conversations: CONV HELLO, POSTs with client ids
        "conv-post-dedup": b"\x00" + c2s(B, 0, HELLO, hello_conv(ACKS, b"phone"))
            + c2s(B, A, POST, post(TEXT, 7, b"once")) + c2s(B, A, POST, post(TEXT, 7, b"once"))
            + c2s(B, A, POST, post(PICTURE, 0, b"p" * 50)) + c2s(B, A, TEXT, b"bare")
            + c2s(B, 0, ACK, ack(0)),
        "conv-default-device": b"\x00" + c2s(B, 0, HELLO, hello_conv(0, b""))
            + c2s(B, B, POST, post(TEXT, 1, b"to myself")),
        "conv-bad-device": b"\x00" + c2s(B, 0, HELLO, hello_conv(0, b"a b")),
        "conv-device-too-long": b"\x00" + c2s(B, 0, HELLO, bytes([1, CONV, 40]) + b"d" * 40),
        "conv-post-short": b"\x00" + c2s(B, 0, HELLO, hello_conv(0, b"x")) + c2s(B, A, POST, b"\x01"),
        "conv-post-bad-kind": b"\x00" + c2s(B, 0, HELLO, hello_conv(0, b"x")) + c2s(B, A, POST, post(9, 1, b"")),
        "post-without-conv": b"\x01" + c2s(B, A, POST, post(TEXT, 3, b"no conv")),
        # groups and history
        "conv-group-life": b"\x00" + c2s(B, 0, HELLO, hello_conv(ACKS, b"g"))
            + c2s(B, 0, GROUP, struct.pack("!BII", 1, 1, 0) + b"\x04team"
                  + struct.pack("!HII", 2, A, 9))
            + c2s(B, 1, POST, post(TEXT, 11, b"to the group", 2))
            + c2s(B, 0, GROUP, struct.pack("!BII", 6, 2, 0))
            + c2s(B, 0, GROUP, struct.pack("!BII", 7, 3, 1))
            + c2s(B, 0, GROUP, struct.pack("!BII", 2, 4, 1) + b"\x03new")
            + c2s(B, 0, GROUP, struct.pack("!BII", 4, 5, 1) + struct.pack("!HI", 1, 9))
            + c2s(B, 0, GROUP, struct.pack("!BII", 5, 6, 1)),
        "conv-group-bad": b"\x00" + c2s(B, 0, HELLO, hello_conv(0, b"g"))
            + c2s(B, 0, GROUP, struct.pack("!BII", 3, 1, 1) + struct.pack("!H", 5)),
        "conv-history": b"\x00" + c2s(B, 0, HELLO, hello_conv(ACKS, b"h"))
            + c2s(B, A, TEXT, b"x")
            + c2s(B, 0, HISTORY, struct.pack("!IBIQH", 1, 1, A, 0, 10))
            + c2s(B, 0, HISTORY, struct.pack("!IBIQH", 2, 2, 1, 0, 10))
            + c2s(B, 0, HISTORY, struct.pack("!IBIQH", 3, 3, 1, 0, 0)),
        # receipts, typing, presence (SIGNALS)
        "conv-signals": b"\x00" + c2s(B, 0, HELLO, hello_conv(ACKS | SIGNALS, b"s"))
            + c2s(B, A, POST, post(TEXT, 5, b"tick me"))
            + c2s(B, 0, PRESENCE, struct.pack("!BHII", 1, 2, A, 9))
            + c2s(B, 0, RECEIPT, struct.pack("!BBIIQQ", 2, 0, A, 0, 1 << 40, 0))
            + c2s(B, 0, RECEIPT, struct.pack("!BBIIQQ", 3, 0, A, 0, 0, 0))
            + c2s(B, 0, TYPING, struct.pack("!BIB", 0, A, 1))
            + c2s(B, 0, GROUP, struct.pack("!BII", 1, 1, 0) + b"\x01g"
                  + struct.pack("!HI", 1, A))
            + c2s(B, 0, TYPING, struct.pack("!BIB", 2, 1, 1))
            + c2s(B, 0, RECEIPT, struct.pack("!BBIIQQ", 3, 2, 1, 0, 0, 0))
            + c2s(B, 0, PRESENCE, struct.pack("!BHI", 2, 1, 9))
            + c2s(B, 0, ACK, ack(1)),
        "conv-signals-bad": b"\x00" + c2s(B, 0, HELLO, hello_conv(0, b"s"))
            + c2s(B, 0, TYPING, struct.pack("!BIB", 0, A, 1))
            + c2s(B, 0, RECEIPT, struct.pack("!BBIIQQ", 1, 0, A, 0, 0, 0)),
    }
    return s


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus")
    for sub, seeds in (("frame", frame_seeds()), ("conn", conn_seeds())):
        d = os.path.join(root, sub)
        os.makedirs(d, exist_ok=True)
        for name in os.listdir(d):
            os.remove(os.path.join(d, name))
        for name, data in sorted(seeds.items()):
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        print(f"{d}: {len(seeds)} files, {sum(map(len, seeds.values()))} bytes")


if __name__ == "__main__":
    main()
