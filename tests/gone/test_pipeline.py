import warnings

import numpy as np
import pytest

from gone import masks as M
from gone.pipeline import LargeCropWarning, PeopleRemover

pytestmark = pytest.mark.jax  # fakes only: no Keras


def _outside_identical(result, image):
    np.testing.assert_array_equal(result.output[~result.hole_mask], image[~result.hole_mask])


@pytest.mark.parametrize("strategy", M.STRATEGIES)
def test_remove_composites_only_inside_hole(strategy, make_scene, fake_detector, fake_inpainter):
    img = make_scene(people=((20, 30, 60, 50), (10, 90, 40, 110)), cars=((70, 10, 85, 40),))
    remover = PeopleRemover(fake_detector, fake_inpainter, strategy=strategy, dilation=3)
    (res,) = remover.remove([img])
    assert res.status == "inpainted"
    assert res.output.shape == img.shape and res.output.dtype == np.uint8
    _outside_identical(res, img)
    person = np.all(img == (255, 0, 0), -1)
    car = np.all(img == (0, 0, 255), -1)
    assert res.hole_mask[person].all() and not res.hole_mask[car].any()   # people only
    assert not np.all(res.output == (255, 0, 0), -1).any()                # red is gone
    assert res.detections["masks"].shape[-1] == 3
    assert res.large_crop_fraction == pytest.approx(res.hole_mask.mean())
    assert all(s[0] % 8 == 0 and s[1] % 8 == 0 for s in fake_inpainter.shapes)


def test_large_image_is_cropped_scaled_and_pasted(make_scene, fake_detector, fake_inpainter):
    img = make_scene(h=301, w=517, people=((40, 60, 260, 150), (100, 400, 140, 430)))
    remover = PeopleRemover(fake_detector, fake_inpainter, working_size=128, dilation=0.05)
    (res,) = remover.remove([img])
    _outside_identical(res, img)
    assert res.hole_mask[np.all(img == (255, 0, 0), -1)].all()
    # two separate regions, each at most 128 px (+ padding to 8) on its longer side
    assert len(fake_inpainter.shapes) == 2
    assert all(max(s[:2]) <= 128 and s[0] % 64 == 0 and s[1] % 64 == 0 for s in fake_inpainter.shapes)
    # inpainted pixels are close to the background colour, not red
    assert res.output[res.hole_mask][:, 0].mean() < 150


def test_nothing_to_remove_left_untouched(make_scene, fake_detector, fake_inpainter):
    img = make_scene(people=(), cars=((5, 5, 20, 20),))
    (res,) = PeopleRemover(fake_detector, fake_inpainter).remove([img])
    assert res.status == "nothing_to_remove" and "untouched" in res.message
    assert "1 detection" in res.message
    np.testing.assert_array_equal(res.output, img)
    assert not res.hole_mask.any() and fake_inpainter.shapes == []


def test_min_score_and_classes(make_scene, fake_detector_cls, fake_inpainter):
    img = make_scene(cars=((5, 5, 20, 20),))
    res = PeopleRemover(fake_detector_cls(score=0.5), fake_inpainter, min_score=0.7).remove([img])[0]
    assert res.status == "nothing_to_remove"
    res = PeopleRemover(fake_detector_cls(score=0.5), fake_inpainter, min_score=0.4,
                        classes=("car",), strategy="box").remove([img])[0]
    assert res.status == "inpainted" and res.hole_mask[5:20, 5:20].all() and res.hole_mask.sum() == 225


def test_large_crop_policies(make_scene, fake_detector, fake_inpainter):
    img = make_scene(h=64, w=64, people=((0, 0, 64, 40),))   # 62.5 % of the image
    res = PeopleRemover(fake_detector, fake_inpainter, large_crop="skip").remove([img])[0]
    assert res.status == "skipped_large_crop" and res.large_crop_fraction > 0.5
    np.testing.assert_array_equal(res.output, img)
    with pytest.warns(LargeCropWarning):
        res = PeopleRemover(fake_detector, fake_inpainter, large_crop="warn").remove([img])[0]
    assert res.status == "inpainted" and res.message.startswith("warning")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = PeopleRemover(fake_detector, fake_inpainter, large_crop="process").remove([img])[0]
    assert res.status == "inpainted"
    _outside_identical(res, img)


def test_batches_follow_detector_batch_size(make_scene, fake_detector_cls, fake_inpainter):
    det = fake_detector_cls(batch_size=2)
    imgs = [make_scene(people=((10 + i, 10, 40, 30),)) for i in range(3)]
    results = PeopleRemover(det, fake_inpainter, batch_size=2).remove(imgs)
    assert det.calls == [2, 1]                 # no padding here: MaskRCNN.detect pads itself
    assert len(results) == 3 and all(r.status == "inpainted" for r in results)
    for r, im in zip(results, imgs):
        _outside_identical(r, im)
    # three regions of one shape: fill batches of 2 and 1
    assert len(set(fake_inpainter.shapes)) == 1 and fake_inpainter.batch_calls == 2


