"""The GPU benchmark suite: one table of every speed figure, JAX, one accelerator, <= 8 minutes.

    bash benchmarks/run_all.sh                 # on the GPU machine (KERAS_BACKEND=jax)
    bash benchmarks/run_all.sh --smoke         # CPU smoke run: tiny sizes, a few iterations

Sections (each in its own process, so that JAX and PyTorch do not share the GPU's memory, each
with a time limit so that the whole suite stays within --budget seconds):

- ``mrcnn``: Mask R-CNN inference, COCO config (81 classes), ResNet-101, 1024x1024, batch 1 and
  8, random weights with DETECTION_MIN_CONFIDENCE 0 (100 detections per image: the worst case
  for masks): the network with its 28x28 masks fetched, and with full-size masks pasted on the
  device (``mrcnn.model.paste_masks``).
- ``deepfill``: DeepFill v1 inference (the compiled generator call of ``InpaintModel``), 256x256
  batch 16 and 512x512 batch 8, in fp32, TF32 (``precision="tf32"``) and bf16 (Keras dtype
  policy ``mixed_bfloat16``).
- ``mrcnn_train``: Mask R-CNN training step (all layers, SGD, Matterport's losses), 1024x1024,
  ResNet-101, 2 images per step, shapes data.
- ``deepfill_train``: DeepFill v1 training, one generator step = 5 critic updates + 1 generator
  update (``InpaintTrainer.train_step``), 256x256, batch 16.
- ``e2e``: end-to-end photos/s, 1920x1080 synthetic photos with people-sized holes, batch 8:
  detection (device mask paste) + hole masks + DeepFill + paste back (``PeopleRemover``).
- ``peer``: torchvision's Mask R-CNN R101-FPN (random weights, 1024x1024, 100 detections, fp32)
  in the same run, batch 1 and 8, with its full-size masks and with its 28x28 masks.

The targets of the table come from the project's speed goals (ratios in the same run):
Mask R-CNN >= 2x torchvision at batch 8 (>= 140 images/s), full-size masks within 10 % of the
28x28 figure, DeepFill >= 844 images/s at 256^2 (2x the PyTorch port's 422), >= 50 photos/s end
to end. Each figure is also printed as ``s x sgemm rate`` of the host (benchmarks/sgemm.py), so
CPU figures from loaded machines compare.

The table is printed and written to --out, by default outputs/benchmarks/gpu_suite.md (--smoke:
outputs/benchmarks/gpu_suite_smoke.md; outputs/ is not tracked), so a run never rewrites the
tables kept in docs/benchmarks/ unless --out names one.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from gonefiles.quiet import quiet_backend_import  # noqa: E402

quiet_backend_import()   # TF's environment defaults, a quiet first `import keras`

SECTIONS = ("mrcnn", "deepfill", "mrcnn_train", "deepfill_train", "e2e", "peer")

# Small heads for the CPU smoke run (the heads, not the backbone, dominate a 128x128 image).
SMOKE_MRCNN = dict(POST_NMS_ROIS_INFERENCE=64, PRE_NMS_LIMIT=500, DETECTION_MAX_INSTANCES=16,
                   TOP_DOWN_PYRAMID_SIZE=64, FPN_CLASSIF_FC_LAYERS_SIZE=64, POST_NMS_ROIS_TRAINING=128,
                   RPN_TRAIN_ANCHORS_PER_IMAGE=64, TRAIN_ROIS_PER_IMAGE=32, MAX_GT_INSTANCES=10)

# Full run on one H200; --smoke on a CPU (tiny: checks that every code path runs).
SETTINGS = {
    "full": {
        "mrcnn": dict(size=1024, backbone="resnet101", batches=(1, 8), iters=10, warmup=2),
        "deepfill": dict(cases=((256, 16), (512, 8)), precisions=("float32", "tf32", "bf16"), iters=10, warmup=2),
        "mrcnn_train": dict(size=1024, backbone="resnet101", batch=2, steps=10, warmup=2),
        "deepfill_train": dict(size=256, batch=16, steps=3, warmup=1),
        "e2e": dict(height=1080, width=1920, batch=8, rounds=3, warmup=1, backbone="resnet101"),
        "peer": dict(size=1024, batches=(1, 8), iters=10, warmup=3),
        "limits": dict(mrcnn=130, deepfill=80, mrcnn_train=80, deepfill_train=60, e2e=70, peer=60),
    },
    "smoke": {
        "mrcnn": dict(size=128, backbone="small", batches=(1,), iters=1, warmup=1, config=SMOKE_MRCNN),
        "deepfill": dict(cases=((64, 2),), precisions=("float32", "bf16"), iters=1, warmup=1),
        "mrcnn_train": dict(size=128, backbone="small", batch=1, steps=1, warmup=2, config=SMOKE_MRCNN),
        "deepfill_train": dict(size=64, batch=2, steps=1, warmup=2),
        "e2e": dict(height=64, width=96, batch=1, rounds=1, warmup=1, backbone="small", config=SMOKE_MRCNN),
        "peer": dict(size=128, batches=(1,), iters=1, warmup=1),
        "limits": dict(mrcnn=300, deepfill=300, mrcnn_train=300, deepfill_train=300, e2e=300, peer=120),
    },
}

TARGETS = {  # (section, figure name) -> (target text, value to reach, images/s of the peer figure to double)
    ("mrcnn", "network, 28x28 masks, batch 8"): (">= 140 images/s, >= 2x torchvision", 140.0),
    ("mrcnn", "full-size masks pasted on device, batch 8"): (">= 0.9x the 28x28 figure", None),
    ("deepfill", "256x256 batch 16, float32"): (">= 844 images/s (2x PyTorch port's 422)", 844.0),
    ("deepfill", "512x512 batch 8, float32"): ("PyTorch port: 93 images/s", 93.0),
    ("e2e", "photos/s"): (">= 50 photos/s", 50.0),
}


# -- helpers ------------------------------------------------------------------------------------------
def _sync(x):
    """Block until a backend value is computed (fetches one scalar)."""
    import keras
    return float(keras.ops.convert_to_numpy(keras.ops.sum(keras.ops.cast(x, "float32"))))


def _timed(fn, iters, warmup):
    for _ in range(warmup):
        fn()
    t = time.perf_counter()
    for _ in range(iters):
        out = fn()
    return (time.perf_counter() - t) / iters, out


def _mrcnn_config(size, backbone, batch, num_classes=81, **extra):
    from mrcnn import training
    from mrcnn.config import Config
    fields = dict(NAME="bench", NUM_CLASSES=num_classes, GPU_COUNT=1, IMAGES_PER_GPU=batch, IMAGE_MIN_DIM=size,
                  IMAGE_MAX_DIM=size, **extra)
    if backbone == "small":
        net, shapes = training.small_backbone()
        fields.update(BACKBONE=net, COMPUTE_BACKBONE_SHAPE=shapes)
    else:
        fields["BACKBONE"] = backbone
    if size < 512:
        fields["RPN_ANCHOR_SCALES"] = (8, 16, 32, 64, 128)
    return Config(**fields)


def _row(section, name, value, unit, seconds=None, note=""):
    return dict(section=section, name=name, value=value, unit=unit, seconds=seconds, note=note)


# -- sections ---------------------------------------------------------------------------------------
def section_mrcnn(s):
    import keras
    import numpy as np

    from mrcnn import transform
    from mrcnn.model import MaskRCNN, _unmold_boxes, paste_masks
    rows = []
    rng = np.random.default_rng(0)
    for bs in s["batches"]:
        config = _mrcnn_config(s["size"], s["backbone"], bs, DETECTION_MIN_CONFIDENCE=0.0, **s.get("config", {}))
        model = MaskRCNN("inference", config, model_dir=None)
        images = list(rng.integers(0, 255, (bs, s["size"], s["size"], 3), dtype=np.uint8))
        molded, metas, windows = transform.mold_inputs(images, config)
        anchors = transform.get_anchors(config, molded.shape[1:])
        anchors = np.broadcast_to(anchors, (bs,) + anchors.shape)
        shape = images[0].shape

        def network():
            return model._predict(molded, metas, anchors)

        def pasted():
            det, masks = network()
            outs = []
            for j in range(bs):
                n = int((det[j, :, 4] > 0).sum())
                rois, _, _, keep = _unmold_boxes(det[j, :n], shape, molded.shape[1:], windows[j])
                outs.append(paste_masks(masks[j, :n][keep], rois, shape[0], shape[1]))
            return [_sync(o) for o in outs]   # full-size masks stay on the device

        t_net, (det, _) = _timed(network, s["iters"], s["warmup"])
        t_paste, _ = _timed(pasted, s["iters"], s["warmup"])
        n_det = int((det[:, :, 4] > 0).sum(axis=1).mean())
        note = f"{n_det} detections/image"
        rows.append(_row("mrcnn", f"network, 28x28 masks, batch {bs}", bs / t_net, "images/s", t_net, note))
        rows.append(_row("mrcnn", f"full-size masks pasted on device, batch {bs}", bs / t_paste, "images/s",
                         t_paste, note))
        del model
        keras.backend.clear_session()
    return rows


def _deepfill_model(precision):
    import keras

    from inpaint import InpaintModel
    if precision == "bf16":
        keras.config.set_dtype_policy("mixed_bfloat16")
        try:
            return InpaintModel()
        finally:
            keras.config.set_dtype_policy("float32")
    return InpaintModel(precision=precision)


def section_deepfill(s):
    import numpy as np
    rows = []
    for precision in s["precisions"]:
        model = _deepfill_model(precision)
        fn = model._forward_fn()
        for size, batch in s["cases"]:
            rng = np.random.default_rng(0)
            images = rng.integers(0, 256, (batch, size, size, 3)).astype(np.float32) / 127.5 - 1
            holes = np.zeros((batch, size, size, 1), np.float32)
            for i in range(batch):   # a different hole per image, ~15 % of the area
                t, l_ = rng.integers(0, size // 2, 2)
                holes[i, t:t + int(size * 0.4), l_:l_ + int(size * 0.38)] = 1
            x = images * (1 - holes)
            dt, _ = _timed(lambda: fn(x, holes), s["iters"], s["warmup"])
            rows.append(_row("deepfill", f"{size}x{size} batch {batch}, {precision}", batch / dt, "images/s", dt))
    return rows


def section_mrcnn_train(s):
    import numpy as np

    from mrcnn import training
    from mrcnn.data_generator import DataGenerator
    from mrcnn.datasets.shapes import ShapesDataset
    dataset = ShapesDataset()
    dataset.load_shapes(max(4, 2 * s["batch"]), s["size"], s["size"], seed=0, buffer=min(20, s["size"] // 4))
    dataset.prepare()
    config = _mrcnn_config(s["size"], s["backbone"], s["batch"], num_classes=dataset.num_classes, **s.get("config", {}))
    generator = DataGenerator(dataset, config, shuffle=True, seed=0, steps_per_epoch=2)
    batches = [generator[i][0] for i in range(len(generator))]
    model = training.build_training_model(config)
    training.set_trainable(model, training.LAYER_REGEX["all"])
    training.compile_training_model(model, config, learning_rate=0.001, momentum=config.LEARNING_MOMENTUM)
    step = iter(range(10 ** 9))

    def one():
        logs = model.train_on_batch(list(batches[next(step) % len(batches)]), return_dict=True)
        return float(logs["loss"])

    dt, loss = _timed(one, s["steps"], s["warmup"])
    if not np.isfinite(loss):
        raise FloatingPointError(f"training loss is {loss}")
    return [_row("mrcnn_train", f"training step, batch {s['batch']}", s["batch"] / dt, "images/s", dt,
                 f"{s['size']}x{s['size']}, shapes data ({dataset.num_classes} classes), loss {loss:.3f}")]


def section_deepfill_train(s):
    import keras
    import numpy as np

    from inpaint.config import InpaintConfig
    from inpaint.trainer import InpaintTrainer
    size, batch = s["size"], s["batch"]
    patch = size // 2
    config = InpaintConfig().override(dict(IMG_SHAPES=[size, size, 3], HEIGHT=patch, WIDTH=patch,
                                           MAX_DELTA_HEIGHT=patch // 4, MAX_DELTA_WIDTH=patch // 4,
                                           BATCH_SIZE=batch))
    rng = np.random.default_rng(0)
    pool = [rng.uniform(0, 255, (batch, size, size, 3)).astype(np.float32) for _ in range(2)]
    counter = iter(range(10 ** 9))
    with tempfile.TemporaryDirectory() as log_dir:
        trainer = InpaintTrainer(config, log_dir=log_dir, seed=0, snapshot_every=10 ** 9, verbose=0)

        def one():
            scalars, *_ = trainer.train_step(lambda: pool[next(counter) % len(pool)])
            return {k: float(keras.ops.convert_to_numpy(v)) for k, v in scalars.items()}

        dt, losses = _timed(one, s["steps"], s["warmup"])
    critic = getattr(config, "CRITIC_STEPS", 5)
    return [_row("deepfill_train", f"generator step ({critic} critic + 1 generator updates), {size}x{size} "
                 f"batch {batch}", batch / dt, "images/s", dt)]


class _DevicePasteDetector:
    """MaskRCNN.detect with the full-size masks pasted on the device (PeopleRemover calls detect(images))."""

    def __init__(self, model):
        self.model, self.config = model, model.config

    def detect(self, images, verbose=0):
        return self.model.detect(images, verbose=verbose, mask_paste="device")


def section_e2e(s):
    import numpy as np

    from end_to_end import synthetic_photo
    from gone.pipeline import PeopleRemover
    from inpaint import InpaintModel
    from mrcnn.model import MaskRCNN
    bs = s["batch"]
    size = 1024 if s["backbone"] != "small" else 128
    config = _mrcnn_config(size, s["backbone"], bs, DETECTION_MIN_CONFIDENCE=0.7, **s.get("config", {}))
    detector = _DevicePasteDetector(MaskRCNN("inference", config, model_dir=None))
    remover = PeopleRemover(detector, InpaintModel(batch_size=bs), classes=None, batch_size=bs)
    photos, people = zip(*[synthetic_photo(s["height"], s["width"], seed=i) for i in range(bs)])

    def one():
        remover.detect(list(photos))
        return remover.remove(list(photos), hole_masks=list(people))

    dt, res = _timed(one, s["rounds"], s["warmup"])
    hole = float(np.mean([r.large_crop_fraction for r in res]))
    return [_row("e2e", "photos/s", bs / dt, "photos/s", dt,
                 f"{s['width']}x{s['height']}, batch {bs}, hole {hole:.0%} of the photo")]


def section_peer(s):
    try:
        import torch
        import torchvision
        from torchvision.models.detection import MaskRCNN
        from torchvision.models.detection import transform as tv_transform
        from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
    except ImportError as e:
        return [_row("peer", "torchvision Mask R-CNN R101-FPN", None, "images/s", note=f"skipped: {e}")]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = False   # fp32, as our figures
    torch.backends.cudnn.allow_tf32 = False
    backbone = resnet_fpn_backbone(backbone_name="resnet101", weights=None, trainable_layers=0)
    model = MaskRCNN(backbone, num_classes=91, min_size=s["size"], max_size=s["size"], box_score_thresh=0.0,
                     box_detections_per_img=100).to(device).eval()
    rows = []
    paste = tv_transform.paste_masks_in_image
    for bs in s["batches"]:
        images = [torch.rand(3, s["size"], s["size"], device=device) for _ in range(bs)]

        def run():
            with torch.no_grad():
                out = model(images)
            if device == "cuda":
                torch.cuda.synchronize()
            return out

        dt_full, _ = _timed(run, s["iters"], s["warmup"])
        tv_transform.paste_masks_in_image = lambda masks, boxes, img_shape, padding=1: masks  # 28x28 only
        try:
            dt_small, _ = _timed(run, s["iters"], s["warmup"])
        finally:
            tv_transform.paste_masks_in_image = paste
        note = f"torch {torch.__version__}, torchvision {torchvision.__version__}, {device}"
        rows.append(_row("peer", f"torchvision R101-FPN, 28x28 masks, batch {bs}", bs / dt_small, "images/s",
                         dt_small, note))
        rows.append(_row("peer", f"torchvision R101-FPN, full-size masks, batch {bs}", bs / dt_full, "images/s",
                         dt_full, note))
    return rows


# -- driver -------------------------------------------------------------------------------------------
def run_section(name, settings):
    """Rows of one section; a failure is one row that says why."""
    t0 = time.perf_counter()
    try:
        rows = globals()[f"section_{name}"](settings)
    except Exception as e:
        rows = [_row(name, "(section)", None, "", note=f"failed: {type(e).__name__}: {str(e)[:200]}")]
    device = _device()
    for r in rows:
        r.setdefault("section_s", time.perf_counter() - t0)
        r["device"] = device
    return rows


def _device():
    import keras
    if keras.backend.backend() == "jax":
        import jax
        return f"jax {jax.__version__} on {jax.devices()[0].device_kind} x{len(jax.devices())}"
    return f"{keras.backend.backend()} (CPU)"


def _in_subprocess(name, mode, limit):
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "rows.json"
        cmd = [sys.executable, __file__, "--section", name, "--json", str(out)] + (["--smoke"] if mode == "smoke" else [])
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
        except subprocess.TimeoutExpired:
            return [_row(name, "(section)", None, "", note=f"stopped after its {limit} s limit")]
        if out.exists():
            return json.loads(out.read_text())
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return [_row(name, "(section)", None, "", note=f"failed (exit {proc.returncode}): {tail[0][:200]}")]


def format_table(rows, header):
    by_name = {(r["section"], r["name"]): r for r in rows}
    peer8 = by_name.get(("peer", "torchvision R101-FPN, 28x28 masks, batch 8"))
    lines = [header, "", "| section | figure | value | unit | s / batch | sgemm-GFLOP | target | ratio | note |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        value = "-" if r["value"] is None else f"{r['value']:.2f}"
        secs = "-" if r.get("seconds") is None else f"{r['seconds']:.4f}"
        gflop = "-" if r.get("seconds") is None or not r.get("sgemm") else f"{r['seconds'] * r['sgemm']:.1f}"
        target, ratio = "", ""
        spec = TARGETS.get((r["section"], r["name"]))
        if spec and r["value"] is not None:
            target = spec[0]
            if spec[1]:
                ratio = f"{r['value'] / spec[1]:.2f}x target"
            elif r["name"].startswith("full-size"):
                base = by_name.get(("mrcnn", r["name"].replace("full-size masks pasted on device", "network, 28x28 masks")))
                if base and base["value"]:
                    ratio = f"{r['value'] / base['value']:.2f}x the 28x28 figure"
        if r["section"] == "mrcnn" and r["name"] == "network, 28x28 masks, batch 8" and peer8 and peer8["value"]:
            ratio += f"; {r['value'] / peer8['value']:.2f}x torchvision"
        lines.append(f"| {r['section']} | {r['name']} | {value} | {r['unit']} | {secs} | {gflop} | {target} | "
                     f"{ratio} | {r.get('note', '')} |")
    return "\n".join(lines) + "\n"


def default_out(mode):
    """The table's default path: under outputs/ (untracked), never over docs/benchmarks/."""
    return REPO / "outputs" / "benchmarks" / f"gpu_suite{'_smoke' if mode == 'smoke' else ''}.md"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="CPU smoke run: tiny sizes, a few iterations, one process")
    p.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    p.add_argument("--out", default=None, help="table file (default outputs/benchmarks/gpu_suite[_smoke].md)")
    p.add_argument("--section", choices=SECTIONS, help=argparse.SUPPRESS)    # internal: one section
    p.add_argument("--json", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    mode = "smoke" if args.smoke else "full"
    settings = SETTINGS[mode]
    if args.section:   # child process: one section, rows as JSON
        rows = run_section(args.section, settings[args.section])
        pathlib.Path(args.json).write_text(json.dumps(rows))
        return 0

    from sgemm import load_note, sgemm_gflops
    start = time.perf_counter()
    rate = sgemm_gflops(min_seconds=0.3)
    rows = []
    for name in args.sections:
        t = time.perf_counter()
        if mode == "smoke":   # one process: imports and compilations are shared, no GPU memory to isolate
            got = run_section(name, settings[name])
        else:
            got = _in_subprocess(name, mode, settings["limits"][name])
        for r in got:
            r["sgemm"] = rate
            print(f"{r['section']:15s} {r['name']:60s} "
                  f"{'-' if r['value'] is None else format(r['value'], '.2f'):>10s} {r['unit']} {r.get('note', '')}",
                  flush=True)
        rows.extend(got)
        print(f"  ({name}: {time.perf_counter() - t:.0f} s)", flush=True)
    devices = sorted({r.get("device", "?") for r in rows})
    header = (f"# GPU benchmark suite ({'smoke run, CPU' if mode == 'smoke' else 'full run'})\n\n"
              f"Command: `{' '.join(['bash benchmarks/run_all.sh'] + list(sys.argv[1:] if argv is None else argv))}`; "
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {', '.join(devices)}; host "
              f"{platform.machine()}, {load_note()}, numpy sgemm {rate:.1f} GFLOP/s (sgemm-GFLOP = seconds x "
              f"this rate); whole suite {time.perf_counter() - start:.0f} s.")
    table = format_table(rows, header)
    out = pathlib.Path(args.out or default_out(mode))
    out.parent.mkdir(parents=True, exist_ok=True)
    from gone.io import write_text_atomic
    write_text_atomic(out, table)
    print("\n" + table + f"\nwritten to {out}")
    failed = [r for r in rows if r["value"] is None and not r.get("note", "").startswith("skipped")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
