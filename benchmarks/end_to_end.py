"""End-to-end GONE benchmark (seconds per photo) and the dilation study behind DEFAULT_DILATION.

Speed (default mode): builds Mask R-CNN (COCO config) + DeepFill v1 and times, per photo,
``PeopleRemover.detect`` plus ``PeopleRemover.remove`` with people-sized holes (the synthetic
people's masks, dilated as usual: random weights detect arbitrary tiny things, a real photo with
people costs this), on synthetic photos of the requested sizes. Weights: ``--mrcnn-weights`` /
``--inpaint-checkpoint``, else the cached published files, else synthetic Mask R-CNN weights made
with the golden reference's make_weights.py and a random-weight InpaintModel (speed does not
depend on the weight values). Every time is printed beside ``seconds x the machine's numpy sgemm
rate`` measured around it (benchmarks/sgemm.py), so runs on loaded machines compare.

Modes (``--modes``): ``full`` (full fidelity), ``fit`` (``--detector-resize fit``: square's scale,
padding only to multiples of 64), ``fast`` (Mask R-CNN at IMAGE_MAX_DIM 640), ``fast-fit``
(``gone remove --fast``: 640, fit, inpainting working size 256),
``bf16`` (DeepFill under the mixed_bfloat16 dtype policy; JAX only: TensorFlow rejects the mixed
dtypes); each later mode states its detections, detection-hole IoU and output PSNR against
``full``. ``--inpainter lama`` times LaMa (``gone.inpainters.LamaFill``) instead of DeepFill v1,
with its own region parameters (full resolution up to 2048 px, ``gone.inpainters.LAMA_REGION``)
unless ``--working-size`` is given; weights ``--lama-weights``, else the cached big-lama, else
random full-size big-lama weights (``bf16``: ``LamaInpainter(precision="bfloat16")``). ``--mask-head-both`` times the full mode with Mask R-CNN's mask head on all 100
detection slots (Matterport's graph) and on the kept detections only (the CPU default).

    python benchmarks/end_to_end.py --sizes 1920x1080 --repeats 2 --modes full fit fast fast-fit --mask-head-both
    KERAS_BACKEND=jax python benchmarks/end_to_end.py --sizes 1920x1080 --modes full bf16
    python benchmarks/end_to_end.py --paste-study --sizes 1920x1080    # full-size mask pasting cost
    python benchmarks/end_to_end.py --sizes 1920x1080 --inpainter lama --modes full fast-fit

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
sys.path.insert(0, str(REPO / "benchmarks"))
from gonefiles.quiet import quiet_backend_import  # noqa: E402

quiet_backend_import()   # TF's environment defaults, a quiet first `import keras`


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


# Modes: what each changes against full fidelity (the published configuration, fp32).
MODES = {
    "full": "full fidelity: IMAGE_MAX_DIM 1024, square padding, fp32",
    "fit": "fit: IMAGE_MAX_DIM 1024 with IMAGE_RESIZE_MODE fit (square's scale, padded to multiples of 64 "
           "only: gone remove --detector-resize fit), fp32",
    "fast": "fast: Mask R-CNN at IMAGE_MAX_DIM --max-dim (the detector's input square), fp32",
    "fast-fit": "gone remove --fast: IMAGE_MAX_DIM --max-dim with fit, inpainting working size 256, fp32",
    # Mask R-CNN's ProposalLayer mixes its bf16 inputs with float32 constants (a TypeError under
    # mixed_bfloat16), so the detector stays fp32 in this mode.
    "bf16": "bf16: DeepFill under the Keras dtype policy mixed_bfloat16 (fp32 weights, bf16 compute); detector fp32",
}
# mode -> (detector IMAGE_MAX_DIM or None for --max-dim, IMAGE_RESIZE_MODE, inpainting working size
# or None for --working-size)
MODE_SETTINGS = {"full": (1024, "square", None), "fit": (1024, "fit", None), "fast": (None, "square", None),
                 "fast-fit": (None, "fit", 256), "bf16": (1024, "square", None)}


def build_lama(mode, lama_weights):
    """LaMa behind the inpainter interface: from ``lama_weights``, else random full-size big-lama
    weights (speed does not depend on the values)."""
    from gone.inpainters import LamaFill
    from lama import LamaInpainter
    precision = "bfloat16" if mode == "bf16" else "float32"
    if lama_weights:
        return LamaFill(LamaInpainter.from_checkpoint(lama_weights, precision=precision), f"LaMa ({lama_weights})")
    return LamaFill(LamaInpainter(precision=precision), "LaMa big-lama, random weights")


def build_models(mode, weights, ckpt, max_dim, cache, inpainter_kind="deepfill", lama_weights=None):
    """(detector, inpainter) for a mode; the dtype policy is set before the layers are built.
    Models with the same settings are shared between modes through `cache` (so random inpainting
    weights are the same in every fp32 mode)."""
    import keras

    from gone.models import load_inpainter, make_detector_config
    from mrcnn.model import MaskRCNN
    dim, resize, _ = MODE_SETTINGS[mode]
    det_key = (dim or max_dim, resize)
    if det_key not in cache:
        config = make_detector_config(image_max_dim=det_key[0], resize_mode=resize)
        detector = MaskRCNN(mode="inference", config=config, model_dir=tempfile.mkdtemp(prefix="gone_bench_"))
        detector.load_weights(str(weights), by_name=True)
        cache[det_key] = detector
    inp_key = (inpainter_kind, "bf16" if mode == "bf16" else "fp32")
    if inp_key not in cache and inpainter_kind == "lama":
        keras.utils.set_random_seed(0)
        cache[inp_key] = build_lama(mode, lama_weights)
    if inp_key not in cache:
        keras.config.set_dtype_policy("mixed_bfloat16" if mode == "bf16" else "float32")
        try:
            keras.utils.set_random_seed(0)   # same random weights in every precision
            if ckpt:
                inpainter = load_inpainter(ckpt)
            else:
                from inpaint import InpaintModel
                inpainter = InpaintModel()
        finally:
            keras.config.set_dtype_policy("float32")
        cache[inp_key] = inpainter
    return cache[det_key], cache[inp_key]


def _psnr(a, b):
    err = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if err == 0 else 10 * np.log10(255.0 ** 2 / err)


def _iou(a, b):
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def _set_mask_head(detector, rois):
    """Mask head on every detection slot ("all", Matterport) or on the kept detections only
    ("kept"); None leaves the model's default. Returns the setting in force."""
    if rois is not None and hasattr(detector, "mask_head_rois"):
        detector.mask_head_rois = rois
    return getattr(detector, "mask_head_rois", "all")


