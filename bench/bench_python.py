#!/usr/bin/python3
"""bench_python.py - appending from Python: edgelog's binding against the
SQLite buffer of the client it replaces, in the same run.

Cases (one Python thread each, records shaped like
shared/data/prediction.json, a pool of 4096 varying in request_id, ts,
ts_ns, scores, bbox and meta.frame, as bench_append does in C):

  log_prediction   await EnhancedAsyncLoggingClient.log_prediction(rec) in
                   an asyncio loop (the compatibility layer; msgpack
                   encoding included: by libedgelog_py.so's fast append
                   when it was built, else by the msgpack package; the
                   table says which), sync=interval, engine started
  append           edgelog.Log.append(rec) (the same without asyncio)
  sqlite-normal    the old design: Python's sqlite3, WAL,
                   synchronous=NORMAL, one transaction per insert
                   (BEGIN IMMEDIATE / INSERT / COMMIT) of the record's JSON
                   text (json.dumps included), the old client's table
  sqlite-full      the same with synchronous=FULL

Latency is measured around each call with time.perf_counter_ns; CPU time per
append is the process time of the loop divided by the records. After each
edgelog case every record is read back and compared (exit 1 if one is
missing or differs); after each SQLite case the row count is checked.

  /usr/bin/python3 bench/bench_python.py [--n N] [--sqlite-n N] [--json]
      [--quick] [--dir DIR]

Needs the library: EDGELOG_LIBRARY, or an installed package, or a build
tree of this checkout (a Release tree gives the figures worth quoting:
EDGELOG_LIBRARY=build-bench/engine/libedgelog.so). Exit 0 when every record
was stored and read back; targets missed are reported (MISS), not failed.
"""

import argparse
import asyncio
import json
import os
import random
import shutil
import sqlite3
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import edgelog  # noqa: E402

LABELS = ["person", "suitcase", "dog", "bottle", "chair", "car", "bicycle", "cat"]


