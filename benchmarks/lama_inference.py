"""LaMa (big-lama) inference time on CPU or GPU, TensorFlow and JAX, beside DeepFill v1.

    python benchmarks/lama_inference.py                        # both backends, 512x512 and 1024x576, 1080p photo
    python benchmarks/lama_inference.py --backends tensorflow --repeats 2 --bf16 --no-photo

Prints seconds per generator call (batch 1, network input ready, host copies included, median of
--repeats after one warm-up call that compiles) at 512x512 and 1024x576 for the full big-lama
generator (random weights: speed does not depend on them), and for DeepFill v1 (`inpaint/`, random
weights) on the same input; with --photo also seconds per 1920x1080 photo with two person-sized
holes, filled by `LamaInpainter.predict` on a crop around each hole (margin --margin px) as a
region-based pipeline does. Each backend runs in its own subprocess. Beside every time the sgemm
rate measured around it (benchmarks/sgemm.py) and the load average are printed: on a shared
machine only ratios taken in the same run compare. PyTorch is not installed here, so the original
LaMa cannot run as a peer in the same run; the figures measured for it elsewhere (3.03 s at 512x512, 7.81 s at
1024x576 on a quiet 2-core AVX-512 machine, sgemm 157 GFLOP/s) are the yardstick.

Environment: GONE_LAMA_XLA=1 compiles the TensorFlow generator with XLA (jit_compile);
TF_ENABLE_ONEDNN_OPTS=1 uses TensorFlow's oneDNN kernels instead of the Eigen ones `lama` selects.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

SIZES = [(512, 512), (1024, 576)]     # (width, height)
PHOTO = (1920, 1080)


def _random_weights(model, seed=0):
    """Plausible random weights (He-scaled convolutions, unit-ish BatchNorm statistics)."""
    rng = np.random.default_rng(seed)
    for _key, variable, kind in model.generator.torch_variables():
        shape = tuple(variable.shape)
        if kind == "vector":
            name = variable.path
            value = (rng.uniform(0.5, 1.5, shape) if name.endswith(("gamma", "moving_variance"))
                     else 0.1 * rng.standard_normal(shape))
        else:
            fan = int(np.prod(shape[:-1])) if kind != "matrix" else shape[1]
            value = rng.standard_normal(shape) * np.sqrt(2.0 / fan)
        variable.assign(value.astype(np.float32))


def _timed(fn, repeats):
    t0 = time.perf_counter()
    fn()
    warm = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), warm


def _holes(h, w, rng):
    """Two standing-person-sized holes (about 0.45 H tall) as a dilated person mask would be."""
    hole = np.zeros((h, w), bool)
    for cx in (int(w * 0.3), int(w * 0.68)):
        ph, pw = int(h * 0.45), int(h * 0.16)
        top = int(h * 0.4)
        yy, xx = np.mgrid[0:ph, 0:pw]
        body = ((xx - pw / 2) / (pw / 2)) ** 2 + ((yy - ph / 2) / (ph / 2)) ** 4 <= 1
        hole[top:top + ph, cx - pw // 2:cx - pw // 2 + pw] |= body
    return hole


def worker(args):
    from lama import LamaInpainter

    results = []
    precisions = ["float32"] + (["bfloat16"] if args.bf16 else [])
    reference = {}
    for precision in precisions:
        rng = np.random.default_rng(0)      # the same inputs for every precision
        model = LamaInpainter(precision=precision)
        _random_weights(model)
        for w, h in SIZES:
            image = rng.uniform(0, 1, (1, h, w, 3)).astype(np.float32)
            mask = _holes(h, w, rng)[None]
            try:
                sec, warm = _timed(lambda: model.fill(image, mask), args.repeats)
                row = dict(model="lama", precision=precision, size=f"{w}x{h}", seconds=sec, warmup=warm)
                pred = model.fill(image, mask)
                if precision == "float32":
                    reference[(w, h)] = pred
                else:   # accuracy cost against float32, on the prediction in (0, 1)
                    d = np.abs(pred - reference[(w, h)])
                    row["vs_float32"] = f"max |d| {d.max():.3f}, mean |d| {d.mean():.4f}"
                results.append(row)
            except Exception as exc:   # e.g. bfloat16 kernels missing on this backend: report and go on
                results.append(dict(model="lama", precision=precision, size=f"{w}x{h}",
                                    error=f"{type(exc).__name__}: {str(exc)[:200]}"))
            print(json.dumps(results[-1]), flush=True)
        if args.photo and precision == "float32":
            w, h = PHOTO
            photo = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            hole = _holes(h, w, rng)

            def per_photo():
                out = photo.copy()
                import scipy.ndimage as ndi
                labels, n = ndi.label(hole)
                for sl in ndi.find_objects(labels):
                    y0, y1 = max(0, sl[0].start - args.margin), min(h, sl[0].stop + args.margin)
                    x0, x1 = max(0, sl[1].start - args.margin), min(w, sl[1].stop + args.margin)
                    out[y0:y1, x0:x1] = model.predict(out[y0:y1, x0:x1], hole[y0:y1, x0:x1])
                return out

            sec, warm = _timed(per_photo, args.repeats)
            results.append(dict(model="lama", precision=precision, size=f"photo {w}x{h}, 2 holes, margin {args.margin}",
                                seconds=sec, warmup=warm))
            print(json.dumps(results[-1]), flush=True)
    if args.deepfill:
        from inpaint import InpaintModel
        deepfill = InpaintModel(precision="float32")
        fn = deepfill._forward_fn()
        for w, h in SIZES:
            x = rng.uniform(-1, 1, (1, h, w, 3)).astype(np.float32)
            m = _holes(h, w, rng)[None, ..., None].astype(np.float32)
            sec, warm = _timed(lambda: fn(x * (1 - m), m), args.repeats)
            results.append(dict(model="deepfill_v1", precision="float32", size=f"{w}x{h}", seconds=sec, warmup=warm))
            print(json.dumps(results[-1]), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax"], choices=["tensorflow", "jax"])
    parser.add_argument("--repeats", type=int, default=3, help="timed calls after the warm-up (median)")
    parser.add_argument("--bf16", action="store_true", help="also time precision='bfloat16'")
    parser.add_argument("--no-photo", dest="photo", action="store_false", help="skip the 1080p photo")
    parser.add_argument("--no-deepfill", dest="deepfill", action="store_false", help="skip DeepFill v1")
    parser.add_argument("--margin", type=int, default=128, help="context around each hole for the photo (px)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)

    from sgemm import SgemmClock, load_note

    avx = _avx_level()
    print(f"LaMa big-lama inference; {os.cpu_count()} CPUs, {avx}; PyTorch original not run (not installed)",
          flush=True)
    clock = SgemmClock()
    rows = []
    for backend in args.backends:
        clock.tick()
        load_before = load_note()
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--repeats", str(args.repeats),
               "--margin", str(args.margin)] + (["--bf16"] if args.bf16 else []) \
            + ([] if args.photo else ["--no-photo"]) + ([] if args.deepfill else ["--no-deepfill"])
        run = subprocess.run(cmd, env=env, capture_output=True, text=True)
        clock.tick()
        if run.returncode:
            print(f"{backend}: worker failed:\n{run.stderr[-2000:]}", flush=True)
            continue
        for line in run.stdout.splitlines():
            if line.startswith("{"):
                row = json.loads(line)
                row.update(backend=backend, sgemm=clock.rate(), load=load_before)
                rows.append(row)
    print(f"\n| backend | model | precision | input | s per call (median of {args.repeats}) | warm-up s | "
          "= sgemm GFLOP | sgemm GFLOP/s | load before | vs float32 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            error = r["error"].replace("\n", " ").replace("|", "/")
            print(f"| {r['backend']} | {r['model']} | {r['precision']} | {r['size']} | failed: {error} | | | | | |")
            continue
        print(f"| {r['backend']} | {r['model']} | {r['precision']} | {r['size']} | {r['seconds']:.2f} | "
              f"{r['warmup']:.1f} | {r['seconds'] * r['sgemm']:.0f} | {r['sgemm']:.0f} | {r['load']} | "
              f"{r.get('vs_float32', '')} |")
    print(f"\nload after: {load_note()}")


def _avx_level():
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return "AVX level unknown"
    for flag in ("avx512_bf16", "avx512f", "avx2", "avx"):
        if flag in flags:
            extra = [f for f in ("avx512_bf16", "amx_bf16", "avx512_vnni", "fma") if f in flags]
            return f"{flag.upper()} ({', '.join(extra) or 'no extras'})"
    return "no AVX"


if __name__ == "__main__":
    main()