def test_oracle_masks_need_no_detector(make_scene, fake_inpainter):
    img = make_scene(people=())
    hole = np.zeros(img.shape[:2], bool)
    hole[30:50, 40:70] = True
    inst = np.zeros(img.shape[:2] + (2,), bool)
    inst[5:15, 5:15, 0] = True
    inst[60:70, 90:100, 1] = True
    remover = PeopleRemover(None, fake_inpainter, strategy="dilated", dilation=2)
    r2d, r3d = remover.remove([img, img], hole_masks=[hole, inst])
    np.testing.assert_array_equal(r2d.hole_mask, hole)      # a 2-D hole is used as is
    assert r2d.detections is None and r2d.status == "inpainted"
    assert r3d.hole_mask.sum() > inst.sum() and r3d.hole_mask[inst.any(-1)].all()   # dilated
    for r in (r2d, r3d):
        _outside_identical(r, img)
    with pytest.raises(ValueError, match="no detector"):
        remover.remove([img])


def test_bad_arguments_are_clear(fake_detector, fake_inpainter):
    with pytest.raises(ValueError, match="unknown strategy"):
        PeopleRemover(strategy="blur")
    with pytest.raises(ValueError, match="large_crop"):
        PeopleRemover(large_crop="maybe")
    with pytest.raises(ValueError, match="RGB uint8"):
        PeopleRemover(fake_detector, fake_inpainter).remove([np.zeros((8, 8), np.float32)])


def test_region_shapes_are_bucketed_with_real_context(make_scene, fake_inpainter):
    img = make_scene(h=200, w=300, people=())
    holes = []
    for k in range(4):                      # four holes of slightly different sizes
        hole = np.zeros(img.shape[:2], bool)
        hole[80:100 + 3 * k, 100:121 + 2 * k] = True
        holes.append(hole)
    remover = PeopleRemover(None, fake_inpainter, batch_size=4)
    results = remover.remove([img] * 4, hole_masks=holes)
    assert len(set(fake_inpainter.shapes)) == 1 and fake_inpainter.shapes[0][:2] == (128, 128)
    assert fake_inpainter.batch_calls == 1
    for r, hole in zip(results, holes):
        _outside_identical(r, img)
        np.testing.assert_array_equal(r.hole_mask, hole)


def test_grow_stays_inside_image():
    from gone.pipeline import _grow
    assert _grow(10, 20, 30, 100) == (0, 30)
    assert _grow(40, 60, 40, 100) == (30, 70)
    assert _grow(90, 100, 40, 100) == (60, 100)
    assert _grow(0, 10, 64, 20) == (0, 20)
    assert _grow(5, 50, 20, 100) == (5, 50)


def test_inpainter_given_as_a_kind(make_scene, monkeypatch, fake_inpainter):
    from gone import inpainters
    made = []

    def make(kind, checkpoint=None, lama_weights=None):
        made.append((kind, checkpoint, lama_weights))
        fake_inpainter.description = f"fake {kind}"
        return fake_inpainter
    monkeypatch.setattr(inpainters, "make_inpainter", make)
    img = make_scene(people=())
    hole = np.zeros(img.shape[:2], bool)
    hole[30:50, 40:70] = True
    remover = PeopleRemover(None, "telea", inpaint_checkpoint="/ckpt")
    assert made == []                                   # built on first use only
    (res,) = remover.remove([img], hole_masks=[hole])
    assert made == [("telea", "/ckpt", None)] and remover.inpainter_description == "fake telea"
    _outside_identical(res, img)
    remover.remove([img], hole_masks=[hole])
    assert len(made) == 1
    assert PeopleRemover(None, fake_inpainter).inpainter is fake_inpainter   # objects as before
    assert PeopleRemover().inpainter_description == "fake auto"              # default: auto


@pytest.mark.parametrize("known_rows", [0, 1])
def test_a_hole_without_context_gets_the_documented_fallback(make_scene, known_rows):
    """PatchMatch has nothing to copy from a region that is all hole (it would fill it black):
    such a region (< MIN_KNOWN_CONTEXT known) is filled with the mean colour of the image's known
    pixels (of the whole image when nothing is known) and the result says so."""
    from gone.inpainters import make_inpainter
    from gone.pipeline import MIN_KNOWN_CONTEXT
    img = make_scene(h=128, w=128, people=())
    hole = np.ones(img.shape[:2], bool)
    hole[:known_rows] = False          # one known row of 128: 0.8 % < 1 %
    assert (~hole).mean() < MIN_KNOWN_CONTEXT
    (res,) = PeopleRemover(None, make_inpainter("patchmatch")).remove([img], hole_masks=[hole])
    expected = np.round((img[~hole] if known_rows else img.reshape(-1, 3)).mean(0)).astype(np.uint8)
    np.testing.assert_array_equal(res.output[hole], np.broadcast_to(expected, res.output[hole].shape))
    _outside_identical(res, img)
    assert res.status == "inpainted" and res.message.startswith("warning: ") and res.fallback
    assert ("whole image" in res.fallback) == (known_rows == 0)
