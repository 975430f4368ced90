"""Smoke runs of the experiment scripts on tiny inputs (subprocess, --limit 2, tiny sizes)."""
import csv
import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "experiments"


def _run(script, *args, timeout=300):
    env = dict(os.environ)
    env.setdefault("KERAS_BACKEND", "tensorflow")
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env["GONE_WEIGHTS_DIR"] = str(pathlib.Path(args[args.index("--output_dir") + 1])
                                  / "no_weights")     # never pick up cached weights here
    proc = subprocess.run([sys.executable, str(SCRIPTS / script), *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO, env=env)
    return proc


def _fill_sheet(sheet, dest, labels):
    rows = list(csv.DictReader(open(sheet, newline="")))
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for i, r in enumerate(rows):
            w.writerow({**r, "label": labels[i % len(labels)]})
    return rows


def test_table2_smoke_then_make_table(tmp_path):
    # No flags, no weights: PatchMatch fills (never random weights), four strategies.
    out = tmp_path / "t2"
    proc = _run("table2_crop_strategy.py", "--smoke", "--limit", "2", "--output_dir", str(out))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "RANDOM" not in proc.stdout + proc.stderr
    assert "inpainter: PatchMatch (no DeepFill checkpoint found)" in proc.stdout
    assert str(out / "per_image.csv") in proc.stdout          # says where the outputs are
    rows = list(csv.DictReader(open(out / "per_image.csv")))
    strategies = ("box", "mask", "dilated", "traces")
    assert len(rows) == 8 and {r["strategy"] for r in rows} == set(strategies)
    for r in rows:
        assert r["masks"] == "oracle" and r["inpaint_weights"] == "patchmatch"
        assert float(r["psnr"]) > 0 and r["gradient_norm"] != ""
        for key in ("original_path", "hole_path", "result_path"):
            assert (out / r[key]).is_file()
    # Box holes contain mask holes, which the dilated holes contain, which traces contain.
    by = {(r["image"], r["strategy"]): float(r["large_crop_fraction"]) for r in rows}
    for image in {r["image"] for r in rows}:
        assert by[(image, "box")] >= by[(image, "mask")]
        assert by[(image, "traces")] >= by[(image, "dilated")] >= by[(image, "mask")]
    assert (out / "figure.png").is_file()
    summary = (out / "summary.md").read_text()
    assert "RANDOM" not in summary
    table = [line for line in summary.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| column | removal PSNR (dB) | removal SSIM |")
    assert [line.split(" | ")[0][2:] for line in table[1:]] == list(strategies)
    assert all(line.split(" | ")[4] == "2" and line.split(" | ")[5] == "2" for line in table[1:])
    assert "**large crop**: rows whose hole covers more than 50 % of the image" in summary
    sheet_text = (out / "labeling_sheet.csv").read_text()
    assert not any(s in sheet_text for s in strategies)   # blind
    sheet_rows = _fill_sheet(out / "labeling_sheet.csv", out / "labels" / "alice.csv",
                             ["good", "okay", "solid"])
    for r in sheet_rows:
        assert (out / r["image_path"]).is_file()
    _fill_sheet(out / "labeling_sheet.csv", out / "labels" / "bob.csv", ["good"])
    proc = _run("make_table.py", "--output_dir", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = (out / "table.md").read_text()
    assert "RANDOM INPAINTING WEIGHTS" not in table and "Fleiss' kappa" in table
    counts = list(csv.reader(open(out / "table.csv")))
    assert counts[0] == ["label", *strategies]
    assert sum(int(x) for row in counts[1:5] for x in row[1:]) == 8


def _tiny_coco_module():
    spec = importlib.util.spec_from_file_location(
        "tiny_coco_fixture", REPO / "tests" / "data_prep" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_table1_smoke_on_tiny_coco(tmp_path, request):
    # With the golden DeepFill checkpoint when present (exercises --inpaint_checkpoint), else
    # with random DeepFill weights, which must be asked for and are then said loudly.
    try:
        checkpoint = request.getfixturevalue("deepfill_release_ckpt")
    except pytest.skip.Exception:
        checkpoint = None
    root = tmp_path / "coco"
    _tiny_coco_module().make_tiny_coco(root)
    from data_prep import coco_splits

    sizes = {"train-40k": 40, "train-2k": 12, "train-2k-no-people": 4, "val-100": 10,
             "val-100-no-large-crop": 8, "test-100-no-large-crop": 6}
    coco_splits.write_manifests(coco_splits.build_splits(root, sizes=sizes, progress=False),
                                root / "gone_splits")
    out = tmp_path / "t1"
    extra = (["--inpaint_checkpoint", str(checkpoint)] if checkpoint
             else ["--inpainter", "deepfill-random"])
    proc = _run("table1_large_crop.py", "--coco_dir", str(root), "--limit", "2",
                "--masks", "oracle", "--output_dir", str(out), *extra)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert ("RANDOM INPAINTING WEIGHTS" in proc.stdout) == (checkpoint is None)
    rows = list(csv.DictReader(open(out / "per_image.csv")))
    val = json.loads((root / "gone_splits" / "val-100.json").read_text())
    nl = json.loads((root / "gone_splits" / "val-100-no-large-crop.json").read_text())
    expected = {im["file_name"][:-4] for im in val["images"][:2] + nl["images"][:2]}
    assert {r["image"] for r in rows} == expected
    for r in rows:
        assert r["strategy"] == "mask" and r["psnr"] == ""      # no ground truth on COCO
        assert (r["inpaint_weights"] == "random") == (checkpoint is None)
        if "val-100-no-large-crop" in r["columns"].split("|"):
            assert r["is_large_crop"] == "0"
    key = list(csv.DictReader(open(out / "private" / "labeling_key.csv")))
    assert {k["column"] for k in key} <= {"val-100", "val-100-no-large-crop"}
    info = json.loads((out / "run_info.json").read_text())
    assert info["columns"] == ["val-100", "val-100-no-large-crop"]


def test_scripts_give_clear_errors(tmp_path):
    proc = _run("table2_crop_strategy.py", "--coco_dir", str(tmp_path / "missing"),
                "--output_dir", str(tmp_path / "o"), "--masks", "oracle")
    assert proc.returncode == 2
    assert "COCO root not found" in proc.stderr or "not found" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = _run("table2_crop_strategy.py", "--masks", "model", "--output_dir",
                str(tmp_path / "o2"))
    assert proc.returncode == 2 and "--masks=model needs Mask R-CNN weights" in proc.stderr
    proc = _run("make_table.py", "--output_dir", str(tmp_path / "o3"))
    assert proc.returncode == 2 and "no labeling sheet" in proc.stderr


def test_table2_on_paste_back_benchmark_dir(tmp_path):
    root = tmp_path / "coco"
    _tiny_coco_module().make_tiny_coco(root)
    from data_prep import paste_back

    bench = paste_back.build_paste_back(root, tmp_path / "pb", n_images=2, seed=0,
                                        progress=False).parent
    out = tmp_path / "t2pb"
    proc = _run("table2_crop_strategy.py", "--benchmark_dir", str(bench), "--output_dir",
                str(out), "--masks", "oracle", "--set", "figure_rows=1")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    rows = list(csv.DictReader(open(out / "per_image.csv")))
    assert {r["image"] for r in rows} == {"pb_00000", "pb_00001"}
    for r in rows:   # ground truth exists: PSNR/SSIM filled, in the hole too
        assert r["status"] == "inpainted"
        assert float(r["psnr"]) > 0 and float(r["psnr_hole"]) > 0 and float(r["ssim"]) <= 1
    assert "benchmark" in json.loads((out / "run_info.json").read_text())["data"]


def test_table2_hole_without_context_is_reported_and_kept_out_of_the_labeling_set(tmp_path):
    """synth_00008's box covers the whole image: PatchMatch has nothing to copy, so the pipeline's
    documented fallback fills it; per_image.csv and summary.md say so and the labeling sheet
    leaves that result out (its fill is not the inpainter's)."""
    out = tmp_path / "t2"
    proc = _run("table2_crop_strategy.py", "--set", "synth.scenes=9", "--set", 'strategies=["box"]',
                "--output_dir", str(out), "--quiet")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "warning: synth_00008 box: the hole covers the whole image, nothing to fill from" in proc.stdout
    rows = {r["image"]: r for r in csv.DictReader(open(out / "per_image.csv"))}
    assert [n for n, r in rows.items() if r["fallback"] == "1"] == ["synth_00008"]
    assert rows["synth_00008"]["status"] == "inpainted" and float(rows["synth_00008"]["psnr"]) > 10
    box = next(line for line in (out / "summary.md").read_text().splitlines() if line.startswith("| box |"))
    assert box.split(" | ")[6:8] == ["9", "1"]          # inpainted, fallback fill
    key = list(csv.DictReader(open(out / "private" / "labeling_key.csv")))
    assert len(key) == 8 and "synth_00008" not in {k["image"] for k in key}
