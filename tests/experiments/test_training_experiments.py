"""The paper's training experiments (Fig. 5, Tables 3-6, reproduce_paper.py) with --smoke.

Two `reproduce_paper.py --smoke` runs serve every test here, started side by side: an uninterrupted
one, whose outputs the per-script tests check, and one killed with SIGKILL in the middle of the
Train-40k run (two generator steps after its epoch-4 snapshot) and started again. The rerun must
resume from the snapshot, log the same losses as the killed process for the steps it had taken past
it, and end with the same tables, per-image results, sheets and scalars as the uninterrupted run.
"""
import csv
import json
import os
import re
import pathlib
import signal
import subprocess
import sys
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "experiments"
PAPER_COLUMNS = {
    "table5_epochs": ["epoch 4", "epoch 8", "epoch 12", "epoch 16", "Places2 baseline"],
    "table3_l1_weight": ["l1 weight 1.2", "l1 weight 2.0"],
    "table4_people": ["Train-2k", "Train-2k-no-people"],
    "fig5_learning_rate": ["lr 1e-05", "lr 1e-04", "lr 1e-03"],
}

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _env(out):
    env = dict(os.environ)
    env.setdefault("KERAS_BACKEND", "tensorflow")
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env["GONE_WEIGHTS_DIR"] = str(out / "no_weights")  # never pick up cached weights
    return env


