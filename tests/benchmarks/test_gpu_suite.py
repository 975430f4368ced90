"""The GPU benchmark suite's CPU smoke mode (``bash benchmarks/run_all.sh --smoke``) on JAX.

Runs the sections that fit the test budget: DeepFill inference in fp32 and bf16 and the torchvision
peer (or its skip), through the same driver, subprocess and table code as the full run. The Mask
R-CNN, training and end-to-end sections compile for 20-60 s each on 2 CPU cores: they are
smoke-run by hand (``bash benchmarks/run_all.sh --smoke``; the table goes to
outputs/benchmarks/gpu_suite_smoke.md, a kept copy is docs/benchmarks/gpu_suite_smoke.md)."""
import os
import pathlib
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def _rows(table):
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 9 and cells[0] not in ("section", "---"):
            rows[(cells[0], cells[1])] = cells
    return rows


@pytest.fixture
def default_table():
    """outputs/benchmarks/gpu_suite_smoke.md, the smoke run's default table; whatever was there
    before the test is put back after it."""
    path = REPO / "outputs" / "benchmarks" / "gpu_suite_smoke.md"
    before = path.read_bytes() if path.is_file() else None
    if before is not None:
        path.unlink()
    yield path
    if before is None:
        path.unlink(missing_ok=True)
    else:
        path.write_bytes(before)


def test_gpu_suite_smoke_writes_one_table(default_table):
    pytest.importorskip("jax", reason="the GPU suite runs on JAX (pip install -e '.[jax]')")
    tracked = REPO / "docs" / "benchmarks" / "gpu_suite_smoke.md"
    tracked_before = tracked.read_bytes()
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    proc = subprocess.run(["bash", str(REPO / "benchmarks" / "run_all.sh"), "--smoke", "--sections", "deepfill",
                           "peer"], capture_output=True, text=True, env=env, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert tracked.read_bytes() == tracked_before       # the kept page is not rewritten
    out = default_table                                  # no --out: outputs/benchmarks/ (git-ignored)
    assert subprocess.run(["git", "check-ignore", "-q", str(out)], cwd=REPO).returncode == 0
    table = out.read_text()
    assert table.startswith("# GPU benchmark suite (smoke run, CPU)") and "jax" in table
    rows = _rows(table)
    for key in [("deepfill", "64x64 batch 2, float32"), ("deepfill", "64x64 batch 2, bf16")]:
        assert float(rows[key][2]) > 0, rows[key]
        assert float(rows[key][5]) > 0           # sgemm-GFLOP beside the seconds
    peer = {k: v for k, v in rows.items() if k[0] == "peer"}
    try:
        import torchvision  # noqa: F401
    except ImportError:
        (only,) = peer.values()
        assert only[2] == "-" and only[8].startswith("skipped: No module named")
    else:
        assert float(peer[("peer", "torchvision R101-FPN, full-size masks, batch 1")][2]) > 0
    assert f"written to {out}" in proc.stdout
