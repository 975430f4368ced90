"""End-to-end GONE benchmark (images/s) and the dilation study behind DEFAULT_DILATION.

Speed (default mode): builds Mask R-CNN (COCO config) + DeepFill v1 and times
``PeopleRemover.remove`` on synthetic photos of the requested sizes (people drawn by
``data_prep.synth``, scaled up to the photo size). Weights: ``--mrcnn-weights`` /
``--inpaint-checkpoint``, else the cached published files, else synthetic Mask R-CNN weights made
with the golden reference's make_weights.py and a random-weight InpaintModel (speed does not
depend on the weight values).

    python benchmarks/end_to_end.py --sizes 640x480 1920x1080 --repeats 2
    KERAS_BACKEND=jax python benchmarks/end_to_end.py          # e.g. on a CUDA GPU

Dilation study: on synthetic scenes, Mask R-CNN-like person masks (the ground-truth mask pushed
through Mask R-CNN's 28x28 box-relative mask resolution) are dilated by several radii; it prints
the fraction of person / person+held-object / person+shadow+object pixels covered and the hole
area relative to the ground-truth removal area.

    python benchmarks/end_to_end.py --dilation-study --scenes 300
"""
from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# -- dilation study ---------------------------------------------------------------------------------
def maskrcnn_like(mask, mask_shape=28):
    """The mask as Mask R-CNN can represent it: box crop -> 28x28 (bilinear) -> box size
    (bilinear) -> >= 0.5, i.e. Matterport's minimize_mask / unmold_mask round trip."""
    from skimage.transform import resize
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return mask.copy()
    y1, y2, x1, x2 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    crop = mask[y1:y2, x1:x2].astype(np.float64)
    small = resize(crop, (mask_shape, mask_shape), order=1, mode="constant", anti_aliasing=False)
    back = resize(small, crop.shape, order=1, mode="constant", anti_aliasing=False) >= 0.5
    out = np.zeros_like(mask)
    out[y1:y2, x1:x2] = back
    return out


def dilation_study(n_scenes, seed, height, width, radii):
    from data_prep.synth import make_scene
    from gone import masks as M
    stats = {r: np.zeros(7) for r in radii}
    for i in range(n_scenes):
        s = make_scene(seed, i, height, width)
        if s.num_people == 0:
            continue
        person = s.person_masks.any(-1)
        obj = s.object_masks.any(-1) if s.object_masks.shape[-1] else np.zeros_like(person)
        shadow = s.shadow_masks.any(-1) if s.shadow_masks.shape[-1] else np.zeros_like(person)
        target = person | obj | shadow
        inst = np.stack([maskrcnn_like(s.person_masks[..., k]) for k in range(s.num_people)], -1)
        det = M.detections_from_masks(inst)
        for r in radii:
            hole = M.hole_mask(det, person.shape, strategy="dilated", dilation=r, classes=None)
            stats[r] += [(hole & person).sum(), person.sum(), (hole & (person | obj)).sum(),
                         (person | obj).sum(), (hole & target).sum(), target.sum(), hole.sum()]
    print(f"dilation study: {n_scenes} synthetic scenes (seed {seed}, {height}x{width}); person masks "
          f"through Mask R-CNN's 28x28 mask resolution")
    print("| dilation | person covered | person+object covered | person+object+shadow covered "
          "| hole area / removal area |")
    print("|---|---|---|---|---|")
    for r in radii:
        a = stats[r]
        label = f"{r} px" if isinstance(r, int) else f"{r:g} x instance size"
        print(f"| {label} | {a[0] / a[1]:.4f} | {a[2] / a[3]:.4f} | {a[4] / a[5]:.4f} | {a[6] / a[5]:.3f} |")


# -- speed ----------------------------------------------------------------------------------------
def synthetic_photo(height, width, seed=0):
    from PIL import Image

    from data_prep.synth import make_scene
    s = make_scene(seed, 1, 256, 320)
    img = np.asarray(Image.fromarray(s.image).resize((width, height), Image.Resampling.BICUBIC))
    people = np.stack([np.asarray(Image.fromarray(s.person_masks[..., k]).resize((width, height), Image.Resampling.NEAREST))
                       for k in range(s.num_people)], -1).astype(bool)
    return np.ascontiguousarray(img), people


