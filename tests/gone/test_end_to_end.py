"""The real pipeline: Mask R-CNN (COCO R101 with the reference's synthetic weights, published
.h5 layout) + DeepFill v1 (Yu's release-format checkpoint) on small synthetic scenes, through the
Python API and the `gone remove` CLI. The fills are meaningless (the weights are not trained on
photos); the tests check that the scene's person is detected, that its hole is inpainted (pixels
changed inside it, none outside), and the bookkeeping. The models are built once (about 7 s per
detection)."""
import numpy as np
import pytest
from PIL import Image

# TensorFlow only: the wiring is backend-neutral and both models are golden-tested on JAX too
# (tests/mrcnn/test_full_model_reference.py, tests/inpaint/test_generator_reference.py); ~80 s
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_cli_remover(mrcnn_reference_weights, deepfill_release_ckpt):
    from gone import cli
    # built exactly as `gone remove` builds it; random detections have arbitrary classes,
    # so every class and score is selected to get holes
    args = cli.build_parser().parse_args(
        ["remove", "x.png", "-o", "out", "--classes", "all", "--min-score", "0", "--strategy", "dilated",
         "--dilation", "3", "--mrcnn-weights", str(mrcnn_reference_weights),
         "--inpaint-checkpoint", str(deepfill_release_ckpt)])
    remover = cli.build_remover(args)
    assert str(deepfill_release_ckpt) in remover.inpainter.weights_source
    return remover


def test_api_bookkeeping(real_cli_remover, make_scene):
    img = make_scene(h=120, w=160, people=((30, 40, 100, 70),))
    (res,) = real_cli_remover.remove([img])
    d = res.detections
    n = len(d["class_ids"])
    assert d["rois"].shape == (n, 4) and d["masks"].shape == (120, 160, n) and d["masks"].dtype == bool
    from gone.masks import hole_mask
    np.testing.assert_array_equal(res.hole_mask, hole_mask(d, img.shape, "dilated", 3, classes=None))
    assert res.large_crop_fraction == pytest.approx(res.hole_mask.mean())
    assert res.output.shape == img.shape and res.output.dtype == np.uint8
    # something was detected and inpainted: a hole, filled with new pixels, nothing else touched
    assert n >= 1 and res.hole_mask.any()
    assert res.status == "inpainted"
    np.testing.assert_array_equal(res.output[~res.hole_mask], img[~res.hole_mask])
    changed = np.any(res.output != img, axis=-1)
    assert changed[res.hole_mask].mean() > 0.5


def test_cli_on_synthetic_scenes(real_cli_remover, mrcnn_reference_weights, deepfill_release_ckpt, tmp_path,
                                 monkeypatch, capsys):
    from data_prep import synth
    from gone import cli, options
    ann = synth.generate(tmp_path / "synth", n_scenes=2, seed=0, height=96, width=128, progress=False)
    images = sorted((ann.parent / "images").iterdir())
    assert len(images) == 2
    monkeypatch.setattr(options, "build_remover", lambda args, setup=None: real_cli_remover)
    out = tmp_path / "out"
    rc = cli.main(["remove", str(ann.parent / "images"), "-o", str(out), "--save-masks", "-q",
                   "--classes", "all", "--min-score", "0", "--mrcnn-weights", str(mrcnn_reference_weights),
                   "--inpaint-checkpoint", str(deepfill_release_ckpt)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "0 failed" in captured.out
    filled = []   # per image with a hole: the fraction of its pixels the fill changed
    for src in images:
        res = out / src.name
        mask = out / f"{src.stem}_mask.png"
        assert res.is_file() and mask.is_file()
        a = np.asarray(Image.open(src).convert("RGB"))
        b = np.asarray(Image.open(res).convert("RGB"))
        hole = np.asarray(Image.open(mask)) == 255
        assert a.shape == b.shape and hole.shape == a.shape[:2]
        np.testing.assert_array_equal(b[~hole], a[~hole])
        if hole.any():
            filled.append(np.any(b != a, axis=-1)[hole].mean())
    assert len(filled) >= 1 and min(filled) > 0.5   # something was detected and inpainted
