"""Fixtures of the LaMa tests: the golden data of ../shared/reference/lama and the full-size
big-lama random weights, made once per test session by the reference's numpy-only make_weights.py."""
import subprocess
import sys

import numpy as np
import pytest


@pytest.fixture(scope="session")
def lama_reference_dir(reference_dir):
    d = reference_dir / "lama"
    if not d.is_dir():
        pytest.skip(f"{d} is missing")
    return d


@pytest.fixture(scope="session")
def lama_full_weights(lama_reference_dir, tmp_path_factory):
    """big-lama random weights (989 tensors, 204 MB) as make_weights.py --npz writes them."""
    out = tmp_path_factory.mktemp("lama_weights") / "big_lama_random_weights.npz"
    run = subprocess.run([sys.executable, str(lama_reference_dir / "make_weights.py"),
                          str(lama_reference_dir / "variables.txt"), "--npz", str(out)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 mismatches" in run.stdout
    return out


def nhwc(a):
    return np.transpose(a, (0, 2, 3, 1))
