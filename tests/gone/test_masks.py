import numpy as np
import pytest

from gone import masks as M

# no Keras: the TensorFlow run covers it (the `jax` subset is for code on the backend)


def _dets(h=64, w=80):
    """Three hand-made instances: a person disc, a person rectangle, a car."""
    yy, xx = np.mgrid[:h, :w]
    disc = (yy - 20) ** 2 + (xx - 20) ** 2 <= 8 ** 2          # box (12, 12, 29, 29)
    rect = np.zeros((h, w), bool)
    rect[40:50, 50:70] = True
    car = np.zeros((h, w), bool)
    car[5:15, 60:75] = True
    masks = np.stack([disc, rect, car], -1)
    return {
        "rois": np.array([[12, 12, 29, 29], [38, 48, 52, 72], [5, 60, 15, 75]], np.int32),
        "class_ids": np.array([1, 1, 3], np.int32),
        "scores": np.array([0.95, 0.6, 0.99], np.float32),
        "masks": masks,
    }


def test_select_by_class_and_score():
    d = _dets()
    assert M.select_instances(d).tolist() == [True, True, False]
    assert M.select_instances(d, min_score=0.7).tolist() == [True, False, False]
    assert M.select_instances(d, classes=("car",)).tolist() == [False, False, True]
    assert M.select_instances(d, classes=(3, "person")).tolist() == [True, True, True]
    assert M.select_instances(d, classes=None, min_score=0.9).tolist() == [True, False, True]
    with pytest.raises(ValueError, match="unknown class"):
        M.select_instances(d, classes=("unicorn",))


def test_mask_strategy_is_union_of_selected():
    d = _dets()
    hole = M.hole_mask(d, (64, 80), strategy="mask")
    np.testing.assert_array_equal(hole, d["masks"][..., 0] | d["masks"][..., 1])
    hole = M.hole_mask(d, (64, 80), strategy="mask", min_score=0.7)
    np.testing.assert_array_equal(hole, d["masks"][..., 0])
    assert not M.hole_mask(d, (64, 80), strategy="mask", classes=("dog",)).any()


def test_box_strategy_covers_mask_and_equals_boxes():
    d = _dets()
    hole = M.hole_mask(d, (64, 80), strategy="box", classes=None)
    expected = np.zeros((64, 80), bool)
    for y1, x1, y2, x2 in d["rois"]:
        expected[y1:y2, x1:x2] = True
    np.testing.assert_array_equal(hole, expected)
    assert not (M.hole_mask(d, (64, 80), strategy="mask", classes=None) & ~hole).any()


@pytest.mark.parametrize("radius", [0, 1, 3, 7])
def test_dilation_grows_by_stated_radius_in_pixels(radius):
    d = _dets()
    hole = M.hole_mask(d, (64, 80), strategy="dilated", dilation=radius, min_score=0.7)
    # The disc of radius 8 grows into the disc of radius 8 + r (pixel centres, Euclidean).
    yy, xx = np.mgrid[:64, :80]
    dist = np.hypot(yy - 20, xx - 20)
    assert hole[dist <= 8 + radius - 1].all()          # grid rounding: within 1 px of 8 + r
    assert not hole[dist > 8 + radius + 1e-9].any()    # triangle inequality: never beyond 8 + r
    assert hole.sum() > d["masks"][..., 0].sum() or radius == 0
    # exact check against the Euclidean distance to the original mask
    from scipy import ndimage
    edt = ndimage.distance_transform_edt(~d["masks"][..., 0])
    np.testing.assert_array_equal(hole, edt <= radius)


def test_dilation_as_fraction_of_instance_size():
    d = _dets()
    # rect box is 14 x 24 -> larger side 24; 0.25 * 24 = 6 px
    assert M.dilation_radius(0.25, d["rois"][1]) == 6
    a = M.hole_mask(d, (64, 80), strategy="dilated", dilation=0.25, classes=None, min_score=0.65)
    b = M.hole_mask({k: v[[0, 2]] if k != "masks" else v[..., [0, 2]] for k, v in d.items()},
                    (64, 80), strategy="dilated", dilation=0, classes=None)
    # instance 0 (box side 17 -> r = round(4.25) = 4) and the car (side 15 -> r = 4)
    from scipy import ndimage
    e0 = ndimage.distance_transform_edt(~d["masks"][..., 0]) <= 4
    e2 = ndimage.distance_transform_edt(~d["masks"][..., 2]) <= 4
    np.testing.assert_array_equal(a, e0 | e2)
    assert (a & b).sum() == b.sum()


