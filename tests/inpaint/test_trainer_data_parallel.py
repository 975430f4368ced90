"""Data-parallel training on 2 virtual CPU devices: one global batch gives the single-device loss.

Each backend runs in a fresh process (the device count is fixed when the backend starts):
`data_parallel_check.py` takes one critic and one generator step of the same global batch of 2
with and without `distribution="data_parallel"` (JAX: keras.distribution.DataParallel; TensorFlow:
MirroredStrategy) from the same seeded weights. JAX (the backend of the GPU runs) checks both
steps; TensorFlow the generator step only (each traced step costs ~10 s on 2 CPU cores).
"""
import json
import os
import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent


@pytest.mark.parametrize("backend, steps, losses", [("jax", [], ("d_loss", "g_loss")),
                                                     ("tensorflow", ["generator-only"], ("g_loss",))])
def test_global_batch_loss_equals_single_device(backend, steps, losses):
    pytest.importorskip(backend)  # a missing optional backend skips; our own modules are imported inside
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(HERE.parents[1]))
    proc = subprocess.run([sys.executable, str(HERE / "data_parallel_check.py"), backend, *steps], capture_output=True,
                          text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    assert result["devices"] == 2 and result["replicas"] == 2
    assert {k for k in result if k.endswith(("_single", "_data_parallel"))} == {
        f"{loss}_{run}" for loss in losses for run in ("single", "data_parallel")}
    for loss in losses:
        assert result[f"{loss}_data_parallel"] == pytest.approx(result[f"{loss}_single"], rel=1e-5), loss
    assert result["fraction_weights_differing"] < 0.01  # the same Adam updates (steps ~1e-4)