def speed(args):
    import keras

    from gone.pipeline import PeopleRemover
    from gone.weights import find_weight_file
    from sgemm import SgemmClock, load_note

    clock = SgemmClock()
    tmp = tempfile.mkdtemp(prefix="gone_bench_")
    weights = args.mrcnn_weights or find_weight_file("mask_rcnn_coco")
    weights_kind = "published" if not args.mrcnn_weights else str(args.mrcnn_weights)
    if weights is None:
        weights, weights_kind = _reference_weights(tmp), "synthetic (reference make_weights.py)"
    ckpt = args.inpaint_checkpoint or find_weight_file("deepfill_v1_places2")
    lama_weights = args.lama_weights or find_weight_file("big-lama")
    filler = (f"LaMa: {lama_weights or 'random big-lama'}" if args.inpainter == "lama"
              else f"DeepFill: {ckpt or 'random'}")
    print(f"backend {keras.backend.backend()}; {load_note()}; sgemm {clock.tick():.1f} GFLOP/s; "
          f"Mask R-CNN weights: {weights_kind}; {filler}", flush=True)
    rows, reference, cache = [], {}, {}
    for mode in args.modes:
        t0 = time.perf_counter()
        try:
            detector, inpainter = build_models(mode, weights, ckpt, args.max_dim, cache, args.inpainter,
                                               lama_weights)
        except Exception as e:  # e.g. a layer without bf16 support: say so, go on
            print(f"[{mode}] cannot build: {type(e).__name__}: {str(e)[:300]}", flush=True)
            continue
        remover = PeopleRemover(detector, inpainter, min_score=args.min_score or None, classes=None,
                                working_size=MODE_SETTINGS[mode][2] or args.working_size)
        print(f"[{mode}] {MODES[mode]}; {args.inpainter} regions up to {remover.working_size} px; "
              f"build+load {time.perf_counter() - t0:.1f} s", flush=True)
        heads = [None] if mode != "full" or not args.mask_head_both else ["all", "kept"]
        for head in heads:
            head = _set_mask_head(detector, head)
            for size in args.sizes:
                w, h = (int(v) for v in size.lower().split("x"))
                img, people = synthetic_photo(h, w)
                # One repeat = detection (timed) + hole from the detections + inpainting of the
                # synthetic people's masks (people-sized holes: random weights detect arbitrary,
                # tiny things, a real photo with people costs this).
                try:
                    dets = remover.detect([img])                   # warm-up (tracing / compilation)
                    remover.remove([img], hole_masks=[people])
                except Exception as e:
                    print(f"[{mode}] {size}: fails: {type(e).__name__}: {str(e)[:300]}", flush=True)
                    break
                clock.tick()
                t_det, t_inp = [], []
                for _ in range(args.repeats):
                    t = time.perf_counter()
                    dets = remover.detect([img])
                    t_det.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    res = remover.remove([img], hole_masks=[people])[0]
                    t_inp.append(time.perf_counter() - t)
                clock.tick()
                det_hole = remover.hole_for(dets[0], img.shape, classes=None)
                detect_s, inpaint_s = float(np.mean(t_det)), float(np.mean(t_inp))
                total = detect_s + inpaint_s
                row = dict(mode=mode, head=head, size=size, total=total, detect=detect_s, inpaint=inpaint_s,
                           rate=clock.rate(), n_det=len(dets[0]["class_ids"]), hole=res.large_crop_fraction)
                ref = reference.get(size)
                if ref is None and mode == "full":
                    reference[size] = (dets[0], det_hole, res)
                elif ref is not None:
                    row.update(hole_iou=_iou(det_hole, ref[1]), psnr=_psnr(res.output, ref[2].output),
                               same_dets=_same_detections(dets[0], ref[0]))
                rows.append(row)
                print(f"[{mode}, mask head {head}] {w}x{h} with people-sized holes: {clock.fmt(total)} per photo "
                      f"(detect {clock.fmt(detect_s)}, inpaint {clock.fmt(inpaint_s)}; {row['n_det']} detections; "
                      f"hole {row['hole']:.3f})", flush=True)
                if "hole_iou" in row:
                    print(f"    against full fidelity: detections {row['same_dets']}, detection-hole IoU "
                          f"{row['hole_iou']:.4f}, output PSNR {row['psnr']:.1f} dB", flush=True)
        del remover
    print(f"\n{load_note()}; sgemm rates this run: " + ", ".join(f"{r:.0f}" for r in clock.rates) + " GFLOP/s")
    print("| mode | mask head | photo | s / photo | sgemm-GFLOP / photo | detect s | inpaint s | detections | "
          "against full fidelity |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        acc = (f"detections {r['same_dets']}; detection-hole IoU {r['hole_iou']:.3f}; output PSNR {r['psnr']:.1f} dB"
               if "hole_iou" in r else "reference")
        print(f"| {r['mode']} | {r['head']} | {r['size']} | {r['total']:.2f} | {r['total'] * r['rate']:.0f} | "
              f"{r['detect']:.2f} | {r['inpaint']:.2f} | {r['n_det']} | {acc} |")


