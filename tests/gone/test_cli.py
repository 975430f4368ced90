import pathlib

import numpy as np
import pytest
from PIL import Image

from gone import cli, models
from gone.outputs import MANIFEST_NAME, plan_output_stems
from gone.pipeline import PeopleRemover


def _listing(folder):
    """File names in ``folder`` except the output manifest."""
    return sorted(p.name for p in pathlib.Path(folder).iterdir() if p.name != MANIFEST_NAME)

pytestmark = pytest.mark.jax  # fakes only: no Keras


@pytest.fixture
def photo_folder(tmp_path, make_scene):
    d = tmp_path / "in"
    d.mkdir()
    Image.fromarray(make_scene()).save(d / "person.png")
    (d / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a full jpeg")
    gray = make_scene()[..., 1].copy()
    gray[20:60, 30:50] = 0
    Image.fromarray(gray, "L").save(d / "gray.png")
    rgba = np.dstack([make_scene(), np.full((96, 128), 255, np.uint8)])
    rgba[:10, :10, 3] = 0
    Image.fromarray(rgba, "RGBA").save(d / "rgba.png")
    Image.fromarray(make_scene(people=())).save(d / "empty.jpg", quality=95)
    (d / "notes.txt").write_text("not an image, ignored by folder expansion")
    return d


@pytest.mark.parametrize("batch_size", ["1", "3"])
def test_folder_with_bad_file(photo_folder, tmp_path, fake_models, capsys, batch_size):
    out = tmp_path / "out"
    rc = cli.main(["remove", str(photo_folder), "-o", str(out), "--save-masks", "-q", "--batch-size", batch_size])
    captured = capsys.readouterr()
    assert rc == 1
    assert "corrupt.jpg" in captured.err and "error" in captured.err
    assert "Traceback" not in captured.err
    names = _listing(out)
    assert names == ["empty.jpg", "empty_mask.png", "gray.png", "gray_mask.png", "person.png",
                     "person_mask.png", "rgba.png", "rgba_mask.png"]
    assert "2 inpainted" in captured.out and "2 nothing to remove" in captured.out and "1 failed" in captured.out
    # person removed, pixels outside the saved hole identical to the input
    src = np.asarray(Image.open(photo_folder / "person.png"))
    res = np.asarray(Image.open(out / "person.png"))
    hole = np.asarray(Image.open(out / "person_mask.png")) == 255
    assert hole.any() and res.shape == src.shape
    np.testing.assert_array_equal(res[~hole], src[~hole])
    # nothing to remove: the original bytes are kept
    assert (out / "empty.jpg").read_bytes() == (photo_folder / "empty.jpg").read_bytes()
    rgba_out = np.asarray(Image.open(out / "rgba.png"))
    assert rgba_out.shape == (96, 128, 3)                                  # alpha composited away
    assert (rgba_out[:10, :10] == 255).all()                               # transparent -> white
    assert (np.asarray(Image.open(out / "rgba_mask.png")) == 255).any()   # its person was removed
    assert np.asarray(Image.open(out / "gray_mask.png")).max() == 0


def test_overwrite_glob_and_exit_codes(photo_folder, tmp_path, fake_models, capsys):
    out = tmp_path / "out"
    pattern = str(photo_folder / "p*.png")
    assert cli.main(["remove", pattern, "-o", str(out), "-q"]) == 0
    first = (out / "person.png").stat().st_mtime_ns
    assert cli.main(["remove", pattern, "-o", str(out), "-q"]) == 0
    assert "exists" in capsys.readouterr().err
    assert (out / "person.png").stat().st_mtime_ns == first
    assert cli.main(["remove", pattern, "-o", str(out), "-q", "--overwrite", "--strategy", "box"]) == 0
    assert fake_models[-1].strategy == "box"
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [MANIFEST_NAME]   # no temp files
    # usage errors
    assert cli.main(["remove", str(tmp_path / "missing*.png"), "-o", str(out)]) == 2
    assert cli.main(["remove", pattern, "-o", str(out), "--dilation", "huge"]) == 2
    assert cli.main(["remove", pattern, "-o", str(out), "--classes", "unicorn"]) == 2
    assert cli.main(["remove", pattern, "-o", str(out), "--strategy", "blur"]) == 2
    assert cli.main([]) == 2
    err = capsys.readouterr().err
    assert "invalid dilation" in err and "unknown class" in err


def test_min_score_is_set_on_the_detector_config(tmp_path, make_scene, fake_leaves, capsys):
    """`gone remove --min-score 0.3` builds the detector with DETECTION_MIN_CONFIDENCE 0.3 (the real
    build_remover and load_detector; only the Keras build is faked): a person found with score 0.5
    is removed with 0.3 and kept with the default 0.7."""
    from gone.models import DEFAULT_MIN_SCORE
    _save(tmp_path / "p.png", make_scene())
    fake_leaves["score"] = 0.5
    assert cli.main(["remove", str(tmp_path / "p.png"), "-o", str(tmp_path / "default")]) == 0
    assert fake_leaves["detectors"][-1].config.DETECTION_MIN_CONFIDENCE == DEFAULT_MIN_SCORE == 0.7
    assert "0 inpainted, 1 nothing to remove" in capsys.readouterr().out
    assert cli.main(["remove", str(tmp_path / "p.png"), "-o", str(tmp_path / "low"), "--min-score", "0.3"]) == 0
    det = fake_leaves["detectors"][-1]
    assert det.config.DETECTION_MIN_CONFIDENCE == 0.3 and det.weights_path.name == "mask_rcnn_coco.h5"
    assert "1 inpainted, 0 nothing to remove" in capsys.readouterr().out
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "low" / "p.png")), make_scene())


