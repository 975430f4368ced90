"""gone.inpainters: the factory's choices and the classical inpainters' behaviour (tiny images)."""
import numpy as np
import pytest

from gone import inpainters
from gone.inpainters import INPAINTER_KINDS, InpainterError, make_inpainter


def _stripes(h=48, w=48):
    img = np.zeros((h, w, 3), np.uint8)
    img[:, ::4] = (200, 60, 20)
    img[:, 1::4] = (180, 50, 10)
    return img


def _hole(h=48, w=48):
    hole = np.zeros((h, w), bool)
    hole[16:32, 14:30] = True
    return hole


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GONE_WEIGHTS_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_kinds_are_the_agreed_names():
    assert INPAINTER_KINDS == ("auto", "lama", "deepfill", "deepfill-random", "patchmatch", "telea", "ns")


def test_auto_without_checkpoint_is_patchmatch_never_random(empty_cache):
    ip = make_inpainter()
    assert ip.kind == "patchmatch"
    assert ip.description == "PatchMatch (no DeepFill checkpoint found)"
    assert make_inpainter("auto", radius=3).kind == "patchmatch"   # other kinds' options ignored


def test_auto_uses_a_cached_checkpoint(empty_cache, monkeypatch):
    folder = empty_cache / "release_places2_256"
    folder.mkdir(parents=True)
    (folder / "snap-0.index").write_bytes(b"x")
    seen = []
    monkeypatch.setattr(inpainters, "_deepfill",
                        lambda path, opts, strict=True: seen.append((path, strict)) or "deepfill")
    assert make_inpainter("auto") == "deepfill"
    assert seen == [(folder, False)]


def test_deepfill_without_checkpoint_is_a_clear_error(empty_cache):
    with pytest.raises(InpainterError, match="no DeepFill checkpoint given and none cached"):
        make_inpainter("deepfill")


@pytest.mark.parametrize("kind, opts, message", [
    ("gan", {}, "unknown inpainter 'gan'"),
    ("patchmatch", {"patch_size": 0}, "patch_size"),
    ("telea", {"radius": -1}, "radius must be > 0"),
    ("ns", {"patch_size": 3}, "the 'ns' inpainter takes no option"),
    ("deepfill-random", {"radius": 3}, "DeepFill takes no option"),
])
def test_bad_kind_or_option(kind, opts, message):
    with pytest.raises(InpainterError, match=message):
        make_inpainter(kind, **opts)


def test_checkpoint_with_a_classical_kind_is_refused(tmp_path):
    with pytest.raises(InpainterError, match="uses none"):
        make_inpainter("telea", checkpoint=tmp_path)


def _fill1(ip, img, hole):
    """One image through the inpainter's network-ready batch interface."""
    (out,) = ip.fill(img[None], hole[None])
    return out


@pytest.mark.parametrize("kind", ["patchmatch", "telea", "ns"])
def test_fill_fills_flat_colour_exactly(kind):
    img = np.full((40, 40, 3), (90, 140, 30), np.uint8)
    img[10:20, 10:20] = 255          # something to remove
    hole = np.zeros((40, 40), bool)
    hole[8:22, 8:22] = True
    ip = make_inpainter(kind)
    out = _fill1(ip, img, hole)
    assert out.dtype == np.uint8 and out.shape == img.shape
    # PatchMatch copies known pixels; diffusion rounds a little at each step.
    atol = 0 if kind == "patchmatch" else 3
    np.testing.assert_allclose(out[hole], np.broadcast_to([90, 140, 30], out[hole].shape), atol=atol)


def test_patchmatch_is_deterministic_and_copies_texture():
    img, hole = _stripes(), _hole()
    pm = make_inpainter("patchmatch", seed=3)
    a = _fill1(pm, img, hole)
    np.testing.assert_array_equal(a, _fill1(make_inpainter("patchmatch", seed=3), img, hole))
    telea = _fill1(make_inpainter("telea"), img, hole)
    err_pm = np.abs(a[hole].astype(int) - img[hole]).mean()
    err_telea = np.abs(telea[hole].astype(int) - img[hole]).mean()
    # PatchMatch copies the stripes from the known part; diffusion smears them.
    assert err_pm < 0.5 * err_telea


def test_batch_empty_hole_and_bad_input():
    ip = make_inpainter("ns")
    img, hole = _stripes(), _hole()
    outs = ip.fill(np.stack([img, img]), np.stack([hole, np.zeros_like(hole)]))
    np.testing.assert_array_equal(outs[0], _fill1(ip, img, hole))
    np.testing.assert_array_equal(outs[1], img)
    with pytest.raises(InpainterError, match="holes of shape"):
        ip.fill(img[None], hole[None, :10])
    with pytest.raises(InpainterError, match="RGB uint8"):
        ip.fill(img[None].astype(np.float32), hole[None])
    with pytest.raises(InpainterError, match="RGB uint8 N x H x W x 3"):
        ip.fill(img, hole)


def test_patchmatch_is_deterministic_across_threads():
    from concurrent.futures import ThreadPoolExecutor

    img, hole = _stripes(), _hole()
    pms = [make_inpainter("patchmatch", seed=s) for s in (1, 2, 1, 2)]
    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(lambda ip: _fill1(ip, img, hole), pms))
    np.testing.assert_array_equal(outs[0], outs[2])
    np.testing.assert_array_equal(outs[1], outs[3])
    np.testing.assert_array_equal(outs[0], _fill1(make_inpainter("patchmatch", seed=1), img, hole))


def test_deepfill_is_the_models_network_ready_fill(tmp_path, fake_leaves):
    """make_inpainter's DeepFill hands the batch to InpaintModel.fill as it is (no second crop,
    pad or composite)."""
    ip = make_inpainter("deepfill", checkpoint=fake_leaves["deepfill_npz"])
    images = np.stack([_stripes(64, 64)] * 2)
    holes = np.zeros((2, 64, 64), bool)
    holes[:, 16:40, 8:30] = True
    out = ip.fill(images, holes)
    (model,) = fake_leaves["inpaint_models"]
    assert model.batches == [((2, 64, 64, 3), (2, 64, 64))]
    np.testing.assert_array_equal(out, model.fill(images, holes))
