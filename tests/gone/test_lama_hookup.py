"""LaMa in GONE: the ``lama`` inpainter kind, its region parameters, ``--lama-weights``, "auto"
picking cached LaMa weights, the setup check and the ``big-lama`` registry entry / download.

The weights are the reduced random generator of ../shared/reference/lama (the published best.ckpt
structure, small channel counts): fills are noise-like but the wiring is the real one."""
from __future__ import annotations

import argparse
import io
import pathlib
import urllib.error
import zipfile

import numpy as np
import pytest
from PIL import Image

from gone import cli, options
from gone import weights as W
from gone.inpainters import LAMA_REGION, make_inpainter
from gone.pipeline import REGION_DEFAULTS, PeopleRemover

SMALL = pathlib.Path(__file__).resolve().parents[2] / ".." / "shared" / "reference" / "lama" / \
    "lama_generator_random_small.ckpt"
pytestmark = pytest.mark.skipif(not SMALL.is_file(), reason=f"reduced LaMa reference checkpoint {SMALL} absent")

H, W_ = 61, 75   # not multiples of 8: the region is padded as bin/predict.py pads


def _photo():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (H, W_, 3), dtype=np.uint8)
    hole = np.zeros((H, W_), bool)
    hole[20:35, 25:45] = True      # away from the bottom/right border, where the padding goes
    return img, hole


@pytest.fixture(scope="module")
def lama_model():
    from lama import LamaInpainter
    return LamaInpainter.from_checkpoint(SMALL)


@pytest.fixture
def files(tmp_path):
    img, hole = _photo()
    src, masks = tmp_path / "in", tmp_path / "masks"
    src.mkdir()
    masks.mkdir()
    Image.fromarray(img).save(src / "photo.png")
    Image.fromarray(hole.astype(np.uint8) * 255).save(masks / "photo_mask.png")
    return src / "photo.png", masks, img, hole


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv(W.ENV_DIR, str(cache))
    return cache


def test_remove_with_lama_equals_predict_on_the_whole_small_image(files, tmp_path, lama_model, empty_cache, capsys):
    photo, masks, img, hole = files
    out = tmp_path / "out"
    rc = cli.main(["remove", str(photo), "-o", str(out), "--masks", str(masks), "--inpainter", "lama",
                   "--lama-weights", str(SMALL), "-q"])
    assert rc == 0
    assert "LaMa big-lama" in capsys.readouterr().out
    res = np.asarray(Image.open(out / "photo.png"))
    np.testing.assert_array_equal(res[~hole], img[~hole])
    assert (res[hole] != img[hole]).any(axis=-1).mean() > 0.9
    # the region is the whole image (128 px of context > the image): bin/predict.py's output
    np.testing.assert_array_equal(res, lama_model.predict(img, hole))


def test_inpaint_with_lama(files, tmp_path, lama_model, empty_cache):
    photo, masks, img, hole = files
    out = tmp_path / "filled.png"
    rc = cli.main(["inpaint", "--image", str(photo), "--mask", str(masks / "photo_mask.png"), "--output", str(out),
                   "--inpainter", "lama", "--lama-weights", str(SMALL), "-q"])
    assert rc == 0
    np.testing.assert_array_equal(np.asarray(Image.open(out)), lama_model.predict(img, hole))


def test_lama_region_parameters_unless_set(empty_cache):
    lama = make_inpainter("lama", lama_weights=SMALL)
    assert lama.kind == "lama" and lama.region_defaults == LAMA_REGION
    remover = PeopleRemover(None, lama)
    assert (remover.working_size, remover.context_margin, remover.min_context, remover.size_multiple) == (2048, 0.5, 128, 8)
    set_by_caller = PeopleRemover(None, lama, working_size=256, size_multiple=64, min_context=16)
    assert (set_by_caller.working_size, set_by_caller.size_multiple, set_by_caller.min_context) == (256, 64, 16)
    telea = PeopleRemover(None, "telea")
    assert (telea.working_size, telea.min_context, telea.size_multiple) == (REGION_DEFAULTS["working_size"], 32, 64)


