"""In-process, interleaved A/B of two builds of the compiled cores (min of many repeats).

Noise on a shared machine hits both builds alike, so the ratio is what counts.
Usage (compile each tree in place first: python scripts/build_inplace.py):

    git archive <old-commit> src scripts | tar -x -C /tmp/old
    (cd /tmp/old && python scripts/build_inplace.py)
    python scripts/build_inplace.py
    python benchmarks/ab_cores.py /tmp/old/src src [repeats]
"""
import glob
import importlib.util
import os
import sys
import time

OLD_SRC, NEW_SRC = sys.argv[1], sys.argv[2]
REPEATS = int(sys.argv[3]) if len(sys.argv) > 3 else 15
sys.path.insert(0, os.path.abspath(NEW_SRC))
import numpy as np
from redis._parsers.helpers import parse_set_result

def load(root, name):
    path = glob.glob(f"{root}/fastredis/{name}.cpython-*.so")[0]
    spec = importlib.util.spec_from_file_location(f"fastredis.{name}", path)
    m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); return m

V = {}
for tag, root in (("old", OLD_SRC), ("new", NEW_SRC)):
    V[tag] = {n: load(root, n) for n in ("_resp_c", "_pipeline_c", "_decay_c", "_window_c")}

N = 100_000
KEYS = [f"key:{i}" for i in range(N)]; FL = [float(i) + 0.25 for i in range(N)]; INTS = list(range(N))
MEM = [f"m{i}" for i in range(N)]; SC = [i * 0.5 for i in range(N)]; ARR = np.array(FL)
CMDS = [("SET", k, v) for k, v in zip(KEYS, SC)]; SET = b"$3\r\nSET\r\n"
OK = b"+OK\r\n" * N; BULK = b"$5\r\nhello\r\n" * N
STACK_SET = [(("SET", k, b"v"), {}) for k in KEYS]; STACK_GET = [(("GET", k), {}) for k in KEYS]
DEC_M = [f"m{i % 5000}" for i in range(N)]; DEC_W = [1.0] * N; DEC_T = [float(i) for i in range(N)]
REPLY = [1, 1, 4, b"0", b"1.5"] * (N // 5)

def cases(m):
    R, PC, D, W = m["_resp_c"], m["_pipeline_c"], m["_decay_c"], m["_window_c"]
    def command():
        buf = R.CommandBuffer(); c = buf.command
        for x in CMDS: c(x)
    def add2_bytes():
        buf = R.CommandBuffer(); a = buf.add2
        for k in KEYS: a(SET, k, b"value-123")
    def add2_int():
        buf = R.CommandBuffer(); a = buf.add2
        for k, v in zip(KEYS, INTS): a(SET, k, v)
    def parse(data):
        def f():
            r = R.Reader(); r.feed(data); r.read_into([], N)
        return f
    return {
        "batch SET str/float(x.25)": lambda: R.CommandBuffer().batch(("SET", KEYS, FL)),
        "batch SET str/int": lambda: R.CommandBuffer().batch(("SET", KEYS, INTS)),
        "batch ZADD key/float/str": lambda: R.CommandBuffer().batch(("ZADD", "board", SC, MEM)),
        "batch SET str/np.float64": lambda: R.CommandBuffer().batch(("SET", KEYS, ARR)),
        "command() SET tuples": command,
        "add2 SET str/bytes": add2_bytes,
        "add2 SET str/int": add2_int,
        "Reader +OK": parse(OK),
        "Reader $5 bulk": parse(BULK),
        "apply_callbacks SET": lambda: PC.apply_callbacks([b"OK"] * N, STACK_SET, {"SET": parse_set_result}.get, (parse_set_result,), False),
        "apply_callbacks GET": lambda: PC.apply_callbacks([b"v"] * N, STACK_GET, {}.get, (parse_set_result,), False),
        "aggregate_increments": lambda: D.aggregate_increments(DEC_M, DEC_W, DEC_T, 0.0, 1e-5),
        "decode_decisions 20k": lambda: W.decode_decisions(REPLY, [5], lambda *a: a),
    }

C = {t: cases(V[t]) for t in V}
best = {t: {k: 1e9 for k in C[t]} for t in C}
for _ in range(REPEATS):
    for k in C["old"]:
        for t in ("old", "new"):
            s = time.perf_counter(); C[t][k](); best[t][k] = min(best[t][k], time.perf_counter() - s)
print(f"{'case (100k ops)':28s} {'before ms':>9s} {'after ms':>9s} {'after/before':>12s}")
for k in C["old"]:
    o, n = best["old"][k] * 1e3, best["new"][k] * 1e3
    print(f"{k:28s} {o:9.2f} {n:9.2f} {n / o:12.2f}")