def make_pool(n=4096, seed=42):
    rnd = random.Random(seed)
    pool = []
    for i in range(n):
        scores = sorted((rnd.random() for _ in range(5)), reverse=True)
        top = rnd.sample(LABELS, 5)
        x0, y0 = rnd.random() * 0.5, rnd.random() * 0.5
        pool.append({
            "device_id": "cam-0042",
            "model": {"name": "yolov8n", "version": "2.3.1"},
            "ts": "2024-05-14T09:%02d:%02d.%03dZ" % (i // 3600 % 60, i // 60 % 60, i % 1000),
            "ts_ns": 1715678493000000000 + i * 33333333 + rnd.randrange(1000),
            "request_id": str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
            "label": top[0],
            "confidence": round(scores[0], 4),
            "top5": [{"label": l, "score": round(s, 3)} for l, s in zip(top, scores)],
            "latency_ms": round(rnd.uniform(5, 12), 3),
            "bbox": [round(x0, 3), round(y0, 3), round(x0 + 0.2, 3), round(y0 + 0.3, 3)],
            "meta": {"fw": "1.8.2", "site": "s17", "frame": 100000 + i},
        })
    return pool


def summary(name, lat_ns, wall_s, cpu_s, extra=None):
    lat = sorted(lat_ns)
    n = len(lat)

    def q(p):
        return lat[min(n - 1, int(p * n))] / 1000.0

    r = {"case": name, "n": n, "per_s": n / wall_s, "cpu_us": cpu_s * 1e6 / n,
         "p50_us": q(0.50), "p99_us": q(0.99),
         "p999_us": q(0.999), "max_us": lat[-1] / 1000.0}
    if extra:
        r.update(extra)
    return r


def run_log_prediction(d, pool, n):
    async def main():
        c = edgelog.EnhancedAsyncLoggingClient(buffer_db_path=d, edge_device_id="bench",
                                               sync="interval")
        await c.start()
        lat = [0] * n
        clock = time.perf_counter_ns
        m = len(pool)
        t0, c0 = time.perf_counter(), time.process_time()
        for g in range(n):
            rec = pool[g % m]
            a = clock()
            await c.log_prediction(rec)
            lat[g] = clock() - a
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        await c.shutdown()
        return lat, wall, cpu

    lat, wall, cpu = asyncio.run(main())
    return summary("log_prediction", lat, wall, cpu, verify_edgelog(d, pool, n))


def run_append(d, pool, n):
    log = edgelog.Log(d, device_id="bench", sync="interval", env=False)
    lat = [0] * n
    clock = time.perf_counter_ns
    append = log.append
    m = len(pool)
    t0, c0 = time.perf_counter(), time.process_time()
    for g in range(n):
        rec = pool[g % m]
        a = clock()
        append(rec)
        lat[g] = clock() - a
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    log.close()
    return summary("append", lat, wall, cpu, verify_edgelog(d, pool, n))


def verify_edgelog(d, pool, n):
    m = len(pool)
    count = 0
    for seq, _ts, data in edgelog.read(d):
        if data != pool[(seq - 1) % m]:
            raise SystemExit("bench_python: record %d read back differs" % seq)
        count += 1
    if count != n:
        raise SystemExit("bench_python: %d records read back, %d appended" % (count, n))
    return {"read_back": count}


def run_sqlite(d, pool, n, sync):
    os.makedirs(d)
    path = os.path.join(d, "prediction_buffer.db")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=%s" % sync)
    db.executescript(
        "CREATE TABLE predictions (id INTEGER PRIMARY KEY, created_at REAL, payload TEXT, "
        "status TEXT, attempts INT, last_error TEXT);"
        "CREATE INDEX idx_predictions_status ON predictions(status);")
    cur = db.cursor()
    lat = [0] * n
    clock = time.perf_counter_ns
    dumps = json.dumps
    now = time.time
    m = len(pool)
    ins = ("INSERT INTO predictions (created_at, payload, status, attempts, last_error) "
           "VALUES (?, ?, 'pending', 0, NULL)")
    t0, c0 = time.perf_counter(), time.process_time()
    for g in range(n):
        rec = pool[g % m]
        a = clock()
        cur.execute("BEGIN IMMEDIATE")
        cur.execute(ins, (now(), dumps(rec, separators=(",", ":"))))
        cur.execute("COMMIT")
        lat[g] = clock() - a
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rows = db.execute("SELECT count(*) FROM predictions").fetchone()[0]
    db.close()
    if rows != n:
        raise SystemExit("bench_python: sqlite holds %d rows, %d inserted" % (rows, n))
    return summary("sqlite-" + sync.lower(), lat, wall, cpu)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=300000, help="records per edgelog case")
    ap.add_argument("--sqlite-n", type=int, default=50000, help="rows, sqlite-normal")
    ap.add_argument("--sqlite-full-n", type=int, default=5000, help="rows, sqlite-full")
    ap.add_argument("--dir", default="./bench-tmp-py")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    ap.add_argument("--quick", action="store_true", help="every count / 100")
    a = ap.parse_args()
    if a.quick:
        a.n, a.sqlite_n, a.sqlite_full_n = a.n // 100, a.sqlite_n // 100, a.sqlite_full_n // 100
    pool = make_pool()
    load_before = " ".join("%.2f" % x for x in os.getloadavg())
    os.makedirs(a.dir, exist_ok=True)
    results = []
    cases = [
        ("log_prediction", lambda d: run_log_prediction(d, pool, a.n)),
        ("append", lambda d: run_append(d, pool, a.n)),
        ("sqlite-normal", lambda d: run_sqlite(d, pool, a.sqlite_n, "NORMAL")),
        ("sqlite-full", lambda d: run_sqlite(d, pool, a.sqlite_full_n, "FULL")),
    ]
    for name, fn in cases:
        d = os.path.join(a.dir, "%s.%d" % (name, os.getpid()))
        print("bench_python: %s ..." % name, file=sys.stderr, flush=True)
        try:
            results.append(fn(d))
        finally:
            shutil.rmtree(d, ignore_errors=True)
        os.sync()
    by = {r["case"]: r for r in results}
    ratio = by["log_prediction"]["per_s"] / by["sqlite-normal"]["per_s"]
    cpu_ratio = by["sqlite-normal"]["cpu_us"] / by["log_prediction"]["cpu_us"]
    targets = [
        ("log_prediction >= 10x sqlite-normal appends/s", "%.1fx" % ratio, ratio >= 10),
        ("log_prediction p99 < 50 us", "%.2f us" % by["log_prediction"]["p99_us"],
         by["log_prediction"]["p99_us"] < 50),
    ]
    if a.json:
        json.dump({"library": edgelog.LIBRARY_PATH, "fast_append": edgelog.FAST_PATH,
                   "python": sys.version.split()[0],
                   "loadavg": load_before, "results": results, "ratio": ratio,
                   "cpu_ratio": cpu_ratio,
                   "targets": [{"target": t, "measured": m, "met": ok} for t, m, ok in targets]},
                  sys.stdout, indent=1)
        print()
        return 0
    print("library: %s (Python %s)" % (edgelog.LIBRARY_PATH, sys.version.split()[0]))
    print("fast append: %s" % edgelog.FAST_PATH)
    print("load average before the run: %s" % load_before)
    print("| case | records | appends/s | CPU µs/append | p50 | p99 | p99.9 | max |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print("| %s | %d | %s | %.2f | %.2f µs | %.2f µs | %.1f µs | %.2f ms |" % (
            r["case"], r["n"], "{:,.0f}".format(r["per_s"]), r["cpu_us"], r["p50_us"],
            r["p99_us"], r["p999_us"], r["max_us"] / 1000.0))
    print()
    for t, m, ok in targets:
        print("%s  %s: %s" % ("met " if ok else "MISS", t, m))
    print("      (CPU per append: sqlite-normal / log_prediction = %.1fx; on a busy machine"
          % cpu_ratio)
    print("       appends/s measures the scheduler as much as the code)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