@pytest.fixture(scope="module")
def paper(tmp_path_factory):
    """reproduce_paper.py --smoke uninterrupted and, beside it, killed -9 mid-training then rerun."""
    out, resumed = tmp_path_factory.mktemp("paper"), tmp_path_factory.mktemp("resumed")

    def command(folder):
        return [sys.executable, str(SCRIPTS / "reproduce_paper.py"), "--smoke", "--quiet", "--output_dir", str(folder)]

    log = open(out.parent / "uninterrupted.log", "w+")
    reference = subprocess.Popen(command(out), cwd=REPO, env=_env(out), stdout=log, stderr=subprocess.STDOUT)
    try:
        proc = subprocess.Popen(command(resumed), cwd=REPO, env=_env(resumed), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        run = resumed / "runs" / "train-40k"
        deadline = time.time() + 600
        while (not ((run / "epoch-4.npz").exists() and max((s for s, _ in _losses(run)), default=0) >= 6)
               and proc.poll() is None and time.time() < deadline):
            time.sleep(0.1)
        killed = proc.poll() is None
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert killed, "reproduce_paper.py ended before it could be killed"
        assert not (run / "DONE.json").exists()
        killed_losses = dict(_losses(run))
        rerun = subprocess.run(command(resumed), cwd=REPO, env=_env(resumed), capture_output=True, text=True,
                               timeout=900)
        assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
        assert reference.wait(timeout=900) == 0, (log.seek(0), log.read()[-3000:])[1]
    finally:
        if reference.poll() is None:
            reference.kill()
            reference.wait()
        log.close()
    return {"out": out, "resumed_out": resumed, "stdout": rerun.stdout, "killed_losses": killed_losses}


def _losses(run):
    """[(step, g_loss)] of the complete lines of a run's scalars.csv."""
    path = run / "scalars.csv"
    text = path.read_text() if path.is_file() else ""
    rows = csv.reader(text[:text.rfind("\n") + 1].splitlines()[1:])
    return [(int(r[0]), float(r[2])) for r in rows if len(r) == 3 and r[1] == "losses/g_loss"]


def _table_rows(path):
    return [line for line in path.read_text().splitlines() if line.startswith("|")]


def _header(path):
    return [c.strip() for c in _table_rows(path)[0].strip("|").split("|")][1:]


_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _result_files(out):
    """Relative paths of what the chain writes that must not depend on a kill: tables, per-image
    results, sheets and their keys, the index, eval records and every run's scalars.csv and DONE.json
    (not run_info*.json: time, paths, git; not the event files or the snapshots)."""
    names = set()
    for path in out.rglob("*"):
        rel = path.relative_to(out).as_posix()
        if not path.is_file() or path.name.startswith("run_info") or rel.startswith("no_weights/"):
            continue
        if rel.startswith("runs/"):
            if path.name in ("scalars.csv", "DONE.json"):
                names.add(rel)
        elif path.suffix in (".md", ".csv", ".json", ".png"):
            names.add(rel)
    return names


def _parsed(path, out):
    """(text with the output folder and the numbers blanked, [numbers]) of a text file."""
    text = path.read_text().replace(str(out), "<out>")
    return _NUMBER.sub("#", text), [float(n) for n in _NUMBER.findall(text)]


def test_killed_run_continues_as_the_uninterrupted_one(paper):
    resumed_from = re.search(r"run train-40k: resumed from step (\d+)", paper["stdout"])
    assert resumed_from, paper["stdout"][-2000:]
    out, resumed = paper["out"], paper["resumed_out"]
    before = paper["killed_losses"]
    rows = _losses(resumed / "runs" / "train-40k")
    assert [step for step, _ in rows] == list(range(1, 17))  # every step once
    after = dict(rows)
    assert max(before) > int(resumed_from.group(1))  # steps the killed process took past the snapshot
    assert {step: after[step] for step in before} == pytest.approx(before, rel=1e-6)
    # the whole chain ends as the uninterrupted run did
    files = _result_files(out)
    assert _result_files(resumed) == files
    assert {"table5_epochs/summary.md", "table5_epochs/table6.csv", "fig5_learning_rate/per_image.csv",
            "runs/train-40k/scalars.csv", "index.md"} <= files
    for rel in sorted(f for f in files if not f.endswith(".png")):
        (text, numbers), (text_resumed, numbers_resumed) = _parsed(out / rel, out), _parsed(resumed / rel, resumed)
        assert text_resumed == text, rel
        assert numbers_resumed == pytest.approx(numbers, rel=1e-6, abs=1e-12), rel


def test_tables_have_the_papers_columns(paper):
    out = paper["out"]
    for script, columns in PAPER_COLUMNS.items():
        table = out / script / "summary.md"
        assert _header(table) == columns, script
        rows = {r.split("|")[1].strip(): r for r in _table_rows(table)[2:]}
        assert {"good", "okay", "striped", "solid", "mean l1 in hole"} <= set(rows)
        assert "n/a" not in rows["mean l1 in hole"], script
    table6 = out / "table5_epochs" / "table6.md"
    assert _header(table6) == PAPER_COLUMNS["table5_epochs"]
    text = table6.read_text()
    assert "gradient norm (ours, gone.metrics)" in text and "gradient norm (paper scale, /255)" in text
    assert "0.000183" in text
    header3 = (out / "table3_l1_weight" / "summary.md").read_text().splitlines()[0]
    assert "L1_LOSS_ALPHA varied" in header3
    assert "RANDOM INPAINTING WEIGHTS" in (out / "table5_epochs" / "summary.md").read_text()


def test_sheets_are_blind_across_columns(paper):
    for script, columns in PAPER_COLUMNS.items():
        folder = paper["out"] / script
        results = list(csv.DictReader(open(folder / "per_image.csv", newline="")))
        assert {r["columns"] for r in results} == set(columns)  # what make_table.py groups by
        sheet = list(csv.DictReader(open(folder / "labeling_sheet.csv", newline="")))
        key = list(csv.DictReader(open(folder / "private" / "labeling_key.csv", newline="")))
        assert len(sheet) == len(results) == len(key) == 2 * len(columns)
        assert {r["column"] for r in key} == set(columns)
        text = (folder / "labeling_sheet.csv").read_text()
        for word in columns + ["epoch", "lr ", "npz", "runs", "Places2", "Train"]:
            assert word not in text, (script, word)
        for row in sheet:
            assert row["image_path"].startswith("to_label/") and (folder / row["image_path"]).is_file()


def test_run_info_records_the_whole_config(paper):
    sys.path.insert(0, str(SCRIPTS))
    import reproduce_paper
    import table4_people
    expected = json.loads(json.dumps(reproduce_paper.get_config("smoke")))
    assert set(table4_people.get_config("smoke")) < set(expected)  # the chain's config holds each script's
    for folder, script in ((paper["out"], "reproduce_paper"), (paper["out"] / "table4_people", "table4_people")):
        info = json.loads((folder / "run_info.json").read_text())
        assert info["script"] == script
        assert info["config"] == expected  # the stages record the config they ran under
        assert info["backend"] == os.environ.get("KERAS_BACKEND", "tensorflow")
        assert info["packages"]["keras"] and "git_commit" in info


def test_train40k_run_is_shared_and_keeps_its_epochs(paper):
    runs = paper["out"] / "runs"
    base = runs / "train-40k"
    assert sorted(p.name for p in base.glob("epoch-*.npz")) == sorted(
        f"epoch-{e}.npz" for e in (4, 8, 10, 12, 16))
    for name in ("table3-l1_loss_alpha-1.2", "table3-l1_loss_alpha-2.0", "table4-train-2k",
                 "table4-train-2k-no-people"):
        done = json.loads((runs / name / "DONE.json").read_text())
        assert done["init"] == str(base / "epoch-10.npz") and done["steps"] == 1  # smoke: 1 epoch of 1 step
    assert not list(base.glob(".*.tmp*"))


def test_fig5_curves_and_early_stopping(paper):
    folder = paper["out"] / "fig5_learning_rate"
    assert (folder / "learning_curves.png").stat().st_size > 1000
    assert (folder / "figure.png").is_file()
    info = json.loads((folder / "run_info.json").read_text())
    for column in PAPER_COLUMNS["fig5_learning_rate"]:
        assert 1 <= len(info["curves"][column]) <= 2  # one validation per epoch, at most 2 epochs
    lrs = {json.loads((paper["out"] / "runs" / f"fig5-lr-{lr}" / "DONE.json").read_text())["learning_rate"]
           for lr in ("1e-05", "1e-04", "1e-03")}
    assert lrs == {1e-5, 1e-4, 1e-3}


def test_coco_splits_feed_training_and_evaluation(tmp_path, monkeypatch):
    """COCO-format fixture: manifests + image root give the training paths and test samples."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("tiny_coco_fixture", REPO / "tests" / "data_prep" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    root = tmp_path / "coco"
    module.make_tiny_coco(root)
    monkeypatch.setenv("GONE_WEIGHTS_DIR", str(tmp_path / "no_weights"))
    from data_prep import coco_splits
    sizes = {"train-40k": 40, "train-2k": 12, "train-2k-no-people": 4, "val-100": 10,
             "val-100-no-large-crop": 8, "test-100-no-large-crop": 6}
    coco_splits.write_manifests(coco_splits.build_splits(root, sizes=sizes, progress=False), root / "gone_splits")
    sys.path.insert(0, str(SCRIPTS))
    import _training
    from inpaint.data import resolve_image_source
    cfg = _training.base_config("smoke")
    env = _training.Environment(output_dir=tmp_path / "out", runs_dir=tmp_path / "out" / "runs", coco_dir=str(root))
    splits = _training.prepare_splits(cfg, env, eval_splits=("test-100-no-large-crop",))
    assert len(splits.train["train-40k"]) == 40 and len(splits.train["train-2k-no-people"]) == 4
    assert all(pathlib.Path(p).is_file() for p in splits.train["train-40k"])
    assert len(splits.eval["test-100-no-large-crop"]) == 6
    # a training script end to end on the COCO fixture (tiny: 2 images, one step per run; the
    # uninterrupted reproduce_paper run above covers the epochs)
    import table4_people
    cfg = _training.apply_overrides(table4_people.get_config("smoke"), [
        "data.limit_train=2", "base_run.epochs=1", "base_run.table5_epochs=[1]", "base_run.from_epoch=1",
        "table4.epochs=1", "eval.limit=2"])
    table4_people.run(cfg, env)
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "- data: COCO" in summary and _header(tmp_path / "out" / "summary.md") == PAPER_COLUMNS["table4_people"]
    assert len(list(csv.DictReader(open(tmp_path / "out" / "labeling_sheet.csv", newline="")))) == 4
    # the CLI's manifests take the image root too (--coco_dir)
    paths = resolve_image_source(str(root / "gone_splits" / "val-100-no-large-crop.json"), coco_dir=str(root))
    assert len(paths) == 8 and all(pathlib.Path(p).parent == root / "val2014" for p in paths)
