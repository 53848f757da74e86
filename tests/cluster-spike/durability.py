#!/usr/bin/env python3
"""SPIKE (not built by make): does an acknowledged write survive a SIGKILL of
redis-server? durability.py [ROUNDS] [FSYNC]  (FSYNC: always (default),
everysec, or off: appendonly no, as with a redis.conf that only snapshots)
Per round: start redis-server (redis-up.sh, same directory every round), write
XADD dur * i <n> with 32 in flight from one connection, recording each n whose
reply came back; SIGKILL redis-server after 0.3-1.3 s; restart it on the same
directory; read the stream back; count acknowledged n that are missing."""
import os, random, signal, socket, subprocess, sys, tempfile, threading, time
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
fsync = sys.argv[2] if len(sys.argv) > 2 else "always"
here = os.path.dirname(os.path.abspath(__file__))
d = tempfile.mkdtemp(prefix="cluster-dur.")
def up():
    args = ["--appendonly", "no"] if fsync == "off" else ["--appendfsync", fsync]
    out = subprocess.run([os.path.join(here, "redis-up.sh"), d] + args,
                         capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]), int(out[1])
def cmd(*a):
    out = b"*%d\r\n" % len(a)
    for x in a:
        x = x if isinstance(x, bytes) else str(x).encode()
        out += b"$%d\r\n%s\r\n" % (len(x), x)
    return out
def readall(port):
    s = socket.create_connection(("127.0.0.1", port)); f = s.makefile("rb")
    s.sendall(cmd("XRANGE", "dur", "-", "+")); got = set()
    n = int(f.readline()[1:])
    for _ in range(n):          # *2 $id id *2 $1 i $k n
        f.readline(); f.readline(); f.readline(); f.readline()
        f.readline(); f.readline(); f.readline(); got.add(int(f.readline()))
    s.close(); return got
nxt, acked_all, total_lost = 0, set(), 0
for r in range(rounds):
    port, pid = up()
    s = socket.create_connection(("127.0.0.1", port)); f = s.makefile("rb")
    inflight, acked = [], 0
    killer = threading.Timer(random.uniform(0.3, 1.3), os.kill, (pid, signal.SIGKILL))
    killer.start()
    try:
        while True:
            while len(inflight) < 32:
                s.sendall(cmd("XADD", "dur", "*", "i", nxt)); inflight.append(nxt); nxt += 1
            line = f.readline()
            if not line: break
            if line.startswith(b"$"): f.readline()
            acked_all.add(inflight.pop(0)); acked += 1
    except OSError:
        pass
    killer.join(); s.close()
    try: os.waitpid(pid, 0)
    except ChildProcessError: pass
    port, pid = up()
    got = readall(port)
    lost = len(acked_all - got)
    total_lost += lost
    print(f"round {r+1}: appendfsync {fsync}: {acked} acknowledged this round, "
          f"{len(acked_all)} in all, {len(got)} in the stream after restart, "
          f"{lost} acknowledged missing, {len(got - acked_all)} unacknowledged present", flush=True)
    os.kill(pid, signal.SIGTERM)
    while os.path.exists(f"/proc/{pid}") and open(f"/proc/{pid}/stat").read().split()[2] != "Z":
        time.sleep(0.05)
print(f"lost {total_lost} acknowledged writes over {rounds} SIGKILLs of redis-server")
