"""data_prep.subject_scenes: deterministic scenes with a designated subject, and the subject-rule
benchmark's table on a few of them."""
import importlib.util
import pathlib

import numpy as np

from data_prep.subject_scenes import KINDS, make_subject_scene

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_scenes_are_deterministic_and_truth_follows_the_kind():
    a, b = make_subject_scene(3, 7), make_subject_scene(3, 7)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.person_masks, b.person_masks)
    kinds = set()
    for i in range(40):
        s = make_subject_scene(0, i, 96, 128)
        kinds.add(s.kind)
        assert s.image.shape == (96, 128, 3) and s.person_masks.shape[:2] == (96, 128)
        assert s.person_masks.shape[-1] == len(s.truth) >= 1
        assert s.person_masks.reshape(-1, len(s.truth)).any(axis=0).all()      # every person visible
        assert (s.person_masks.sum(-1) <= 1).all()                              # visible pixels only
        assert s.truth.any() == (s.kind == "subject")
        if s.kind == "subject":
            assert s.truth[0]                                                   # the designated one
    assert kinds == {k for k, _ in KINDS}


def test_benchmark_table(tmp_path):
    spec = importlib.util.spec_from_file_location("subject_rule", REPO / "benchmarks" / "subject_rule.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--n_scenes", "12", "--out", str(tmp_path / "t.md")]) == 0
    counts = bench.measure(12)
    assert sum(n for _, n in counts["kinds"].values()) == 12
    text = (tmp_path / "t.md").read_text()
    assert text == bench.table(counts, 12, 0)
    tp, fp = counts["tp"], counts["fp"]
    assert f"| precision of kept | {tp / (tp + fp):.3f} |" in text
