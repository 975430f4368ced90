"""Experiment outputs for the labeling, make_table, notebook and browser tests, written by the
real experiment: experiments/table2_crop_strategy.py's `run` on its smoke configuration (tiny
synthetic scenes, oracle masks, OpenCV's Telea fill so no network is built), in process.

`smoke_output`: 3 scenes x box/mask/dilated (9 results to label).
`experiment_output`: 2 scenes x the four strategies of the script's default configuration.
"""
import pathlib
import shutil
import sys

import pytest

EXPERIMENTS = pathlib.Path(__file__).resolve().parents[2] / "experiments"


def run_table2(out, scenes, strategies=None, seed=0):
    """experiments/table2_crop_strategy.py's run() on `scenes` synthetic 64x96 scenes."""
    import importlib

    if str(EXPERIMENTS) not in sys.path:
        sys.path.insert(0, str(EXPERIMENTS))
    table2 = importlib.import_module("table2_crop_strategy")
    common = importlib.import_module("_common")
    cfg = table2.get_config("smoke")
    cfg["synth"]["scenes"] = scenes
    cfg.update(inpainter="telea", masks="oracle", seed=seed)
    if strategies:
        cfg["strategies"] = list(strategies)
    out = pathlib.Path(out)
    table2.run(cfg, common.Environment(output_dir=out, runs_dir=out / "runs", verbose=0))
    return out


@pytest.fixture(scope="session")
def _smoke_template(tmp_path_factory):
    return run_table2(tmp_path_factory.mktemp("smoke") / "table2", 3, ("box", "mask", "dilated"))


@pytest.fixture()
def smoke_output(_smoke_template, tmp_path):
    """A fresh copy of the smoke output (9 results: 3 scenes x box/mask/dilated)."""
    return pathlib.Path(shutil.copytree(_smoke_template, tmp_path / "table2"))


@pytest.fixture(scope="session")
def _experiment_template(tmp_path_factory):
    """experiments/table2_crop_strategy.py on 2 tiny synthetic scenes (OpenCV Telea)."""
    return run_table2(tmp_path_factory.mktemp("experiment") / "table2", 2)


@pytest.fixture()
def experiment_output(_experiment_template, tmp_path):
    """A fresh copy of the 2-scene run (8 results)."""
    return pathlib.Path(shutil.copytree(_experiment_template, tmp_path / "table2_real"))