def _reference_weights(tmpdir):
    ref = pathlib.Path(os.environ.get("GONE_SHARED_REFERENCE", REPO.parent / "shared" / "reference"))
    out = pathlib.Path(tmpdir) / "mask_rcnn_synthetic.h5"
    subprocess.run([sys.executable, str(ref / "mask_rcnn" / "make_weights.py"),
                    str(ref / "mask_rcnn" / "mrcnn_coco_h5_manifest.json"), str(out)],
                   check=True, capture_output=True)
    return out


def speed(args):
    import keras

    from gone.models import load_detector, load_inpainter
    from gone.pipeline import PeopleRemover
    from gone.weights import find_weight_file

    tmp = tempfile.mkdtemp(prefix="gone_bench_")
    weights = args.mrcnn_weights or find_weight_file("mask_rcnn_coco")
    weights_kind = "published"
    if weights is None:
        weights, weights_kind = _reference_weights(tmp), "synthetic (reference make_weights.py)"
    ckpt = args.inpaint_checkpoint or find_weight_file("deepfill_v1_places2")
    t0 = time.perf_counter()
    detector = load_detector(weights)
    if ckpt:
        inpainter, ck_kind = load_inpainter(ckpt), str(ckpt)
    else:
        from inpaint import InpaintModel
        inpainter, ck_kind = InpaintModel(), "random"
    build = time.perf_counter() - t0
    load = f"; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs" if hasattr(os, "getloadavg") else ""
    print(f"backend {keras.backend.backend()}{load}; Mask R-CNN weights: {weights_kind}; DeepFill: {ck_kind}; "
          f"build+load {build:.1f} s")
    # min_score 0 and all classes: random weights detect arbitrary classes; this keeps the
    # inpainting stage busy, as with a real photo of people.
    remover = PeopleRemover(detector, inpainter, min_score=args.min_score, classes=None,
                            working_size=args.working_size)
    for size in args.sizes:
        w, h = (int(v) for v in size.lower().split("x"))
        img, people = synthetic_photo(h, w)
        remover.remove([img])                               # warm-up (graph tracing / compilation)
        times, holes, stages = [], [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            res = remover.remove([img])[0]
            times.append(time.perf_counter() - t)
            holes.append(res.large_crop_fraction)
            stages.append(remover.last_timings)
        best, mean = min(times), sum(times) / len(times)
        split = ", ".join(f"{k} {np.mean([s[k] for s in stages]):.2f} s" for k in ("detect", "masks", "inpaint"))
        print(f"{w}x{h}: {1 / mean:.3f} images/s (mean {mean:.2f} s, best {best:.2f} s over {args.repeats}; "
              f"{split}); hole fraction {np.mean(holes):.3f}; status {res.status}")
        # Random weights give arbitrary (often tiny) holes. Same photo, detector still run and
        # timed, but the hole = the synthetic people's masks (dilated as usual): the cost of a
        # real photo with people in it.
        remover.remove([img], hole_masks=[people])          # warm-up for the new region shapes
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            remover.detect([img])
            res = remover.remove([img], hole_masks=[people])[0]
            times.append(time.perf_counter() - t)
        mean = sum(times) / len(times)
        print(f"{w}x{h} with people-sized holes: {1 / mean:.3f} images/s (mean {mean:.2f} s, best "
              f"{min(times):.2f} s; inpaint {remover.last_timings['inpaint']:.2f} s); hole fraction "
              f"{res.large_crop_fraction:.3f}; {res.status}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", default=["640x480", "1920x1080"], help="WxH photo sizes")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--mrcnn-weights")
    p.add_argument("--inpaint-checkpoint")
    p.add_argument("--min-score", type=float, default=0.0)
    p.add_argument("--working-size", type=int, default=512)
    p.add_argument("--dilation-study", action="store_true")
    p.add_argument("--scenes", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.dilation_study:
        radii = [0, 2, 5, 10, 15, 0.02, 0.03, 0.05, 0.08, 0.1, 0.15]
        dilation_study(args.scenes, args.seed, 256, 320, radii)
    else:
        speed(args)


if __name__ == "__main__":
    main()
