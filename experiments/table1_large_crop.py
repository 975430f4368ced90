"""Table 1 of the paper: inpainting all images vs only those without a "large crop".

Command:

    python experiments/table1_large_crop.py
    python experiments/table1_large_crop.py --coco_dir /data/coco [--inpaint_checkpoint release_places2_256]
    python experiments/table1_large_crop.py --smoke --set strategy=dilated

Cost: 80 s wall, peak RSS 0.17 GB on a shared 2-core CPU machine (load ~7, 2026-12-03) on the
synthetic set with PatchMatch (12 scenes, one hole each); on COCO (Val-100 and
Val-100-no-large-crop, up to 200 images) one fill per image (DeepFill v1: a few seconds on 2 CPU
cores) plus ~7 s per image for Mask R-CNN with `--masks model`.

A "large crop" is an image whose person masks cover more than half of it
(gone.masks.LARGE_CROP_THRESHOLD). On COCO (`--coco_dir ...`) the two columns are the splits
Val-100 and Val-100-no-large-crop (data_prep.coco_splits); on the synthetic set (the default:
12 scenes, 256x320, seed 0, about 12 % of them close-ups) or a --benchmark_dir they are "all
images" and "images without a large crop". Each image goes once through
gone.pipeline.PeopleRemover.remove (the procedure of `gone remove`) with the config's `strategy`
(default "mask", the naive pipeline the paper started from), oracle masks unless Mask R-CNN
weights are found, and --inpainter (default auto: DeepFill v1 Places2 weights if given or cached,
else PatchMatch; random weights only with `--inpainter deepfill-random`, said loudly).
Configuration: `get_config()` below (`--set key=value`).

Writes under --output_dir (default outputs/table1_large_crop): images/, per_image.csv,
labeling_sheet.csv + private/labeling_key.csv, figure.png (original | hole | result), summary.md,
run_info.json. Label the sheet, then run experiments/make_table.py.

Expected result: with the published weights, the paper's finding: far fewer "solid"/"striped"
results once large crops are excluded (their holes leave too little context). With random
weights (deepfill-random) every fill is noise and only the file layout is meaningful.
"""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _common  # noqa: E402
from absl import app  # noqa: E402

TITLE = "Table 1: large crops (all images vs no large crop)"
STRATEGIES = ("box", "mask", "dilated", "traces")


def get_config(arg=None):
    cfg = _common.eval_config(arg)
    cfg["strategy"] = "mask"
    cfg["split"] = "val-100,val-100-no-large-crop"
    return cfg


def figure(path, rows, models, n_rows):
    rows = sorted(rows, key=lambda r: -float(r["large_crop_fraction"]))
    # Show the largest crops and the smallest, side by side with their holes.
    half = n_rows // 2
    picked = rows[:half] + rows[::-1][:n_rows - half]
    seen, uniq = set(), []
    for r in picked:
        if r["image"] not in seen:
            seen.add(r["image"])
            uniq.append(r)
    out = pathlib.Path(path).parent
    read = _common.read_rgb
    panels = [[read(out / r["original_path"]), read(out / r["hole_path"]),
               read(out / r["result_path"])] for r in uniq]
    titles = [f"{r['image']} ({float(r['large_crop_fraction']):.0%})" for r in uniq]
    sup = _common.RANDOM_WEIGHTS_BANNER if models.random_weights else ""
    return _common.figure_grid(path, panels, ["original", "hole", "result"], titles, sup)


def run(cfg, env):
    if cfg["strategy"] not in STRATEGIES:
        raise _common.ExperimentError(f"strategy: choose one of {', '.join(STRATEGIES)}, got "
                                      f"{cfg['strategy']!r}")
    out = env.output_dir
    splits = _common.split_names(cfg, "val-100,val-100-no-large-crop")
    name = "synthetic" if not env.benchmark_dir else "benchmark"
    # bad data paths fail before the models are built
    data = _common.load_data(cfg, env, splits, [f"{name}-all", f"{name}-no-large-crop"])
    models = _common.load_models(cfg, env)
    if not data.samples:
        raise _common.ExperimentError("no images to process")
    rows = _common.evaluate(data, [cfg["strategy"]], models, cfg, out, env.verbose)
    paths = _common.write_outputs(out, rows, data.columns, lambda r: r["columns"], models, data,
                                  TITLE + f", strategy {cfg['strategy']}",
                                  lambda p: figure(p, rows, models, int(cfg["figure_rows"])),
                                  "table1_large_crop", cfg)
    if models.random_weights:
        print(f"!!! {_common.RANDOM_WEIGHTS_BANNER}")
    return paths


def main(argv):
    return _common.run_script(run, get_config, "table1_large_crop", argv)


if __name__ == "__main__":
    app.run(main)
