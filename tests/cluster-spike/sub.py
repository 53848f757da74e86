#!/usr/bin/env python3
"""SPIKE (not built by make): a subscriber that reads and discards, as a node
would take its pub/sub feed. sub.py PORT PREFIX COUNT [SECONDS]: SUBSCRIBE to
PREFIX0..PREFIX{COUNT-1} (in batches of 1,000), print 'subscribed', then read
for SECONDS (default 10) and print the messages received. Channel numbers
are zero-padded to 12 digits, as redis-benchmark writes __rand_int__."""
import socket, sys, time
port, prefix, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
secs = float(sys.argv[4]) if len(sys.argv) > 4 else 10
s = socket.create_connection(("127.0.0.1", port))
def cmd(*a):
    out = b"*%d\r\n" % len(a)
    for x in a:
        x = x if isinstance(x, bytes) else str(x).encode()
        out += b"$%d\r\n%s\r\n" % (len(x), x)
    return out
for i in range(0, count, 1000):
    s.sendall(cmd("SUBSCRIBE", *[f"{prefix}{j:012d}" for j in range(i, min(count, i + 1000))]))
need, got, buf = count, 0, b""
while got < need:                         # wait for every subscribe reply
    buf += s.recv(1 << 20)
    got = buf.count(b"$9\r\nsubscribe\r\n")
print("subscribed", flush=True)
n, end = 0, time.time() + secs
s.settimeout(0.2)
tail = b""
while time.time() < end:
    try:
        d = s.recv(1 << 20)
    except socket.timeout:
        continue
    if not d:
        break
    d = tail + d
    n += d.count(b"$7\r\nmessage\r\n")
    tail = d[-16:]
    n -= tail.count(b"$7\r\nmessage\r\n")
print("received", n + tail.count(b"$7\r\nmessage\r\n"), flush=True)
