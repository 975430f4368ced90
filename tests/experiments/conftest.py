"""Experiment outputs for the labeling, make_table, notebook and browser tests, written by the
real experiment: experiments/table2_crop_strategy.py's `run` on its smoke configuration (tiny
synthetic scenes, oracle masks, OpenCV's Telea fill so no network is built), in process.

`smoke_output`: 3 scenes x box/mask/dilated (9 results to label).
`experiment_output`: 2 scenes x the four strategies of the script's default configuration.
"""
import os
import pathlib
import shutil
import subprocess
import sys
import threading

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
def result_codes(_smoke_template):
    """{code: result id} of the smoke output's labeling key: code = image letter (a, b, c in name
    order) + column number (1 box, 2 mask, 3 dilated), so tests can write labels by hand."""
    from gone import labeling

    key = labeling.read_key(_smoke_template / "private" / "labeling_key.csv")
    pairs = {pair: rid for rid, entries in key.items() for pair in entries}
    images = sorted({image for image, _ in pairs})
    return {f"{'abc'[i]}{k + 1}": pairs[(image, column)] for i, image in enumerate(images)
            for k, column in enumerate(("box", "mask", "dilated"))}


@pytest.fixture(scope="session")
def _experiment_template(tmp_path_factory):
    """experiments/table2_crop_strategy.py on 2 tiny synthetic scenes (OpenCV Telea)."""
    return run_table2(tmp_path_factory.mktemp("experiment") / "table2", 2)


@pytest.fixture()
def experiment_output(_experiment_template, tmp_path):
    """A fresh copy of the 2-scene run (8 results)."""
    return pathlib.Path(shutil.copytree(_experiment_template, tmp_path / "table2_real"))


@pytest.fixture()
def label_server():
    """Starts `gone label` servers (`label_server(folder, log_path)` -> (process, URL)) and kills
    the ones still running at the end of the test."""
    started = []

    def start(folder, log_path):
        proc, url = _start_label_server(folder, log_path)
        started.append(proc)
        return proc, url

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def _start_label_server(folder, log_path, timeout=60):
    """`python -m gone label <folder> --port 0` in a subprocess; returns (process, base URL) once
    the server says where it serves (the event is its "serving on" line, read from its output as
    it comes; everything it prints goes to `log_path`)."""
    repo = EXPERIMENTS.parent
    proc = subprocess.Popen([sys.executable, "-m", "gone", "label", str(folder), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=repo,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    found, url, lines = threading.Event(), [], []

    def read():   # drains the pipe for the server's whole life (a full pipe would block it)
        with open(log_path, "a") as log:
            for line in proc.stdout:
                log.write(line)
                log.flush()
                lines.append(line)
                if not url and "serving on http://" in line:
                    url.append(line.split("serving on ")[1].split()[0].rstrip("/"))
                    found.set()
        found.set()   # the server ended

    threading.Thread(target=read, daemon=True).start()
    if not found.wait(timeout) or not url:
        proc.kill()
        proc.wait(30)
        raise AssertionError("the label server did not start: " + "".join(lines)[-2000:])
    return proc, url[0]