def test_cli_hands_the_inpainter_network_ready_batches(tmp_path, make_scene, fake_leaves, capsys):
    """`gone remove` (the real build_remover and make_inpainter; only the Keras builds faked):
    the DeepFill network gets PeopleRemover's regions as they are (sides multiples of 64,
    --batch-size regions per call, InpaintModel.fill), and only the hole changes."""
    d = tmp_path / "in"
    d.mkdir()
    for k in range(3):   # three images, one person each: three regions of one shape
        _save(d / f"p{k}.png", make_scene(people=((20 + k, 30, 60, 50),)))
    out = tmp_path / "out"
    rc = cli.main(["remove", str(d), "-o", str(out), "--inpaint-checkpoint", str(fake_leaves["deepfill_npz"]),
                   "--batch-size", "2", "--save-masks"])
    assert rc == 0 and "3 inpainted" in capsys.readouterr().out
    (model,) = fake_leaves["inpaint_models"]
    assert [b[0] for b in model.batches] == [(2, 128, 128, 3), (1, 128, 128, 3)]
    for k in range(3):
        src = make_scene(people=((20 + k, 30, 60, 50),))
        res = np.asarray(Image.open(out / f"p{k}.png"))
        hole = np.asarray(Image.open(out / f"p{k}_mask.png")) == 255
        np.testing.assert_array_equal(res[~hole], src[~hole])
        assert not np.all(res == (255, 0, 0), -1).any()       # the person is gone


def test_min_score_below_the_detectors_own_is_refused(fake_detector_cls, fake_inpainter):
    class Thresholded(fake_detector_cls):
        config = type("Cfg", (), {"DETECTION_MIN_CONFIDENCE": 0.7})()
    with pytest.raises(ValueError, match="below the detector's own threshold 0.7"):
        PeopleRemover(Thresholded(), fake_inpainter, min_score=0.3)


