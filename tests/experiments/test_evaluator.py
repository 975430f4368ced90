"""experiments/_common.evaluate: every table's images go through gone.pipeline.PeopleRemover.remove
(the procedure of `gone remove`), the detector runs once per image however many strategies ask,
and the holes written are the remover's own."""
import importlib
import pathlib
import sys

import numpy as np
import pytest

from gone.io import read_image, read_mask
from gone.pipeline import PeopleRemover

EXPERIMENTS = pathlib.Path(__file__).resolve().parents[2] / "experiments"
STRATEGIES = ["box", "mask", "dilated", "traces"]


@pytest.fixture(scope="module")
def common():
    if str(EXPERIMENTS) not in sys.path:
        sys.path.insert(0, str(EXPERIMENTS))
    return importlib.import_module("_common")


def test_tables_remove_through_people_remover_with_one_detection_per_image(common, tmp_path,
                                                                           monkeypatch):
    cfg = common.eval_config("smoke")
    cfg["synth"]["scenes"] = 2
    cfg["min_score"] = 0.5
    env = common.Environment(output_dir=tmp_path, runs_dir=tmp_path / "runs", verbose=0)
    data = common.load_data(cfg, env, ["test"], ["synthetic"])
    oracle = common.OracleDetector(data.samples)

    class CountingDetector:   # stands in for Mask R-CNN: the ground truth, counted
        images = 0

        def detect(self, images, verbose=0):
            CountingDetector.images += len(images)
            return oracle.detect(images)

    calls = []
    real_remove = PeopleRemover.remove

    def remove(self, images, hole_masks=None):
        calls.append((self.strategy, self.min_score, hole_masks))
        return real_remove(self, images, hole_masks)

    monkeypatch.setattr(PeopleRemover, "remove", remove)
    from gone.inpainters import make_inpainter

    models = common.Models(make_inpainter("telea"), "telea", CountingDetector(), "model", "fake.h5")
    rows = common.evaluate(data, STRATEGIES, models, cfg, tmp_path, verbose=0)

    assert CountingDetector.images == 2                      # once per image, four strategies
    assert sorted(calls) == sorted((s, 0.5, None) for s in STRATEGIES for _ in range(2))
    assert len(rows) == 8 and {r["status"] for r in rows} == {"inpainted"}
    for row in rows:   # the hole written is the one gone remove would make from the detections
        sample = next(s for s in data.samples if s.name == row["image"])
        remover = PeopleRemover(strategy=row["strategy"], min_score=0.5)
        expected = remover.hole_for(oracle.detect([sample.image])[0], sample.image.shape,
                                    image=sample.image)
        hole = read_mask(tmp_path / row["hole_path"])
        np.testing.assert_array_equal(hole, expected)
        result = read_image(tmp_path / row["result_path"])
        np.testing.assert_array_equal(result[~hole], sample.image[~hole])
        assert np.any(result[hole] != sample.image[hole])


def test_the_oracle_detector_knows_only_its_samples(common, tmp_path):
    cfg = common.eval_config("smoke")
    cfg["synth"]["scenes"] = 1
    env = common.Environment(output_dir=tmp_path, runs_dir=tmp_path / "runs", verbose=0)
    data = common.load_data(cfg, env, ["test"], ["synthetic"])
    oracle = common.OracleDetector(data.samples)
    (det,) = oracle.detect([data.samples[0].image.copy()])
    assert det["masks"].shape[:2] == data.samples[0].image.shape[:2]
    assert (det["class_ids"] == 1).sum() == data.samples[0].person_masks.shape[-1]
    with pytest.raises(common.ExperimentError, match="no ground truth"):
        oracle.detect([np.zeros((8, 8, 3), np.uint8)])


def test_training_tables_fill_through_people_remover_not_model_inpaint(common, tmp_path,
                                                                        monkeypatch):
    training = importlib.import_module("_training")
    from inpaint.model import InpaintModel

    cfg = training.base_config("smoke")
    env = common.Environment(output_dir=tmp_path, runs_dir=tmp_path / "runs", verbose=0)
    data = common.load_data({**common.eval_config("smoke"), "synth": {"scenes": 1, "height": 64,
                                                                      "width": 64}},
                            env, ["test"], ["synthetic"])
    calls = []
    real_remove = PeopleRemover.remove

    def remove(self, images, hole_masks=None):
        calls.append((self.strategy, hole_masks, type(self.inpainter).__name__))
        return real_remove(self, images, hole_masks)

    def no_inpaint(*args, **kwargs):
        raise AssertionError("InpaintModel.inpaint called directly")

    monkeypatch.setattr(PeopleRemover, "remove", remove)
    monkeypatch.setattr(InpaintModel, "inpaint", no_inpaint)
    monkeypatch.setattr(InpaintModel, "inpaint_batch", no_inpaint)
    rows = training.evaluate_columns(tmp_path / "eval", "t", {"random": None}, data.samples, cfg)
    assert calls == [("dilated", None, "InpaintModel")]
    (row,) = rows
    sample = data.samples[0]
    hole = read_mask(tmp_path / "eval" / "images" / sample.name / "hole.png")
    expected = PeopleRemover(strategy="dilated").hole_for(
        common.oracle_detections(sample, held_objects=False), sample.image.shape)
    np.testing.assert_array_equal(hole, expected)
    assert row["hole_fraction"] == pytest.approx(hole.mean())
