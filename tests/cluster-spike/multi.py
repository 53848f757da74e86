#!/usr/bin/env python3
"""SPIKE (not built by make): XADD + PUBLISH as MULTI/EXEC against the same
two as one EVAL, W transactions in flight on one connection, for SECONDS.
multi.py PORT REDIS_PID [W] [SECONDS]"""
import os, socket, sys, time
port, rpid = int(sys.argv[1]), int(sys.argv[2])
W = int(sys.argv[3]) if len(sys.argv) > 3 else 64
secs = float(sys.argv[4]) if len(sys.argv) > 4 else 2
def cmd(*a):
    out = b"*%d\r\n" % len(a)
    for x in a:
        x = x if isinstance(x, bytes) else str(x).encode()
        out += b"$%d\r\n%s\r\n" % (len(x), x)
    return out
def ticks():
    return sum(int(x) for x in open(f"/proc/{rpid}/stat").read().rsplit(")", 1)[1].split()[11:13])
body = b"x" * 100
LUA = ("redis.call('XADD', KEYS[1], '*', 'h', ARGV[1], 'b', ARGV[2]) "
       "redis.call('PUBLISH', KEYS[2], ARGV[2]) return 1")
def run(label, make, replies_per):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    n, t0, c0, u0 = 0, time.time(), ticks(), os.times()
    while time.time() - t0 < secs:
        s.sendall(b"".join(make(n + i) for i in range(W)))
        want = W * replies_per
        buf = b""
        while buf.count(b"\r\n") < want:   # each reply here is one line
            buf += s.recv(1 << 20)
        n += W
    el, c1, u1 = time.time() - t0, ticks(), os.times()
    me = (u1.user + u1.system - u0.user - u0.system) / el * 100
    print(f"{label}: {n/el:.0f}/s ({W} in flight); redis-server CPU {(c1-c0)/el:.0f}%, client {me:.0f}%")
    s.close()
# MULTI, XADD, PUBLISH, EXEC: +OK, +QUEUED, +QUEUED, then *2 $<id> <id> :N -> 6 lines
run("MULTI XADD PUBLISH EXEC", lambda i: cmd("MULTI") + cmd("XADD", f"m:{i%1000}", "*", "h", "0123456789012345678901234", "b", body)
    + cmd("PUBLISH", "chat:node:000000000000", body) + cmd("EXEC"), 6)
run("EVAL XADD+PUBLISH", lambda i: cmd("EVAL", LUA, 2, f"e:{i%1000}", "chat:node:000000000000", "0123456789012345678901234", body), 1)
