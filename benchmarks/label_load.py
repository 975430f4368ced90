"""Load test of `gone label` on 127.0.0.1: N raters label M items each, all at once.

    python benchmarks/label_load.py [--raters 20] [--items 200]

Builds a fake experiment output of M tiny results in a temporary folder, starts
`python -m gone label` as a real process on a free port, runs one thread per rater (each:
GET /api/next, POST /api/labels until done), kills the server (SIGKILL, no clean shutdown),
exports, and checks that every (rater, item) label is in the store and in the export exactly
once. Prints the p50 / p95 / max latency of each request kind and the throughput; exits 1 when
a label is missing or doubled.
"""
import argparse
import csv
import json
import os
import pathlib
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

LABELS = ("good", "okay", "striped", "solid")


def build_output(root: pathlib.Path, n_items: int) -> pathlib.Path:
    import numpy as np

    from gone import labeling
    from gone.io import write_image_atomic

    rng = np.random.default_rng(0)
    results = []
    for i in range(n_items):
        path = write_image_atomic(root / "images" / f"img{i:04d}" / "mask_result.png",
                                  rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))
        write_image_atomic(root / "images" / f"img{i:04d}" / "original.png",
                           rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))
        results.append({"image": f"img{i:04d}", "column": "mask",
                        "image_path": path.relative_to(root).as_posix()})
    labeling.write_labeling_sheet(results, root / "labeling_sheet.csv",
                                  root / "private" / "labeling_key.csv",
                                  blind_images_dir="to_label")
    return root


def start_server(folder: pathlib.Path, log_path: pathlib.Path):
    log = open(log_path, "w+")
    proc = subprocess.Popen([sys.executable, "-m", "gone", "label", str(folder), "--port", "0"],
                            stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    deadline = time.time() + 120
    while time.time() < deadline:
        log.seek(0)
        text = log.read()
        if "serving on http://" in text:
            return proc, text.split("serving on ")[1].split()[0].rstrip("/")
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {text}")
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start")


def call(url, data=None):
    body = None if data is None else json.dumps(data).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    start = time.perf_counter()
    with urllib.request.urlopen(req, timeout=60) as r:
        answer = json.loads(r.read())
    return answer, time.perf_counter() - start


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--raters", type=int, default=20)
    ap.add_argument("--items", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_output(pathlib.Path(tmp) / "exp", args.items)
        proc, url = start_server(folder, pathlib.Path(tmp) / "server.log")
        latencies = {"next": [], "label": []}
        lock, errors, posted = threading.Lock(), [], {}

        def rater(name):
            mine_next, mine_label, done = [], [], []
            try:
                while True:
                    nxt, dt = call(f"{url}/api/next?rater={name}")
                    mine_next.append(dt)
                    if nxt["done"]:
                        break
                    item = nxt["item"]["id"]
                    label = LABELS[len(done) % 4]
                    _, dt = call(f"{url}/api/labels", {"rater": name, "item_id": item,
                                                       "label": label})
                    mine_label.append(dt)
                    done.append(item)
            except Exception as err:   # reported at the end
                errors.append(f"{name}: {type(err).__name__}: {err}")
            with lock:
                latencies["next"] += mine_next
                latencies["label"] += mine_label
                posted[name] = done

        threads = [threading.Thread(target=rater, args=(f"rater{i:02d}",))
                   for i in range(args.raters)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)

        from gone.labeling import app as label_app

        label_app.export([folder], out=lambda m: None)
        conn = sqlite3.connect(folder / label_app.DB_NAME)
        stored = conn.execute("SELECT COUNT(*), COUNT(DISTINCT rater || '/' || result_id) "
                              "FROM labels").fetchone()
        problems = list(errors)
        expected = args.raters * args.items
        if stored != (expected, expected):
            problems.append(f"store has {stored[0]} rows ({stored[1]} distinct), "
                            f"expected {expected}")
        for name, items in posted.items():
            if len(items) != args.items or len(set(items)) != args.items:
                problems.append(f"{name} labeled {len(items)} ({len(set(items))} distinct)")
            rows = list(csv.DictReader(open(folder / "labels" / f"{name}.csv", encoding="utf-8")))
            ids = [r["result_id"] for r in rows]
            if len(ids) != args.items or len(set(ids)) != args.items:
                problems.append(f"export of {name}: {len(ids)} rows ({len(set(ids))} distinct)")
        total = sum(len(v) for v in latencies.values())
        print(f"gone label load test: {args.raters} raters x {args.items} items on 127.0.0.1, "
              f"{total} requests in {wall:.1f} s ({total / wall:.0f} requests/s, "
              f"{expected / wall:.0f} labels/s)")
        for kind, values in latencies.items():
            if values:
                print(f"  {kind:5s}: p50 {1000 * statistics.median(values):.1f} ms, "
                      f"p95 {1000 * pct(values, 95):.1f} ms, max {1000 * max(values):.1f} ms "
                      f"({len(values)} requests)")
        print(f"  store: {stored[0]} labels, export: {args.raters} files; "
              + ("all present exactly once" if not problems else "PROBLEMS:"))
        for p in problems[:20]:
            print(f"    {p}")
        print(f"  machine load (uptime): {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
              f"{os.getloadavg()[2]:.2f}")
        return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
