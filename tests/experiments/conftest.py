"""Experiment outputs for the labeling tests.

`smoke_output`: a smoke experiment output of the synthetic set, built in about a second.

Same layout as `experiments/table2_crop_strategy.py` writes (images/, per_image.csv,
labeling_sheet.csv, to_label/, private/labeling_key.csv, run_info.json), with OpenCV's Telea
fill standing in for DeepFill so no model is built.
`experiment_output`: a real run of experiments/table2_crop_strategy.py (2 tiny scenes, Telea),
once per session (the browser test and the notebooks use it).
"""
import json
import pathlib
import shutil

import numpy as np
import pytest

STRATEGIES = ("box", "mask", "dilated")


def build_smoke_output(out, n_scenes=3, height=64, width=96, seed=0):
    import cv2

    from data_prep import synth
    from gone import labeling, masks
    from gone.io import write_image_atomic, write_mask_atomic, write_text_atomic
    from pycocotools.coco import COCO
    import contextlib
    import csv
    import io

    out = pathlib.Path(out)
    ann = synth.generate(out / "synth_data", n_scenes, seed=seed, height=height, width=width,
                         progress=False)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(ann))
    person = coco.getCatIds(catNms=["person"])
    rows, results = [], []
    for image_id in sorted(coco.imgs):
        info = coco.imgs[image_id]
        name = pathlib.Path(info["file_name"]).stem
        image = cv2.cvtColor(cv2.imread(str(ann.parent / "images" / info["file_name"])),
                             cv2.COLOR_BGR2RGB)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id], catIds=person, iscrowd=None))
        inst = np.stack([coco.annToMask(a).astype(bool) for a in anns], -1)
        det = masks.detections_from_masks(inst)
        folder = out / "images" / name
        original = write_image_atomic(folder / "original.png", image)
        for s in STRATEGIES:
            hole = masks.hole_mask(det, image.shape, strategy=s, min_score=0.0)
            filled = cv2.inpaint(image, hole.astype(np.uint8) * 255, 3, cv2.INPAINT_TELEA)
            hole_path = write_mask_atomic(folder / f"{s}_hole.png", hole)
            result = write_image_atomic(folder / f"{s}_result.png", filled)
            row = {"image": name, "columns": "synthetic", "strategy": s, "status": "inpainted",
                   "num_people": len(anns), "gradient_norm": f"{0.01 * (len(rows) + 1):.4f}",
                   "original_path": original.relative_to(out).as_posix(),
                   "hole_path": hole_path.relative_to(out).as_posix(),
                   "result_path": result.relative_to(out).as_posix(),
                   "masks": "oracle", "inpaint_weights": "telea"}
            rows.append(row)
            results.append({"image": name, "column": s, "image_path": row["result_path"]})
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    write_text_atomic(out / "per_image.csv", buf.getvalue())
    labeling.write_labeling_sheet(results, out / "labeling_sheet.csv",
                                  out / "private" / "labeling_key.csv", seed=seed,
                                  blind_images_dir="to_label")
    info = {"script": "table2_crop_strategy", "title": "Table 2: crop strategy",
            "columns": list(STRATEGIES), "data": f"synthetic benchmark ({n_scenes} scenes)",
            "masks": "oracle", "inpaint_weights": "telea (test stand-in)",
            "random_weights": False, "seed": seed, "n_images": n_scenes,
            "n_results": len(rows)}
    write_text_atomic(out / "run_info.json", json.dumps(info, indent=1) + "\n")
    return out


@pytest.fixture(scope="session")
def _smoke_template(tmp_path_factory):
    return build_smoke_output(tmp_path_factory.mktemp("smoke") / "table2")


@pytest.fixture()
def smoke_output(_smoke_template, tmp_path):
    """A fresh copy of the smoke output (9 results: 3 scenes x box/mask/dilated)."""
    return pathlib.Path(shutil.copytree(_smoke_template, tmp_path / "table2"))


@pytest.fixture(scope="session")
def _experiment_template(tmp_path_factory):
    """The real experiments/table2_crop_strategy.py on 2 tiny synthetic scenes (OpenCV Telea)."""
    import os
    import subprocess
    import sys

    repo = pathlib.Path(__file__).resolve().parents[2]
    out = tmp_path_factory.mktemp("experiment") / "table2"
    env = dict(os.environ, GONE_WEIGHTS_DIR=str(out.parent / "no_weights"),
               TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "experiments/table2_crop_strategy.py",
                           "--inpainter=telea", "--synth_scenes=2", "--synth_height=64",
                           "--synth_width=96", f"--output_dir={out}"],
                          cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return out


@pytest.fixture()
def experiment_output(_experiment_template, tmp_path):
    """A fresh copy of a real smoke run of experiments/table2_crop_strategy.py."""
    return pathlib.Path(shutil.copytree(_experiment_template, tmp_path / "table2_real"))
