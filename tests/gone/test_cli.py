import numpy as np
import pytest
from PIL import Image

from gone import cli
from gone.pipeline import PeopleRemover

pytestmark = pytest.mark.jax  # fakes only: no Keras


@pytest.fixture
def fake_models(monkeypatch, fake_detector_cls, fake_inpainter_cls):
    built = []

    def build(args):
        built.append(args)
        return PeopleRemover(fake_detector_cls(), fake_inpainter_cls(), strategy=args.strategy,
                             dilation=args.dilation, classes=cli._parse_classes(args.classes),
                             min_score=args.min_score, large_crop=args.large_crop,
                             batch_size=args.batch_size)
    monkeypatch.setattr(cli, "build_remover", build)
    return built


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
    names = sorted(p.name for p in out.iterdir())
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
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []   # no temp files
    # usage errors
    assert cli.main(["remove", str(tmp_path / "missing*.png"), "-o", str(out)]) == 2
    assert cli.main(["remove", pattern, "-o", str(out), "--dilation", "huge"]) == 2
    assert cli.main(["remove", pattern, "-o", str(out), "--classes", "unicorn"]) == 2
    assert cli.main(["remove", pattern, "-o", str(out), "--strategy", "blur"]) == 2
    assert cli.main([]) == 2
    err = capsys.readouterr().err
    assert "invalid dilation" in err and "unknown class" in err


def test_missing_weights_is_usage_error(photo_folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GONE_WEIGHTS_DIR", str(tmp_path / "empty_cache"))
    rc = cli.main(["remove", str(photo_folder / "person.png"), "-o", str(tmp_path / "o"), "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and "mask_rcnn_coco" in err and "Traceback" not in err


def test_cli_import_is_light():
    import subprocess
    import sys
    code = ("import sys, gone.cli; bad = [m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules];"
            " print(bad); sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_failure_inside_a_batch_is_isolated(photo_folder, tmp_path, monkeypatch, fake_detector_cls,
                                            fake_inpainter_cls, capsys):
    class PickyRemover(PeopleRemover):
        def remove(self, images, hole_masks=None):
            if any(im.shape[:2] == (96, 128) and (im[:10, :10] == 255).all() for im in images):
                raise RuntimeError("model exploded on the RGBA one")
            return super().remove(images, hole_masks)

    monkeypatch.setattr(cli, "build_remover",
                        lambda args: PickyRemover(fake_detector_cls(), fake_inpainter_cls(), batch_size=4))
    out = tmp_path / "out"
    rc = cli.main(["remove", str(photo_folder), "-o", str(out), "-q", "--batch-size", "4"])
    captured = capsys.readouterr()
    assert rc == 1 and "model exploded" in captured.err and "rgba.png" in captured.err
    assert sorted(p.name for p in out.iterdir()) == ["empty.jpg", "gray.png", "person.png"]
    assert "2 failed" in captured.out
