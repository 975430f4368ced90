"""Table 2 of the paper: which hole to inpaint, the person's box, mask or dilated mask? Plus
``traces``: the dilated mask, the objects the person holds and its cast shadow.

Command (the README's main job; offline):

    python experiments/table2_crop_strategy.py
    python experiments/table2_crop_strategy.py --smoke                       # 3 scenes 64x96
    python experiments/table2_crop_strategy.py --set synth.scenes=50 --set dilation=0.1

Cost: 39 s wall on a 2-core CPU machine at load 1.5-2 (README, 2026-12-02), 63-143 s at load
5-9 (2026-12-03), with PatchMatch (12 scenes x 4 holes); with Mask R-CNN (`--masks model`) add
~7 s per image (one detection per image, shared by the four holes).

With no flags it generates 12 synthetic scenes (data_prep.synth, 256x320, seed 0), takes the
ground-truth person and held-object masks (oracle: a perfect detector) unless Mask R-CNN weights
are cached (`gone weights`), and inpaints each scene four times, with the `box`, `mask`,
`dilated` and `traces` holes, using `--inpainter` (default auto: the cached DeepFill v1 Places2
checkpoint, else PatchMatch; never random weights unless `--inpainter deepfill-random`, which
is said loudly in the output and in the table header). Each image goes through
gone.pipeline.PeopleRemover.remove, the procedure of `gone remove`, once per strategy (the
detector: the ground truth, or Mask R-CNN run once per image). The shadows of `traces` are
always found from the pixels (gone.shadows), never from the ground truth. Configuration:
`get_config()` below (`--set key=value`).
On COCO: `--coco_dir /data/coco --split test-100-no-large-crop [--masks model]`.

Writes under --output_dir (default outputs/table2_crop_strategy): images/<image>/{original,
<strategy>_hole, <strategy>_result}.png, per_image.csv (strategy, large-crop fraction, gradient
norm, PSNR/SSIM against the clean background where it exists), labeling_sheet.csv (blind,
shuffled) with its key in private/, figure.png (the paper's Figure 4: original | box | mask |
dilated | traces), summary.md (removal PSNR first; every column defined) and run_info.json.
Label the sheet, then run experiments/make_table.py.

Expected result: with the published weights, the paper's finding: the dilated mask gives the most
"good" results and the box the most "solid"/"striped" ones. On the synthetic set with PatchMatch
(the offline default), removal PSNR (whole image against the clean background) is lowest for
"box" and highest for "traces" (it also removes shadows and held objects); see
docs/benchmarks/traces.md for the 300-scene figures. With `--inpainter deepfill-random` every
fill is noise: only the file layout is meaningful.
"""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _common  # noqa: E402
from absl import app  # noqa: E402

STRATEGIES = ("box", "mask", "dilated", "traces")
TITLE = "Table 2: crop strategy (box / mask / dilated mask / traces)"


def get_config(arg=None):
    cfg = _common.eval_config(arg)
    cfg["strategies"] = list(STRATEGIES)
    cfg["split"] = "test-100-no-large-crop"
    return cfg


def figure(path, rows, models, cfg):
    strategies = cfg["strategies"]
    by_image = {}
    for r in rows:
        by_image.setdefault(r["image"], {})[r["strategy"]] = r
    # Prefer images where something was inpainted.
    names = [n for n, v in by_image.items() if all(x["status"] == "inpainted"
                                                  for x in v.values())] or list(by_image)
    names = names[:int(cfg["figure_rows"])]
    out = pathlib.Path(path).parent
    read = _common.read_rgb
    panels = [[read(out / by_image[n][strategies[0]]["original_path"])] +
              [read(out / by_image[n][s]["result_path"]) for s in strategies] for n in names]
    sup = _common.RANDOM_WEIGHTS_BANNER if models.random_weights else ""
    return _common.figure_grid(path, panels, ["original", *strategies], names, sup)


def run(cfg, env):
    unknown = sorted(set(cfg["strategies"]) - set(STRATEGIES))
    if unknown or not cfg["strategies"]:
        raise _common.ExperimentError(f"strategies: choose from {', '.join(STRATEGIES)}, got "
                                      f"{cfg['strategies']}")
    out = env.output_dir
    splits = _common.split_names(cfg, "test-100-no-large-crop")
    name = "synthetic" if not env.benchmark_dir else "benchmark"
    data = _common.load_data(cfg, env, splits, [name])   # bad data paths fail before the models
    models = _common.load_models(cfg, env)
    if not data.samples:
        raise _common.ExperimentError("no images to process")
    strategies = list(cfg["strategies"])
    rows = _common.evaluate(data, strategies, models, cfg, out, env.verbose)
    paths = _common.write_outputs(out, rows, strategies, lambda r: [r["strategy"]], models, data,
                                  TITLE, lambda p: figure(p, rows, models, cfg),
                                  "table2_crop_strategy", cfg)
    if models.random_weights:
        print(f"!!! {_common.RANDOM_WEIGHTS_BANNER}")
    return paths


def main(argv):
    return _common.run_script(run, get_config, "table2_crop_strategy", argv)


if __name__ == "__main__":
    app.run(main)
