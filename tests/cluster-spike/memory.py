#!/usr/bin/env python3
"""SPIKE (not built by make): Redis memory of the cluster's keys, for the
capacity model. Starts its own redis-server (redis-up.sh), fills sample keys
laid out as docs/CLUSTER.md says (messages through put.lua), prints MEMORY
USAGE ... SAMPLES 0 (every element counted) of each, and stops it.
memory.py [BODY_BYTES]"""
import os, signal, socket, subprocess, sys
here = os.path.dirname(os.path.abspath(__file__))
body = b"x" * (int(sys.argv[1]) if len(sys.argv) > 1 else 100)
port, pid = [int(x) for x in subprocess.run([os.path.join(here, "redis-up.sh"), "", "--zset-max-listpack-value", "2048"],
             capture_output=True, text=True, check=True).stdout.split()[:2]]
s = socket.create_connection(("127.0.0.1", port)); f = s.makefile("rb")
def enc(*a):
    out = b"*%d\r\n" % len(a)
    for x in a:
        x = x if isinstance(x, bytes) else str(x).encode()
        out += b"$%d\r\n%s\r\n" % (len(x), x)
    return out
def reply():
    l = f.readline()
    t, v = l[:1], l[1:-2]
    if t == b"$":
        n = int(v); return None if n < 0 else f.read(n + 2)[:-2]
    if t == b"*":
        return [reply() for _ in range(int(v))]
    if t == b"-": raise RuntimeError(v.decode())
    return int(v) if t == b":" else v
def many(cmds):
    s.sendall(b"".join(enc(*c) for c in cmds)); return [reply() for _ in cmds]
def one(*c): return many([c])[0]
sha = one("SCRIPT", "LOAD", open(os.path.join(here, "put.lua"), "rb").read()).decode()
one("HSET", "chat:alive", 1, 99999999999999)
def put(sender, receiver, sdev=1, cid=0, own=0, contacts=0):
    return ("EVALSHA", sha, 10, f"u:{{{receiver}}}:log", f"u:{{{receiver}}}", f"u:{{{sender}}}:log",
            f"u:{{{sender}}}:cid:{sdev}", f"u:{{{receiver}}}:on", f"u:{{{sender}}}:on", "chat:ids",
            "chat:alive", f"u:{{{sender}}}:ct", f"u:{{{receiver}}}:ct",
            sender, receiver, sdev, 1, cid, body, 1, 0, 0, own, 86400000, contacts)
def mem(key): return one("MEMORY", "USAGE", key, "SAMPLES", 0)
ver = one("INFO", "server").split(b"redis_version:")[1].split(b"\r")[0].decode()
print(f"body {len(body)} bytes; redis-server {ver}")
print("| key | contents | MEMORY USAGE bytes | per element |")
print("|---|---|---:|---:|")
for n in (1, 10, 100, 1000, 10000):
    u = 1000 + n
    many([put(1, u) for _ in range(n)])
    m = mem(f"u:{{{u}}}:log")
    print(f"| u:{{U}}:log (zset) | {n} messages | {m} | {m/n:.0f} |")
# the user hash: account hash, quota bytes, devices (name->no, cursor, seen, flags)
pw = b"$argon2id$v=19$m=65536,t=2,p=1$" + b"A" * 22 + b"$" + b"B" * 43
for nd in (0, 1, 3):
    u = 2000 + nd
    cmd = ["HSET", f"u:{{{u}}}", "pw", pw, "qb", 123456]
    for d in range(nd):
        cmd += [f"n:phone{d}", 100000 + d, f"c:{100000+d}", 92114150465000 + d,
                f"s:{100000+d}", 1764645000000 + d, f"f:{100000+d}", 1]
    one(*cmd)
    print(f"| u:{{U}} (hash) | account hash, quota, {nd} devices | {mem(f'u:{{{u}}}')} | |")
# client ids of one device: zset cid -> message id
for n in (1, 100, 4096):
    k = f"u:{{3000}}:cid:{n}"
    many([("ZADD", k, 92114150465000 + i, 7046238462000000 + i) for i in range(n)])
    m = mem(k); print(f"| u:{{U}}:cid:<dev> (zset) | {n} client ids | {m} | {m/n:.0f} |")
for n in (1, 10, 100, 1000):
    k = f"u:{{4000}}:ct:{n}"
    one("SADD", k, *[100000 + i for i in range(n)])
    m = mem(k); print(f"| u:{{U}}:ct (set) | {n} contacts | {m} | {m/n:.0f} |")
for n in (1, 10, 100):
    k = f"u:{{5000}}:rd:{n}"
    one("HSET", k, *sum([[f"u{100000+i}", f"{92114150465000+i}:1764645000000"] for i in range(n)], []))
    m = mem(k); print(f"| u:{{U}}:rd (hash) | {n} read marks | {m} | {m/n:.0f} |")
one("SADD", "u:{6000}:on", 1); print(f"| u:{{U}}:on (set) | 1 node | {mem('u:{6000}:on')} | |")
one("SADD", "u:{6000}:g", *range(1, 11)); print(f"| u:{{U}}:g (set) | 10 groups | {mem('u:{6000}:g')} | |")
for n in (10, 100, 1000):
    k = f"g:{{{n}}}:m"
    one("ZADD", k, *sum([[92114150465000 + i, 100000 + i] for i in range(n)], []))
    m = mem(k); print(f"| g:{{G}}:m (zset) | {n} members | {m} | {m/n:.0f} |")
one("HSET", "g:{10}", "name", "a group name of 20 b", "a:100000", 1)
print(f"| g:{{G}} (hash) | name, 1 admin | {mem('g:{10}')} | |")
one("HSET", "chat:alive", *sum([[n, 1764645000000] for n in range(2, 65)], []))
print(f"| chat:alive (hash) | 64 nodes | {mem('chat:alive')} | |")
info = one("INFO", "memory").decode()
print("used_memory:", [l for l in info.split("\r\n") if l.startswith("used_memory:")][0].split(":")[1],
      " keys:", one("DBSIZE"))
os.kill(pid, signal.SIGTERM)
