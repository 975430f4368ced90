"""Load benchmark of `gone app` on 127.0.0.1: S browser sessions at once, P photos each, through
the JSON API (session, upload, detect, remove, download).

    python benchmarks/app_load.py [--sessions 10] [--photos 5] [--inpainter patchmatch]

The server (``gone.app.create_app`` on Werkzeug's threaded server, as ``gone app`` runs it) is a
child process; its detector is an oracle (``data_prep.synth``'s perfect detections of the
synthetic photos: this measures the app and the inpainter, not Mask R-CNN). Every photo is a
different synthetic scene (320x256). Each session removes every person of each of its photos and
downloads the result; the benchmark checks that every result came back and belongs to the photo
its session sent (outside the expected hole, the download equals that photo; inside, it changed).
Prints the p50 / p95 / max latency of detect, remove and the whole photo, the wall time and the
server's peak memory (max RSS); exits 1 when a result is missing or mixed up. Every request has a
timeout and the whole run a deadline (--deadline), so it always stops.
"""
from __future__ import annotations

import argparse
import io
import multiprocessing
import pathlib
import resource
import statistics
import sys
import threading
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def scene_photo(index):
    """(rgb, instance masks, png bytes) of photo ``index`` (data_prep.synth scene, seed 11)."""
    import numpy as np
    from PIL import Image

    from data_prep import synth
    scene = synth.make_scene(11, index, min_people=1, max_people=3, object_probability=0.0)
    buf = io.BytesIO()
    Image.fromarray(scene.image).save(buf, format="PNG")
    return scene.image, scene.person_masks.astype(np.bool_), buf.getvalue()


class Oracle:
    """detect(): the synthetic scene's person masks, found by the photo's pixels."""

    def __init__(self, n):
        import hashlib

        from gone import masks
        self._hash = lambda rgb: hashlib.sha256(rgb.tobytes()).hexdigest()
        self.known = {}
        for i in range(n):
            rgb, m, _ = scene_photo(i)
            self.known[self._hash(rgb)] = masks.detections_from_masks(m, scores=[0.99] * m.shape[-1])

    def detect(self, images, verbose=0):
        return [self.known[self._hash(img)] for img in images]


def serve(n, port_queue, stop):
    import logging

    from werkzeug.serving import make_server
    logging.getLogger("werkzeug").setLevel(logging.ERROR)   # no line per request

    from gone.app import create_app
    app = create_app(detector=Oracle(n))
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    port_queue.put(srv.server_port)
    threading.Thread(target=lambda: (stop.wait(), srv.shutdown()), daemon=True).start()
    srv.serve_forever()
    app.extensions["gone_app"].close()


def one_session(base, s, photos, n_photos, inpainter, timeout, out):
    import numpy as np
    import requests
    from PIL import Image

    from gone import masks
    from gone.pipeline import PeopleRemover
    http = requests.Session()
    try:
        token = http.post(base + "/api/session", timeout=timeout).json()["session"]
        h = {"X-Gone-Session": token}
        for k in range(n_photos):
            index = s * n_photos + k
            rgb, m, png = photos[index]
            t0 = time.perf_counter()
            r = http.post(base + "/api/photos", headers=h, files={"file": (f"p{index}.png", png)}, timeout=timeout)
            pid = r.json()["photos"][0]["id"]
            t1 = time.perf_counter()
            det = http.post(base + "/api/detect", headers=h, json={"photo": pid}, timeout=timeout).json()
            t2 = time.perf_counter()
            remove = [i["index"] for i in det["instances"]]
            res = http.post(base + "/api/remove", headers=h, timeout=timeout,
                            json={"photo": pid, "remove": remove, "inpainter": inpainter}).json()
            t3 = time.perf_counter()
            data = http.get(base + res["download"], headers=h, timeout=timeout).content
            t4 = time.perf_counter()
            got = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
            hole = PeopleRemover(None, None).hole_for(masks.detections_from_masks(m), rgb.shape, image=rgb)
            ok = (got.shape == rgb.shape and np.array_equal(got[~hole], rgb[~hole])
                  and (got[hole] != rgb[hole]).any())
            out.append({"session": s, "photo": index, "ok": bool(ok), "upload": t1 - t0,
                        "detect": t2 - t1, "remove": t3 - t2, "total": t4 - t0})
    except Exception as err:   # counted as missing results; the message is printed
        out.append({"session": s, "error": f"{type(err).__name__}: {err}"})


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--photos", type=int, default=5, help="photos per session")
    parser.add_argument("--inpainter", default="patchmatch")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per request")
    parser.add_argument("--deadline", type=float, default=1800, help="seconds for the whole run")
    args = parser.parse_args(argv)
    n = args.sessions * args.photos
    photos = [scene_photo(i) for i in range(n)]
    ctx = multiprocessing.get_context("spawn")
    ports, stop = ctx.Queue(), ctx.Event()
    proc = ctx.Process(target=serve, args=(n, ports, stop))
    proc.start()
    try:
        base = f"http://127.0.0.1:{ports.get(timeout=300)}"
        out = []
        t0 = time.perf_counter()
        threads = [threading.Thread(target=one_session, daemon=True,
                                    args=(base, s, photos, args.photos, args.inpainter, args.timeout, out))
                   for s in range(args.sessions)]
        for t in threads:
            t.start()
        end = time.monotonic() + args.deadline
        for t in threads:
            t.join(max(0.0, end - time.monotonic()))
        wall = time.perf_counter() - t0
    finally:
        stop.set()
        proc.join(60)
        if proc.is_alive():
            proc.kill()
            proc.join()
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    done = [r for r in out if "ok" in r]
    errors = [r["error"] for r in out if "error" in r]
    good = sum(r["ok"] for r in done)
    print(f"gone app load: {args.sessions} sessions x {args.photos} photos (320x256, "
          f"{args.inpainter}) on 127.0.0.1: {len(done)}/{n} results returned, {good} correct, "
          f"{len(done) - good} mixed up or wrong, {len(errors)} session errors; wall {wall:.1f} s")
    for e in errors[:5]:
        print("  error:", e)
    if done:
        print("| step | p50 s | p95 s | max s |\n|---|---|---|---|")
        for key in ("upload", "detect", "remove", "total"):
            v = [r[key] for r in done]
            print(f"| {key} | {statistics.median(v):.2f} | {pct(v, 0.95):.2f} | {max(v):.2f} |")
    print(f"server peak memory (max RSS): {peak_mb:.0f} MiB")
    return 0 if good == n else 1


if __name__ == "__main__":
    sys.exit(main())
