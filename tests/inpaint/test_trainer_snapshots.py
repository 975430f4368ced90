"""`python -m inpaint.train`: epochs, epoch snapshots kept, --keep, temp files, resume, scalars.csv.

Tiny setup: 4 images of 64x64, batch 2, so one epoch = 2 generator steps; coarse pretraining
(no critic steps, as the original) keeps the two CLI runs cheap.
"""
import csv

import numpy as np
import pytest
import keras

from inpaint.config import InpaintConfig
from inpaint.trainer import InpaintTrainer

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

TINY = ["--set", "IMG_SHAPES=[64, 64, 3]", "--set", "HEIGHT=32", "--set", "WIDTH=32",
        "--set", "MAX_DELTA_HEIGHT=8", "--set", "MAX_DELTA_WIDTH=8", "--batch-size", "2", "--pretrain-coarse"]


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    from PIL import Image
    folder = tmp_path_factory.mktemp("tiny_train")
    rng = np.random.default_rng(1)
    for index in range(4):
        Image.fromarray(rng.integers(0, 255, (70, 90, 3), dtype=np.uint8)).save(folder / f"i{index}.png")
    return folder


def _scalar_steps(log_dir):
    with open(log_dir / "scalars.csv", newline="") as fh:
        return [int(r["step"]) for r in csv.DictReader(fh) if r["name"] == "losses/g_loss"]


def test_epochs_keep_resume_and_scalars(image_dir, tmp_path, capsys):
    from inpaint.train import main
    log = tmp_path / "log"
    log.mkdir()
    stale = log / ".snap-7.npz.abcd1234.tmp.npz"   # left by a killed run
    stale.write_bytes(b"half")
    args = ["--data", str(image_dir), "--log-dir", str(log), "--quiet", "--log-every", "1",
            "--snapshot-every", "1", "--keep", "1", *TINY]
    assert main(args + ["--epochs", "2"]) == 0
    assert not stale.exists()
    names = sorted(p.name for p in log.glob("*.npz"))
    # every epoch kept, only the newest step snapshot
    assert names == ["epoch-1.npz", "epoch-2.npz", "snap-4.npz"]
    assert _scalar_steps(log) == [1, 2, 3, 4]
    capsys.readouterr()

    # an interrupted run had logged step 5 after the last snapshot: the resumed run logs it once
    with open(log / "scalars.csv", "a") as fh:
        fh.write("5,losses/g_loss,123\n")
    assert main(args + ["--epochs", "3"]) == 0
    assert "resumed from step 4" in capsys.readouterr().out  # printed even with --quiet
    assert _scalar_steps(log) == [1, 2, 3, 4, 5, 6]
    assert sorted(p.name for p in log.glob("*.npz")) == ["epoch-1.npz", "epoch-2.npz", "epoch-3.npz",
                                                         "snap-6.npz"]
    from inpaint.checkpoint import load_native
    _, manifest = load_native(log / "epoch-2.npz")
    assert manifest["extra"]["step"] == 4 and manifest["extra"]["optimizer"] == "shared"


def test_initial_weights_follow_the_seed(tmp_path):
    config = InpaintConfig().override(dict(IMG_SHAPES=[64, 64, 3], HEIGHT=32, WIDTH=32, BATCH_SIZE=2))

    def weights(seed):
        trainer = InpaintTrainer(config, log_dir=tmp_path / str(seed), seed=seed, verbose=0)
        return [keras.ops.convert_to_numpy(v) for v in
                trainer.generator.trainable_variables[:2] + trainer.critics.trainable_variables[:1]]

    a, b, c = weights(0), weights(0), weights(1)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[2], c[2])
    assert np.all(a[1] == 0)  # zero biases

    # the original's single Adam by default; one Adam per network as an option
    separate = InpaintTrainer(config, log_dir=tmp_path / "sep", optimizer="separate", verbose=0)
    assert separate.g_optimizer is not separate.d_optimizer
    assert len(separate.g_optimizer.variables) == 2 + 2 * len(separate.generator.trainable_variables)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        InpaintTrainer(config, log_dir=tmp_path / "bad", optimizer="adamw", verbose=0)


def test_resume_skips_unreadable_snapshots_with_one_warning_each(image_dir, tmp_path, capsys):
    from inpaint.train import main
    log = tmp_path / "log"
    args = ["--data", str(image_dir), "--log-dir", str(log), "--quiet", "--log-every", "1",
            "--snapshot-every", "1", "--keep", "0", *TINY]
    assert main(args + ["--epochs", "1"]) == 0
    assert sorted(p.name for p in log.glob("snap-*.npz")) == ["snap-1.npz", "snap-2.npz"]
    capsys.readouterr()
    data = (log / "snap-2.npz").read_bytes()
    (log / "snap-2.npz").write_bytes(data[: len(data) // 2])          # truncated zip
    np.savez(log / "snap-3.npz", x=np.zeros(3))                        # a zip, but not a snapshot
    assert main(args + ["--epochs", "2"]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if "skipping unreadable snapshot" in line]
    assert len(warnings) == 2 and "Traceback" not in captured.err
    assert "snap-3.npz has no __manifest__ entry" in warnings[0]
    assert "snap-2.npz: unreadable native checkpoint (truncated or corrupt" in warnings[1]
    assert "resumed from step 1" in captured.out
    # the resumed run continued from step 1: steps 2..4 logged once each, snap-2 rewritten whole
    assert _scalar_steps(log) == [1, 2, 3, 4]
    from inpaint.checkpoint import load_native
    assert load_native(log / "snap-2.npz")[1]["extra"]["step"] == 2