def test_dilation_at_image_border_and_parse():
    m = np.zeros((10, 10), bool)
    m[0, 0] = True
    out = M.dilate_mask(m, 2)
    assert out[2, 0] and out[0, 2] and out[1, 1] and not out[2, 2]
    assert M.parse_dilation("15") == 15 and M.parse_dilation("15px") == 15
    assert M.parse_dilation("5%") == pytest.approx(0.05) and M.parse_dilation("0.05") == 0.05
    with pytest.raises(ValueError, match="invalid dilation"):
        M.parse_dilation("big")


def test_large_crop_fraction_and_empty():
    hole = np.zeros((10, 20), bool)
    hole[:, :11] = True
    assert M.large_crop_fraction(hole) == pytest.approx(0.55)
    assert M.large_crop_fraction(hole) > M.LARGE_CROP_THRESHOLD
    empty = {"rois": np.zeros((0, 4), np.int32), "class_ids": np.zeros(0, np.int32),
             "scores": np.zeros(0, np.float32), "masks": np.zeros((10, 20, 0), bool)}
    for s in M.STRATEGIES:
        assert not M.hole_mask(empty, (10, 20), strategy=s, image=np.zeros((10, 20, 3), np.uint8)).any()


def test_detections_from_ground_truth_masks():
    d = _dets()
    oracle = M.detections_from_masks(d["masks"][..., :2])
    np.testing.assert_array_equal(oracle["rois"], [[12, 12, 29, 29], [40, 50, 50, 70]])
    assert oracle["class_ids"].tolist() == [1, 1]
    hole = M.hole_mask(oracle, (64, 80), strategy="mask")
    np.testing.assert_array_equal(hole, d["masks"][..., 0] | d["masks"][..., 1])


def test_bad_strategy():
    with pytest.raises(ValueError, match="unknown strategy"):
        M.hole_mask(_dets(), (64, 80), strategy="blob")


def _traces_scene():
    """Plain noisy ground; a person (bar) with a soft shadow at its feet, a handbag touching its
    hand, a car touching it (not a held class) and a backpack far from everyone."""
    from scipy import ndimage

    h, w = 64, 96
    rng = np.random.default_rng(0)
    ground = np.array([120.0, 160.0, 90.0]) + rng.normal(0, 3, (h, w, 1))
    person = np.zeros((h, w), bool)
    person[20:50, 20:28] = True
    shadow = np.zeros((h, w), bool)
    shadow[44:50, 28:52] = True
    bag = np.zeros((h, w), bool)
    bag[30:36, 28:33] = True
    car = np.zeros((h, w), bool)
    car[20:30, 8:20] = True
    backpack = np.zeros((h, w), bool)
    backpack[5:12, 70:80] = True
    img = ground * (1 - 0.5 * ndimage.gaussian_filter(shadow.astype(float), 1.5))[..., None]
    for m, colour in ((person, (250, 30, 30)), (bag, (30, 30, 250)), (car, (200, 200, 0)),
                      (backpack, (0, 200, 200))):
        img[m] = colour
    img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    names = M.coco_class_names()
    ids = [names.index(n) for n in ("person", "handbag", "car", "backpack")]
    det = M.detections_from_masks(np.stack([person, bag, car, backpack], -1), class_ids=ids)
    return img, det, shadow


def test_traces_adds_held_objects_and_shadow_to_the_dilated_hole():
    img, det, shadow = _traces_scene()
    selected, held_by, shadows = M.trace_parts(det, img, dilation=2)
    assert selected.tolist() == [True, False, False, False]
    assert held_by.tolist() == [-1, 0, -1, -1]          # the bag only: not the car, not far away
    assert (shadows[0] & shadow).sum() > 0.9 * shadow.sum()
    dilated = M.hole_mask(det, img.shape, strategy="dilated", dilation=2)
    traces = M.hole_mask(det, img.shape, strategy="traces", dilation=2, image=img)
    assert (traces >= dilated).all()
    masks = det["masks"]
    assert traces[masks[..., 1]].all() and traces[shadow].all()
    assert not traces[masks[..., 2] & ~dilated].any() and not traces[masks[..., 3]].any()
    assert M.HELD_OBJECT_CLASSES[:3] == ("backpack", "umbrella", "handbag")
    assert set(M.HELD_OBJECT_CLASSES) <= set(M.coco_class_names())


def test_traces_needs_the_image():
    img, det, _ = _traces_scene()
    with pytest.raises(ValueError, match="needs the image"):
        M.hole_mask(det, img.shape, strategy="traces")
    with pytest.raises(ValueError, match="image is"):
        M.hole_mask(det, (10, 10), strategy="traces", image=img)
