"""Speed of the classical inpainters (gone.inpainters): PatchMatch, Telea, Navier-Stokes.

The target: a 512x512 region with a 15 % hole in <= 2 s on 2 cores. The region is a
512x512 crop of scikit-image's ``coffee`` (natural texture, no people); the hole is a centred
block of 15 % of the area (198x198 px) or, with ``--hole person``, a person-like blob of the same
area (a data_prep.synth figure, scaled). Prints, per inpainter: wall seconds (median of
``--repeats`` after one warm-up), CPU seconds of this process (PyPatchMatch is single-threaded,
so CPU seconds are what a quiet core would take), the hole PSNR against the original pixels, and
the machine's load average (the machine may be shared: re-measure on a quiet one).

    python benchmarks/patchmatch_speed.py
    python benchmarks/patchmatch_speed.py --size 512 --hole_fraction 0.15 --repeats 3 --kinds patchmatch telea ns
"""
from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402


def region(size):
    import skimage.data
    from PIL import Image

    img = skimage.data.coffee()                       # 400x600
    img = np.asarray(Image.fromarray(img).resize((int(600 * size / 400), size),
                                                 Image.Resampling.BICUBIC))
    x0 = (img.shape[1] - size) // 2
    return np.ascontiguousarray(img[:size, x0:x0 + size])


def hole_mask(size, fraction, kind):
    hole = np.zeros((size, size), bool)
    if kind == "block":
        side = int(round(size * np.sqrt(fraction)))
        y0 = (size - side) // 2
        hole[y0:y0 + side, y0:y0 + side] = True
        return hole
    from data_prep import synth

    for index in range(50):   # the first synthetic scene whose first person fits
        s = synth.make_scene(0, index, size, size, max_people=1)
        m = s.person_masks[..., 0]
        if m.any() and abs(m.mean() - fraction) < 0.05:
            return m
    raise SystemExit("no synthetic person of that size found; use --hole block")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--hole_fraction", type=float, default=0.15)
    ap.add_argument("--hole", choices=("block", "person"), default="block")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--kinds", nargs="+", default=["patchmatch", "telea", "ns"])
    args = ap.parse_args(argv)
    from gone import metrics
    from gone.inpainters import make_inpainter

    img = region(args.size)
    hole = hole_mask(args.size, args.hole_fraction, args.hole)
    print(f"region {args.size}x{args.size} (skimage coffee), hole {args.hole} {hole.mean():.1%}; "
          f"{os.cpu_count()} CPUs; load average before: "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(f"{'inpainter':<12} {'wall s (median)':>16} {'cpu s':>8} {'hole PSNR dB':>13}  description")
    for kind in args.kinds:
        ip = make_inpainter(kind)
        out = ip.fill(img[None], hole[None])[0]    # warm-up (library load, caches)
        walls, cpus = [], []
        for _ in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            out = ip.fill(img[None], hole[None])[0]
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        psnr = metrics.psnr(out, img, mask=hole)
        print(f"{kind:<12} {statistics.median(walls):>16.3f} {statistics.median(cpus):>8.3f} "
              f"{psnr:>13.2f}  {ip.description}")
    print("load average after: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print("command: python benchmarks/patchmatch_speed.py " + " ".join(sys.argv[1:] if argv is None else argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