def test_large_region_is_downscaled_to_the_lama_limit(empty_cache, monkeypatch):
    """A region longer than 2048 px reaches LaMa at 2048 px on its long side, sides multiples of 8."""
    lama = make_inpainter("lama", lama_weights=SMALL)
    seen = []
    monkeypatch.setattr(lama, "fill", lambda images, holes: seen.append(images.shape) or images)
    img = np.full((300, 2600, 3), 90, np.uint8)
    hole = np.zeros(img.shape[:2], bool)
    hole[100:200, 100:2500] = True
    PeopleRemover(None, lama).remove([img], [hole])
    (shape,) = seen
    assert shape[2] == 2048 and shape[1] % 8 == 0 and shape[1] == -(-round(300 * 2048 / 2600) // 8) * 8


def test_auto_picks_given_lama_weights(empty_cache):
    given = make_inpainter("auto", lama_weights=SMALL)
    assert given.kind == "lama" and "auto: LaMa weights given" in given.description
    assert make_inpainter("auto").kind in ("patchmatch", "telea")     # nothing given, nothing cached


def test_auto_picks_cached_lama(empty_cache, tmp_path, files, capsys):
    from lama.convert import convert
    convert(SMALL, empty_cache / "big_lama.npz")
    assert W.find_weight_file("big-lama") == empty_cache / "big_lama.npz"
    auto = make_inpainter("auto")
    assert auto.kind == "lama" and "auto: LaMa weights cached" in auto.description
    assert PeopleRemover(None).inpainter.kind == "lama"      # PeopleRemover's default, "auto"
    paper = make_inpainter("auto", auto_lama=False)           # the experiments' auto
    assert paper.kind in ("patchmatch", "telea")
    setup = options.check_setup(argparse.Namespace(inpainter="auto", masks="m", lama_weights=None,
                                                   inpaint_checkpoint=None))
    assert setup.lama_weights == empty_cache / "big_lama.npz"
    photo, masks, img, hole = files
    assert cli.main(["remove", str(photo), "-o", str(tmp_path / "o"), "--masks", str(masks), "-q"]) == 0
    assert "inpainter: LaMa big-lama" in capsys.readouterr().out


def test_experiments_auto_keeps_the_paper_inpainter(empty_cache, monkeypatch):
    import importlib

    from lama.convert import convert
    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).resolve().parents[2] / "experiments"))
    _common = importlib.import_module("_common")
    convert(SMALL, empty_cache / "big_lama.npz")
    inpainter, source = _common.load_inpainter(None, "auto")
    assert inpainter.kind in ("patchmatch", "telea") and source == inpainter.kind
    inpainter, source = _common.load_inpainter(None, "lama")
    assert inpainter.kind == "lama" and source.endswith("big_lama.npz")