def test_missing_weights_is_usage_error(photo_folder, tmp_path, monkeypatch, capsys):
    """A new user without weights: exit 2 before anything is created, the offline ways named."""
    monkeypatch.setenv("GONE_WEIGHTS_DIR", str(tmp_path / "empty_cache"))
    rc = cli.main(["remove", str(photo_folder / "person.png"), "-o", str(tmp_path / "o"), "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and "no Mask R-CNN weights given and none cached" in err and "mask_rcnn_coco" in err
    assert "--masks DIR" in err and "gone inpaint --image" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_cli_import_is_light():
    import subprocess
    import sys
    code = ("import sys, gone.cli; bad = [m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules];"
            " print(bad); sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_failure_inside_a_batch_is_isolated(photo_folder, tmp_path, fake_leaves, fake_maskrcnn_cls, capsys):
    class PickyMaskRCNN(fake_maskrcnn_cls):
        def detect(self, images, verbose=0):
            if any(im.shape[:2] == (96, 128) and (im[:10, :10] == 255).all() for im in images):
                raise RuntimeError("model exploded on the RGBA one")
            return super().detect(images, verbose)

    fake_leaves["detector_cls"] = PickyMaskRCNN
    out = tmp_path / "out"
    rc = cli.main(["remove", str(photo_folder), "-o", str(out), "-q", "--batch-size", "4"])
    captured = capsys.readouterr()
    assert rc == 1 and "model exploded" in captured.err and "rgba.png" in captured.err
    assert _listing(out) == ["empty.jpg", "gray.png", "person.png"]
    assert "2 failed" in captured.out
    assert fake_leaves["detectors"][0].config.BATCH_SIZE == 4   # a batch of four, then one by one


# -- safety: inputs, names, weights, values, files ----------------------------------------------
import json  # noqa: E402
import os  # noqa: E402
import pathlib  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import gonefiles  # noqa: E402


def _save(path, img):
    Image.fromarray(img).save(path)
    return path


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(pathlib.Path(folder).iterdir())}


def test_never_writes_over_inputs(photo_folder, tmp_path, fake_models, capsys):
    before = _snapshot(photo_folder)
    rc = cli.main(["remove", str(photo_folder), "-o", str(photo_folder), "--overwrite", "--save-masks", "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and "refusing to write over input files" in err and "in/gray.png" in err
    assert _snapshot(photo_folder) == before and fake_models == []
    # an input that happens to sit in the output folder, reached through a symlink too
    out = tmp_path / "out"
    out.mkdir()
    _save(out / "person.png", np.asarray(Image.open(photo_folder / "person.png")))
    (tmp_path / "link").symlink_to(out)
    keep = (out / "person.png").read_bytes()
    rc = cli.main(["remove", str(out / "person.png"), "-o", str(tmp_path / "link"), "--overwrite", "-q"])
    assert rc == 2 and (out / "person.png").read_bytes() == keep
    assert "refusing" in capsys.readouterr().err


def test_colliding_output_names_are_unique_and_predictable(tmp_path, make_scene, fake_models, capsys):
    src = tmp_path / "in"
    src.mkdir()
    img = make_scene()
    for name in ("a.jpg", "a.png", "b.gif", "b.png", "c.jpg", "c_mask.png", "d.png"):
        _save(src / name, img)
    out = tmp_path / "out"
    rc = cli.main(["remove", str(src), "-o", str(out), "--save-masks", "-q"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert _listing(out) == sorted([
        "a_jpg.jpg", "a_jpg_mask.png", "a_png.png", "a_png_mask.png",
        "b_gif.png", "b_gif_mask.png", "b_png.png", "b_png_mask.png",
        "c_jpg.jpg", "c_jpg_mask.png", "c_mask_png.png", "c_mask_png_mask.png",
        "d.png", "d_mask.png"])
    # (the JPEGs' red is no longer pure, so the colour-keyed fake finds nobody there)
    assert "5 inpainted, 2 nothing to remove" in captured.out and "0 failed" in captured.out
    assert "a.jpg: output names clash; written as a_jpg.jpg" in captured.err
    # same name in two folders: numbered in input order; the names never depend on --save-masks
    other = tmp_path / "other"
    other.mkdir()
    _save(other / "d.png", img)
    stems = plan_output_stems([src / "d.png", other / "d.png", src / "a.jpg"])
    assert list(stems.values()) == ["d_png", "d_png_2", "a"]


@pytest.mark.parametrize("argv, message", [
    (["--dilation", "-5"], "invalid dilation '-5': must be >= 0"),
    (["--dilation", "-0.05"], "must be >= 0"),
    (["--classes", ",,"], "names no class"),
    (["--classes", "999"], "unknown class id 999"),
    (["--classes", "person,0"], "unknown class id 0"),
    (["--masks", "/nonexistent/masks"], "not a folder"),
    (["--detector-size", "100"], "argument --detector-size: must be a positive multiple of 64, got 100"),
    (["--fast", "--detector-size", "0"], "argument --detector-size: must be a positive multiple of 64, got 0"),
    # every number bounded when parsed, with the reason (no OverflowError, no 96 GiB allocation)
    (["--dilation", "1e400"], "argument --dilation: invalid dilation '1e400': use pixels"),
    (["--dilation", "1e308"], "invalid dilation '1e308': at most 4096 px (a larger radius covers any photo"),
    (["--dilation", "5000px"], "at most 4096 px"),
    (["--detector-size", "65536"], "argument --detector-size: 65536 is above the limit 2048: Mask R-CNN's "
                                   "memory grows with the square of its input size"),
    (["--working-size", "65536"], "argument --working-size: 65536 is above the limit 2048: DeepFill's "
                                  "attention memory grows"),
    (["--working-size", "1e9"], "argument --working-size: '1e9' is not an integer"),
    (["--batch-size", "100000"], "argument --batch-size: must be in [1, 256], got 100000"),
    (["--min-score", "nan"], "argument --min-score: 'nan' is not a finite number"),
    (["--min-score", "1.5"], "argument --min-score: must be in [0, 1], got 1.5"),
])
def test_bad_values_rejected_up_front(photo_folder, tmp_path, fake_models, capsys, argv, message):
    rc = cli.main(["remove", str(photo_folder / "person.png"), "-o", str(tmp_path / "o"), "-q"] + argv)
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err
    assert fake_models == [] and not (tmp_path / "o").exists()


def test_output_folder_that_is_a_file_is_refused(photo_folder, tmp_path, fake_models, capsys):
    """-o / --output naming an existing file: exit 2, one line, the file untouched (no traceback)."""
    taken = tmp_path / "out.txt"
    taken.write_text("keep me")
    masks = tmp_path / "m"
    masks.mkdir()
    rc = cli.main(["remove", str(photo_folder / "person.png"), "-o", str(taken), "-q", "--masks", str(masks)])
    err = capsys.readouterr().err
    assert rc == 2 and err == f"gone: error: -o {taken}: exists and is not a folder; name an output folder\n"
    rc = cli.main(["inpaint", "--image", str(photo_folder), "--mask", str(masks), "--output", str(taken), "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and err == f"gone: error: --output {taken}: exists and is not a folder; name an output folder\n"
    assert taken.read_text() == "keep me" and fake_models == []


def _matterport_h5(path, layers):
    import h5py
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [n.encode() for n in ["input_image"] + layers]
        f.create_group("input_image").attrs["weight_names"] = np.zeros(0)
        for n in layers:
            g = f.create_group(n)
            g.attrs["weight_names"] = [f"{n}/kernel:0".encode()]
            g.create_dataset(f"{n}/kernel:0", data=np.zeros(1, np.float32))
    return path


def test_partial_weights_refused_before_any_model(photo_folder, tmp_path, fake_leaves, capsys):
    weights = _matterport_h5(tmp_path / "partial.h5", ["conv1", "bn_conv1", "mrcnn_mask"])
    argv = ["remove", str(photo_folder / "person.png"), "-o", str(tmp_path / "o"), "-q",
            "--mrcnn-weights", str(weights), "--inpainter", "telea"]
    rc = cli.main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and "lacks weights for 230 of the detector's 233 layers" in err
    assert "--allow-partial-weights" in err and fake_leaves["detectors"] == []
    remover = cli.build_remover(cli.build_parser().parse_args(argv + ["--allow-partial-weights"]))
    assert remover.inpainter.kind == "telea" and remover.detector is fake_leaves["detectors"][0]
    config = remover.detector.config
    assert (config.IMAGES_PER_GPU, config.IMAGE_MAX_DIM, config.IMAGE_RESIZE_MODE) == (1, 1024, "square")
    assert remover.detector.weights_path == weights


@pytest.mark.parametrize("extra, detector, working_size", [
    ([], (1024, "square"), 512),                    # full fidelity
    (["--fast"], (640, "fit"), 256),
    (["--fast", "--detector-size", "768", "--working-size", "384"], (768, "fit"), 384),
    (["--detector-resize", "fit"], (1024, "fit"), 512),
])
def test_speed_options_reach_the_models(photo_folder, tmp_path, fake_leaves, extra, detector, working_size):
    argv = ["remove", str(photo_folder / "person.png"), "-o", str(tmp_path / "o"), "--inpainter", "telea"] + extra
    remover = cli.build_remover(cli.build_parser().parse_args(argv))
    config = remover.detector.config
    assert (config.IMAGE_MAX_DIM, config.IMAGE_RESIZE_MODE) == detector and remover.working_size == working_size


def test_fast_detector_config():
    config = models.make_detector_config(image_max_dim=640, resize_mode="fit")
    assert (config.IMAGE_MAX_DIM, config.IMAGE_MIN_DIM, config.IMAGE_RESIZE_MODE) == (640, 640, "fit")
    full = models.make_detector_config()
    assert (full.IMAGE_MAX_DIM, full.IMAGE_MIN_DIM, full.IMAGE_RESIZE_MODE) == (1024, 800, "square")
    with pytest.raises(ValueError, match="multiple of 64, got 650"):
        models.make_detector_config(image_max_dim=650)
    with pytest.raises(ValueError, match="resize mode must be one of"):
        models.make_detector_config(resize_mode="pad64")


def test_umask_missing_mask_redone_and_stale_temps(photo_folder, tmp_path, fake_models, capsys):
    old = os.umask(0o027)
    try:
        out = tmp_path / "out"
        out.mkdir()
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        stale = out / f".person.png.{dead.pid}.abcdefgh{gonefiles.TEMP_MARK}"
        stale.write_bytes(b"half an image")
        person = str(photo_folder / "person.png")
        assert cli.main(["remove", person, "-o", str(out), "--save-masks"]) == 0
        assert not stale.exists() and "left by an interrupted run" in capsys.readouterr().err
        assert {p.name: oct(p.stat().st_mode & 0o777) for p in out.iterdir()} == {
            "person.png": "0o640", "person_mask.png": "0o640", MANIFEST_NAME: "0o640"}
        first = (out / "person.png").stat().st_mtime_ns
        (out / "person_mask.png").unlink()
        assert cli.main(["remove", person, "-o", str(out), "--save-masks", "-q"]) == 0
        assert (out / "person_mask.png").is_file() and (out / "person.png").stat().st_mtime_ns == first
        assert "1 inpainted" in capsys.readouterr().out
    finally:
        os.umask(old)


def test_full_disk_stops_cleanly(photo_folder, tmp_path, fake_models, monkeypatch, capsys):
    import errno

    from gonefiles import atomic

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(atomic.os, "fsync", full)
    out = tmp_path / "out"
    rc = cli.main(["remove", str(photo_folder), "-o", str(out), "-q", "--save-masks"])
    captured = capsys.readouterr()
    assert rc == 1 and "no space left" in captured.err and "Traceback" not in captured.err
    assert _listing(out) == []


_SIGTERM_DRIVER = r'''
import sys, time, pathlib
from PIL import Image
sys.path[:0] = [sys.argv[3]]
from conftest import FakeMaskRCNN, write_fake_mrcnn_weights
from gone import cli, models
models.build_maskrcnn = lambda config, path, **k: FakeMaskRCNN(config, path)   # the Keras build, faked
weights = write_fake_mrcnn_weights(pathlib.Path(sys.argv[4]).parent / "fake_weights.h5")
real_save = Image.Image.save
def slow_save(self, fp, *a, **k):
    real_save(self, fp, *a, **k)
    pathlib.Path(sys.argv[2]).write_text("writing")
    time.sleep(60)
Image.Image.save = slow_save
sys.exit(cli.main(["remove", sys.argv[1], "-o", sys.argv[4], "-q", "--mrcnn-weights", str(weights),
                   "--inpainter", "telea"]))
'''


def test_sigterm_behaves_like_ctrl_c(photo_folder, tmp_path):
    import signal
    import time
    driver = tmp_path / "driver.py"
    driver.write_text(_SIGTERM_DRIVER)
    ready, out = tmp_path / "ready", tmp_path / "out"
    proc = subprocess.Popen([sys.executable, str(driver), str(photo_folder / "person.png"), str(ready),
                             str(pathlib.Path(__file__).parent), str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ready.exists(), proc.communicate()[1]
    assert any(gonefiles.is_temp_name(p.name) for p in out.iterdir())   # caught mid-write
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    assert "interrupted (SIGTERM)" in err and "Traceback" not in err
    assert _listing(out) == []


def test_user_masks_skip_detection_with_a_real_inpainter(tmp_path, make_scene, capsys):
    pytest.importorskip("cv2", reason="opencv-python-headless provides the Telea inpainter")
    img = make_scene(people=())
    src, masks, out = tmp_path / "in", tmp_path / "masks", tmp_path / "out"
    src.mkdir()
    masks.mkdir()
    _save(src / "x.png", img)
    _save(src / "y.png", img)
    hole = np.zeros(img.shape[:2], np.uint8)
    hole[30:50, 40:70] = 255
    Image.fromarray(hole).save(masks / "x_mask.png")
    rc = cli.main(["remove", str(src), "-o", str(out), "--masks", str(masks), "--inpainter", "telea", "-q"])
    captured = capsys.readouterr()
    assert rc == 1 and "y.png: no mask y.* or y_mask.*" in captured.err   # reported, the rest done
    assert "inpainter: " in captured.out and "Telea" in captured.out
    res = np.asarray(Image.open(out / "x.png"))
    np.testing.assert_array_equal(res[hole == 0], img[hole == 0])
    assert not np.array_equal(res[hole > 0], img[hole > 0])
    assert _listing(out) == ["x.png"]
    # masks beside their images: the mask files are not inputs, the images do not mask themselves
    _save(src / "y_mask.png", hole)
    rc = cli.main(["remove", str(src), "-o", str(tmp_path / "o2"), "--masks", str(src), "--inpainter", "telea",
                   "-q"])
    captured = capsys.readouterr()
    assert rc == 1 and "x.png: no mask x.* or x_mask.*" in captured.err and "1 inpainted" in captured.out
    assert _listing((tmp_path / "o2")) == ["y.png"]


def test_gone_inpaint_yu_flags_and_folder_form(tmp_path, make_scene, capsys):
    pytest.importorskip("cv2", reason="opencv-python-headless provides the Telea inpainter")
    img = make_scene(people=())
    hole = np.zeros(img.shape[:2], np.uint8)
    hole[10:40, 20:30] = 255
    _save(tmp_path / "img.jpg", img)
    _save(tmp_path / "hole.png", hole)
    rc = cli.main(["inpaint", "--image", str(tmp_path / "img.jpg"), "--mask", str(tmp_path / "hole.png"),
                   "--output", str(tmp_path / "res.png"), "--checkpoint_dir", str(tmp_path / "none"),
                   "--inpainter", "telea"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    src = np.asarray(Image.open(tmp_path / "img.jpg"))
    res = np.asarray(Image.open(tmp_path / "res.png"))
    np.testing.assert_array_equal(res[hole == 0], src[hole == 0])
    assert "Telea" in captured.out
    # folder form: masks by stem; an image without a mask is reported, the others done
    imgs, msk, out = tmp_path / "imgs", tmp_path / "msk", tmp_path / "out"
    imgs.mkdir()
    msk.mkdir()
    for n in ("p", "q", "r"):
        _save(imgs / f"{n}.png", img)
    _save(msk / "p.png", hole)
    _save(msk / "r_mask.png", hole)
    rc = cli.main(["inpaint", "--image", str(imgs), "--mask", str(msk), "--output", str(out),
                   "--inpainter", "telea", "-q"])
    captured = capsys.readouterr()
    assert rc == 1 and "q.png: no mask" in captured.err and "2 inpainted" in captured.out
    assert _listing(out) == ["p.png", "r.png"]
    # masks kept beside their images
    both = tmp_path / "both"
    both.mkdir()
    _save(both / "a.png", img)
    _save(both / "a_mask.png", hole)
    _save(both / "b.png", img)
    rc = cli.main(["inpaint", "--image", str(both), "--mask", str(both), "--output", str(tmp_path / "o3"),
                   "--inpainter", "telea", "-q"])
    captured = capsys.readouterr()
    assert rc == 1 and "b.png: no mask" in captured.err and "a_mask.png: no mask" not in captured.err
    assert _listing((tmp_path / "o3")) == ["a.png"]
    # never over an input
    rc = cli.main(["inpaint", "--image", str(imgs), "--mask", str(msk), "--output", str(imgs), "--overwrite",
                   "--inpainter", "telea", "-q"])
    assert rc == 2 and "refusing to write over" in capsys.readouterr().err


def test_gone_inpaint_counts_honestly_and_never_fills_black(tmp_path, make_scene, capsys):
    """An all-white mask (100 % hole: nothing to fill from) is filled with the image's mean colour
    and warned about; all-black and red-only masks (no white on the channel test.py reads) leave
    the image byte-identical and are counted as unchanged, not inpainted."""
    img = make_scene(people=())
    src = _save(tmp_path / "img.png", img)
    masks = {"white": np.full((96, 128, 3), 255, np.uint8), "black": np.zeros((96, 128, 3), np.uint8),
             "red": np.zeros((96, 128, 3), np.uint8)}
    masks["red"][..., 0] = 255
    for name, mask in masks.items():
        _save(tmp_path / f"{name}.png", mask)
        rc = cli.main(["inpaint", "--image", str(src), "--mask", str(tmp_path / f"{name}.png"),
                       "--output", str(tmp_path / f"out_{name}.png"), "--inpainter", "patchmatch"])
        captured = capsys.readouterr()
        assert rc == 0, captured.err
        out = tmp_path / f"out_{name}.png"
        if name == "white":
            assert "0 inpainted" not in captured.out and "1 inpainted, 0 unchanged" in captured.out
            assert "warning: the hole covers the whole image" in captured.err
            res = np.asarray(Image.open(out))
            np.testing.assert_array_equal(res, np.broadcast_to(np.round(img.reshape(-1, 3).mean(0)), res.shape))
        else:
            assert "0 inpainted, 1 unchanged (empty hole)" in captured.out
            assert "the mask marks no hole" in captured.err
            assert out.read_bytes() == src.read_bytes()


@pytest.mark.parametrize("case, extra", [(0, (0, 0)), (1, (5, 3))])
def test_gone_inpaint_with_test_py_flags_gives_test_py_output(tmp_path, deepfill_reference_dir,
                                                             deepfill_release_ckpt, capsys, case, extra):
    """`gone inpaint --image --mask --output --checkpoint_dir` (Yu's test.py flags) on the held-out
    reference cases gives test.py's PNG: the whole image, cropped at the bottom/right to a multiple
    of 8 (case 1 gets 5 rows and 3 columns more, which test.py crops away), within 1/255 in the
    hole (float rounding of the network) and test.py's own bytes outside it."""
    with np.load(deepfill_reference_dir / "infer_cases.npz") as data:
        image = data[f"case{case}_image_bgr"][..., ::-1]
        mask = data[f"case{case}_mask"]
        ref = data[f"case{case}_output_bgr"][..., ::-1]
    h, w = image.shape[:2]
    if extra != (0, 0):
        image = np.pad(image, ((0, extra[0]), (0, extra[1]), (0, 0)), mode="reflect")
        mask = np.pad(mask, ((0, extra[0]), (0, extra[1]), (0, 0)))
    _save(tmp_path / "image.png", np.ascontiguousarray(image))
    _save(tmp_path / "mask.png", np.ascontiguousarray(mask))
    rc = cli.main(["inpaint", "--image", str(tmp_path / "image.png"), "--mask", str(tmp_path / "mask.png"),
                   "--output", str(tmp_path / "out.png"), "--checkpoint_dir", str(deepfill_release_ckpt)])
    captured = capsys.readouterr()
    assert rc == 0 and "1 inpainted" in captured.out and "as Yu et al.'s test.py" in captured.out
    out = np.asarray(Image.open(tmp_path / "out.png"))
    assert out.shape == (h, w, 3)
    hole = mask[:h, :w, 0] > 127
    np.testing.assert_array_equal(out[~hole], ref[~hole])
    assert np.abs(out[hole].astype(int) - ref[hole]).max() <= 1


def test_animated_gif_says_first_frame(tmp_path, fake_models, make_scene, capsys):
    frames = [Image.fromarray(make_scene()), Image.fromarray(make_scene(people=()))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    rc = cli.main(["remove", str(tmp_path / "anim.gif"), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 0 and "anim.gif: animated (2 frames): only the first frame is used" in err
    assert (tmp_path / "out" / "anim.png").is_file()


def test_tensorflow_start_up_noise_is_filtered(capfd):
    from gone.quiet import quiet_native_stderr
    noise = (b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
             b"I0000 00:00:1796218361.564382   13586 cudart_stub.cc:31] Could not find cuda drivers on your "
             b"machine, GPU will not be used.\n"
             b"I0000 00:00:1796218361.564011   13586 port.cc:153] oneDNN custom operations are on. You may see\n"
             b"E0000 00:00:1796218372.960361   13586 cuda_platform.cc:52] failed call to cuInit: INTERNAL\n")
    with quiet_native_stderr():
        os.write(2, noise + b"E0000 real trouble: cannot open file\n")
    err = capfd.readouterr().err
    assert err == "E0000 real trouble: cannot open file\n"


@pytest.mark.parametrize("entry", ["gone.cli", "gone.io", "table2_crop_strategy", "_common"])
def test_onednn_off_before_tensorflow_can_load(entry):
    root = pathlib.Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k not in ("TF_ENABLE_ONEDNN_OPTS", "TF_CPP_MIN_LOG_LEVEL")}
    code = (f"import sys, os; sys.path[:0] = [{str(root / 'experiments')!r}, {str(root)!r}]; import {entry}; "
            "print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'), os.environ.get('TF_CPP_MIN_LOG_LEVEL'), "
            "'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["0", "2", "False"], out.stderr


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_an_unrelated_file_is_never_replaced(tmp_path, make_scene, fake_leaves, capsys, overwrite):
    """`gone remove d6/a.gif -o d6 --masks m6 [--overwrite]` where d6/a.png is an unrelated photo:
    the photo is kept, the clash reported, a.gif processed as a_2.png; a rerun keeps that name."""
    d6, m6 = tmp_path / "d6", tmp_path / "m6"
    d6.mkdir()
    m6.mkdir()
    Image.fromarray(make_scene()).save(d6 / "a.gif")
    photo = _save(d6 / "a.png", make_scene(h=50, w=60, people=()))
    before = photo.read_bytes()
    hole = np.zeros((96, 128), np.uint8)
    hole[20:60, 30:50] = 255
    _save(m6 / "a.png", hole)
    argv = ["remove", str(d6 / "a.gif"), "-o", str(d6), "--masks", str(m6), "--inpainter", "telea"] + overwrite
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    assert photo.read_bytes() == before
    assert f"{d6 / 'a.png'} exists and was not written by gone; kept, output written as a_2.png" in captured.err
    assert "1 inpainted" in captured.out and _listing(d6) == ["a.gif", "a.png", "a_2.png"]
    manifest = json.loads((d6 / MANIFEST_NAME).read_text())
    assert manifest["planned"] == {str((d6 / "a.gif").resolve()): {"stem": "a_2", "image": "a_2.png",
                                                                   "mask": "a_2_mask.png"}}
    assert manifest["written"] == ["a_2.png"]
    first = (d6 / "a_2.png").stat().st_mtime_ns
    assert cli.main(argv) == 0          # a rerun: the same name, replaced only with --overwrite
    assert _listing(d6) == ["a.gif", "a.png", "a_2.png"] and photo.read_bytes() == before
    assert ((d6 / "a_2.png").stat().st_mtime_ns != first) == bool(overwrite)


def test_planned_names_stay_stable_across_reruns(tmp_path, make_scene, fake_models, capsys):
    """a.jpg is written as out/a.jpg; after a.png is added beside it, a rerun keeps a.jpg's name
    (no duplicate a_jpg.jpg) and gives a.png a unique one."""
    d, out = tmp_path / "in", tmp_path / "out"
    d.mkdir()
    Image.fromarray(make_scene()).save(d / "a.jpg", quality=95)
    assert cli.main(["remove", str(d), "-o", str(out), "-q"]) == 0
    assert _listing(out) == ["a.jpg"]
    first = (out / "a.jpg").stat().st_mtime_ns
    _save(d / "a.png", make_scene(people=((5, 5, 30, 30),)))
    assert cli.main(["remove", str(d), "-o", str(out), "-q"]) == 0
    captured = capsys.readouterr()
    assert "1 inpainted" in captured.out and "1 existing" in captured.out
    assert _listing(out) == ["a.jpg", "a_png.png"] and (out / "a.jpg").stat().st_mtime_ns == first
    # a new output folder plans by the naming rule alone
    assert cli.main(["remove", str(d), "-o", str(tmp_path / "fresh"), "-q"]) == 0
    assert _listing(tmp_path / "fresh") == ["a_jpg.jpg", "a_png.png"]


def test_recorded_names_are_never_given_to_a_new_input(tmp_path, make_scene, fake_models, capsys):
    """x/a.png and y/a.png became a_png.png and a_png_2.png; a rerun of w/a.png (new, listed
    first) and y/a.png keeps y's name and gives w a free one, x's output untouched."""
    for sub in "xyw":
        (tmp_path / sub).mkdir()
        _save(tmp_path / sub / "a.png", make_scene(people=((10 + "xyw".index(sub), 10, 40, 30),)))
    out = tmp_path / "out"
    assert cli.main(["remove", str(tmp_path / "x" / "a.png"), str(tmp_path / "y" / "a.png"), "-o", str(out), "-q"]) == 0
    assert _listing(out) == ["a_png.png", "a_png_2.png"]
    stamps = {n: (out / n).stat().st_mtime_ns for n in _listing(out)}
    assert cli.main(["remove", str(tmp_path / "w" / "a.png"), str(tmp_path / "y" / "a.png"), "-o", str(out), "-q"]) == 0
    assert "1 inpainted" in capsys.readouterr().out and _listing(out) == ["a_png.png", "a_png_2.png", "a_png_3.png"]
    assert {n: (out / n).stat().st_mtime_ns for n in stamps} == stamps
    planned = json.loads((out / MANIFEST_NAME).read_text())["planned"]
    assert {pathlib.Path(k).parent.name: v["stem"] for k, v in planned.items()} == {
        "x": "a_png", "y": "a_png_2", "w": "a_png_3"}


def test_an_unreadable_manifest_owns_nothing(tmp_path, make_scene, fake_models, capsys):
    d, out = tmp_path / "in", tmp_path / "out"
    d.mkdir()
    out.mkdir()
    _save(d / "a.png", make_scene())
    (out / MANIFEST_NAME).write_text("{not json")
    _save(out / "a.png", make_scene(people=()))
    before = (out / "a.png").read_bytes()
    assert cli.main(["remove", str(d / "a.png"), "-o", str(out), "--overwrite", "-q"]) == 0
    err = capsys.readouterr().err
    assert "unreadable" in err and "kept, output written as a_2.png" in err
    assert (out / "a.png").read_bytes() == before and _listing(out) == ["a.png", "a_2.png"]
    assert json.loads((out / MANIFEST_NAME).read_text())["written"] == ["a_2.png"]


def test_deepfill_without_checkpoint_is_a_clear_usage_error(tmp_path, make_scene, monkeypatch, capsys):
    monkeypatch.setenv("GONE_WEIGHTS_DIR", str(tmp_path / "empty_cache"))
    _save(tmp_path / "x.png", make_scene())
    (tmp_path / "m").mkdir()
    _save(tmp_path / "m" / "x.png", np.full((96, 128), 255, np.uint8))
    rc = cli.main(["remove", str(tmp_path / "x.png"), "-o", str(tmp_path / "o"), "--masks", str(tmp_path / "m"),
                   "--inpainter", "deepfill", "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and "deepfill_v1_places2" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()      # nothing created before the setup is known good