def _same_detections(a, b):
    """'identical' or what differs between two detect() results."""
    if len(a["class_ids"]) != len(b["class_ids"]):
        return f"{len(a['class_ids'])} vs {len(b['class_ids'])}"
    if not len(a["class_ids"]):
        return "identical (none)"
    same = (np.array_equal(a["rois"], b["rois"]) and np.array_equal(a["class_ids"], b["class_ids"])
            and np.array_equal(a["masks"], b["masks"]))
    if same:
        return "identical" + (" (scores too)" if np.array_equal(a["scores"], b["scores"]) else "")
    return (f"boxes max diff {np.abs(a['rois'].astype(int) - b['rois']).max()} px, mask IoU "
            f"{_iou(a['masks'], b['masks']):.4f}")


def paste_study(args):
    """Cost of turning N 28x28 masks into full-size masks: Matterport's numpy unmold_mask
    (skimage resize per instance) vs mrcnn.model.paste_masks (keras.ops, two small matmuls each)."""
    import keras

    from mrcnn.model import paste_masks
    from mrcnn.utils import unmold_mask
    from sgemm import SgemmClock, load_note
    clock = SgemmClock()
    clock.tick()
    rng = np.random.default_rng(0)
    print(f"backend {keras.backend.backend()}; {load_note()}")
    print("| photo | instances | numpy unmold_mask s | device paste_masks s |")
    print("|---|---|---|---|")
    for size in args.sizes:
        w, h = (int(v) for v in size.lower().split("x"))
        for n in args.instances:
            masks = rng.uniform(0, 1, (n, 28, 28)).astype(np.float32)
            y1 = rng.integers(0, h // 2, n)
            x1 = rng.integers(0, w // 2, n)
            boxes = np.stack([y1, x1, y1 + rng.integers(50, h // 2, n), x1 + rng.integers(30, w // 3, n)], 1)
            paste_masks(masks, boxes, h, w)               # warm-up
            t = time.perf_counter()
            full = [unmold_mask(masks[i], boxes[i], (h, w)) for i in range(n)]
            t_np = time.perf_counter() - t
            t = time.perf_counter()
            dev = np.asarray(keras.ops.convert_to_numpy(paste_masks(masks, boxes, h, w)))
            t_dev = time.perf_counter() - t
            agree = np.mean([(dev[..., i] == full[i]).mean() for i in range(n)])
            clock.tick()
            print(f"| {w}x{h} | {n} | {clock.fmt(t_np)} | {clock.fmt(t_dev)} (pixels agreeing {agree:.6f}) |",
                  flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", default=["640x480", "1920x1080"], help="WxH photo sizes")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--mrcnn-weights")
    p.add_argument("--inpaint-checkpoint")
    p.add_argument("--min-score", type=float, default=0.0)
    p.add_argument("--working-size", type=int, default=None,
                   help="largest region side (default: the inpainter's, 512 DeepFill, 2048 LaMa)")
    p.add_argument("--inpainter", choices=("deepfill", "lama"), default="deepfill",
                   help="what fills the holes (default: deepfill, the paper's)")
    p.add_argument("--lama-weights", help="LaMa weights (default: the cached big-lama, else random)")
    p.add_argument("--modes", nargs="+", default=["full"], choices=list(MODES),
                   help="full (default), fit, fast (IMAGE_MAX_DIM --max-dim), fast-fit (gone remove --fast), "
                        "bf16; accuracy is stated against full")
    p.add_argument("--max-dim", type=int, default=640, help="IMAGE_MAX_DIM of the fast mode (multiple of 64)")
    p.add_argument("--mask-head-both", action="store_true",
                   help="in full mode, time the mask head on all 100 detection slots and on the kept ones")
    p.add_argument("--paste-study", action="store_true", help="time full-size mask pasting, numpy vs device")
    p.add_argument("--instances", type=int, nargs="+", default=[3, 20, 100])
    p.add_argument("--dilation-study", action="store_true")
    p.add_argument("--scenes", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.paste_study:
        paste_study(args)
    elif args.dilation_study:
        radii = [0, 2, 5, 10, 15, 0.02, 0.03, 0.05, 0.08, 0.1, 0.15]
        dilation_study(args.scenes, args.seed, 256, 320, radii)
    else:
        speed(args)


if __name__ == "__main__":
    main()