@pytest.mark.parametrize("content", [b"not a checkpoint at all", b"PK\x03\x04" + b"\0" * 40])
def test_corrupt_lama_file_refused_at_setup(files, tmp_path, content, empty_cache, capsys):
    photo, masks, _, _ = files
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(content)
    out = tmp_path / "out"
    rc = cli.main(["remove", str(photo), "-o", str(out), "--masks", str(masks), "--inpainter", "lama",
                   "--lama-weights", str(bad), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and not out.exists()
    assert len(err) == 1 and err[0].startswith("gone: error: unusable LaMa weights") and str(bad) in err[0]
    rc = cli.main(["inpaint", "--image", str(photo), "--mask", str(masks / "photo_mask.png"),
                   "--output", str(out / "x.png"), "--inpainter", "lama", "--lama-weights", str(bad)])
    assert rc == 2 and not out.exists()


def test_lama_weights_with_another_kind_is_a_usage_error(files, tmp_path, empty_cache, capsys):
    photo, masks, _, _ = files
    rc = cli.main(["remove", str(photo), "-o", str(tmp_path / "o"), "--masks", str(masks), "--inpainter", "telea",
                   "--lama-weights", str(SMALL)])
    assert rc == 2 and "--lama-weights is for --inpainter lama or auto" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def _big_lama_zip(path):
    """big-lama.zip's layout: big-lama/config.yaml + big-lama/models/best.ckpt (the reduced one)."""
    with np.load(SMALL.parent / "infer_cases_small.npz") as z:   # the reduced generator's config section
        generator = str(z["meta/generator_config_yaml"])
    config = "run_title: x\ngenerator:\n" + "".join("  " + line + "\n" for line in generator.splitlines())
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("big-lama/config.yaml", config)
        z.write(SMALL, "big-lama/models/best.ckpt")
        z.writestr("big-lama/models/extra.txt", "ignored")
    return path


def test_download_big_lama_converts_the_generator_into_the_cache(empty_cache, tmp_path, monkeypatch, capsys):
    from lama.checkpoint import load_npz_state, read_generator_state
    archive = _big_lama_zip(tmp_path / "served.zip")
    fetched = []

    def fake_fetch(url, tmp, dest, timeout=30.0, progress=True, hint=None):
        fetched.append(url)
        pathlib.Path(tmp).write_bytes(archive.read_bytes())
    monkeypatch.setattr(W, "fetch_url", fake_fetch)
    assert cli.main(["weights", "--download", "big-lama"]) == 0
    assert fetched == ["https://huggingface.co/smartywu/big-lama/resolve/main/big-lama.zip"]
    dest = empty_cache / "big_lama.npz"
    assert sorted(p.name for p in empty_cache.iterdir()) == ["big_lama.npz"]   # no archive, no temp folder
    state, manifest = load_npz_state(dest)
    ref = read_generator_state(SMALL)
    assert set(state) == {k for k in ref if not k.endswith("num_batches_tracked")}
    for key, value in state.items():
        np.testing.assert_array_equal(value, ref[key])
    assert manifest["stored_dtype"] == "float32" and manifest["generator_config"]["NGF"] == 16
    listing = W.explain()
    assert ("licence: code Apache-2.0; no separate weight licence is stated; trained on Places2, whose terms "
            "are non-commercial") in listing
    assert f"found at {dest}" in listing.split("big-lama:")[1]
    assert cli.main(["weights", "--download", "big-lama"]) == 0      # verified: kept, not fetched again
    assert len(fetched) == 1 and "big-lama: already at" in capsys.readouterr().out


@pytest.mark.parametrize("payload, reason", [(b"<html>not found</html>", "did not return a complete zip"),
                                             ("no-ckpt", "expected one models/best.ckpt")])
def test_download_big_lama_refuses_a_bad_archive(empty_cache, tmp_path, monkeypatch, payload, reason):
    if payload == "no-ckpt":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("big-lama/config.yaml", "generator: {}\n")
        payload = buf.getvalue()
    monkeypatch.setattr(W, "fetch_url", lambda url, tmp, *a, **k: pathlib.Path(tmp).write_bytes(payload))
    with pytest.raises(W.WeightsError, match=reason):
        W.download("big-lama", progress=False)
    assert list(empty_cache.iterdir()) == []


def test_download_big_lama_offline_is_one_line(empty_cache, monkeypatch, capsys):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(W.urllib.request, "urlopen", offline)
    assert cli.main(["weights", "--download", "big-lama"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gone: error: cannot download https://huggingface.co/smartywu/big-lama")
    assert "--lama-weights" in err[0] and "python -m lama.convert big-lama" in err[0]
    assert list(empty_cache.iterdir()) == []


def test_remove_with_full_size_big_lama_weights(files, lama_full_weights, tmp_path, empty_cache):
    """The full-size big-lama generator (random weights regenerated once per test session by the
    reference's numpy-only make_weights.py --npz, 204 MB, in a temp folder) through
    `gone remove --inpainter lama`."""
    from lama import LamaInpainter
    weights = lama_full_weights
    photo, masks, img, hole = files
    out = tmp_path / "out"
    assert cli.main(["remove", str(photo), "-o", str(out), "--masks", str(masks), "--inpainter", "lama",
                     "--lama-weights", str(weights), "-q"]) == 0
    res = np.asarray(Image.open(out / "photo.png"))
    model = LamaInpainter.from_checkpoint(weights)
    assert (model.config.NGF, model.config.N_BLOCKS) == (64, 18)
    np.testing.assert_array_equal(res, model.predict(img, hole))
