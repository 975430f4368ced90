"""Figures 3 (examples of each label) and 7 (error samples by tag) from exported labels."""
import csv
import importlib
import pathlib
import sys

import pytest

from gone import labeling
from gone.labeling import app as label_app

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def scripts():
    sys.path.insert(0, str(REPO / "experiments"))
    yield importlib.import_module("fig3_label_examples"), importlib.import_module(
        "fig7_error_samples")
    sys.path.remove(str(REPO / "experiments"))


def _run(module, capsys, *args):
    module.FLAGS.unparse_flags()
    rc = module.main(module.FLAGS(["script.py", *args]))
    return rc, capsys.readouterr()


@pytest.fixture()
def labeled(smoke_output):
    state = label_app.Labeler([smoke_output], warn=lambda m: None)
    items = sorted(state.items.values(), key=lambda it: it.result_id)
    plan = {}   # result_id -> (alice label, bob label, alice tags, bob tags)
    for i, it in enumerate(items):
        a = labeling.LABELS[i % 4]
        b = a if i % 3 else labeling.LABELS[(i + 1) % 4]
        ta = ["limbs"] if i in (0, 1, 2) else []
        tb = ["limbs", "shadows"] if i in (1, 2) else (["person_infill"] if i == 5 else [])
        plan[it.result_id] = (a, b, ta, tb)
        state.put("alice", it, a, ta)
        state.put("bob", it, b, tb)
    assert label_app.export([smoke_output], out=lambda m: None) == 0
    return smoke_output, plan


def test_figure3_shows_the_most_agreed_results_of_each_label(scripts, capsys, labeled):
    out, plan = labeled
    rc, cap = _run(scripts[0], capsys, f"--output_dir={out}", "--examples=2")
    assert rc == 0, cap.err
    png = out / "figure3_label_examples.png"
    assert png.read_bytes()[:4] == b"\x89PNG"
    rows = list(csv.DictReader(open(out / "figure3_label_examples.csv")))
    for label in labeling.LABELS:
        mine = [r for r in rows if r["label"] == label]
        expect = sorted((-([a, b].count(label) / 2), rid) for rid, (a, b, _, _) in plan.items()
                        if labeling.majority_label([a, b]) == label)[:2]
        assert [r["result_id"] for r in mine] == [rid for _, rid in expect], label
        for r in mine:
            assert (out / r["path"]).is_file()
    assert "good:" in cap.out


def test_figure7_groups_error_samples_by_tag(scripts, capsys, labeled):
    out, plan = labeled
    rc, cap = _run(scripts[1], capsys, f"--output_dir={out}", "--examples=3")
    assert rc == 0, cap.err
    assert (out / "figure7_error_samples.png").read_bytes()[:4] == b"\x89PNG"
    rows = list(csv.DictReader(open(out / "figure7_error_samples.csv")))
    by_tag = {t: [r for r in rows if r["tag"] == t] for t in label_app.TAGS}
    ids = sorted(plan)
    # limbs: results 1 and 2 were tagged by both raters, result 0 by one.
    assert [r["raters_tagging"] for r in by_tag["limbs"]] == ["2", "2", "1"]
    assert {r["result_id"] for r in by_tag["limbs"][:2]} == {ids[1], ids[2]}
    assert by_tag["limbs"][2]["result_id"] == ids[0]
    assert [r["result_id"] for r in by_tag["shadows"]] == sorted([ids[1], ids[2]], key=lambda x: (
        -labeling.LABELS.index(labeling.majority_label(plan[x][:2])), x))
    assert [r["result_id"] for r in by_tag["person_infill"]] == [ids[5]]
    assert by_tag["held_objects"] == []
    assert "held object left: 0 result(s) tagged" in cap.out


def test_figures_need_labels(scripts, capsys, smoke_output):
    for module in scripts:
        rc, cap = _run(module, capsys, f"--output_dir={smoke_output}")
        assert rc == 2 and "no labeling sheet matches" in cap.err and "Traceback" not in cap.err
