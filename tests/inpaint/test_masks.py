"""Training masks: the original random bbox + bbox2mask, free-form strokes, user mask files."""
import numpy as np
import pytest

from inpaint.masks import (MaskSampler, bbox2mask, free_form_mask, load_user_mask, patch_around_hole,
                           random_bbox)

CONFIG = dict(IMG_SHAPES=[256, 256, 3], HEIGHT=128, WIDTH=128, MAX_DELTA_HEIGHT=32, MAX_DELTA_WIDTH=32,
              VERTICAL_MARGIN=0, HORIZONTAL_MARGIN=0)


def test_random_bbox_range_and_seed():
    boxes = [random_bbox(CONFIG, np.random.default_rng(s)) for s in range(300)]
    tops = [b[0] for b in boxes]
    lefts = [b[1] for b in boxes]
    assert all(b[2:] == (128, 128) for b in boxes)
    # tf.random_uniform(minval=0, maxval=256-128): upper bound exclusive
    assert min(tops) >= 0 and max(tops) <= 127 and min(lefts) >= 0 and max(lefts) <= 127
    assert len(set(tops)) > 50
    assert random_bbox(CONFIG, 5) == random_bbox(CONFIG, 5)
    margins = dict(CONFIG, VERTICAL_MARGIN=20, HORIZONTAL_MARGIN=30)
    for seed in range(50):
        t, l, _, _ = random_bbox(margins, seed)
        assert 20 <= t < 256 - 20 - 128 and 30 <= l < 256 - 30 - 128
    with pytest.raises(ValueError, match="does not fit"):
        random_bbox(dict(CONFIG, HEIGHT=256), 0)


def test_bbox2mask_shrinks_by_max_delta():
    bbox = (40, 88, 128, 128)
    mask = bbox2mask(bbox, CONFIG, delta=(6, 13))
    assert mask.shape == (1, 256, 256, 1) and mask.dtype == np.float32
    rows = np.flatnonzero(mask[0, :, :, 0].any(1))
    cols = np.flatnonzero(mask[0, :, :, 0].any(0))
    assert (rows[0], rows[-1] + 1, cols[0], cols[-1] + 1) == (46, 162, 101, 203)
    deltas = set()
    for seed in range(200):
        m = bbox2mask(bbox, CONFIG, np.random.default_rng(seed))[0, :, :, 0]
        r = np.flatnonzero(m.any(1))
        c = np.flatnonzero(m.any(0))
        deltas.add((int(r[0] - 40), int(c[0] - 88)))
        assert r[-1] + 1 == 40 + 128 - (r[0] - 40) and c[-1] + 1 == 88 + 128 - (c[0] - 88)
    dh = {d[0] for d in deltas}
    assert min(dh) == 0 and max(dh) == 16  # randint(32 // 2 + 1)


def test_free_form_mask_seeded():
    a = free_form_mask(128, 96, 3)
    b = free_form_mask(128, 96, 3)
    c = free_form_mask(128, 96, 4)
    assert a.shape == (1, 128, 96, 1) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert set(np.unique(a)) <= {0.0, 1.0}
    assert 0.005 < a.mean() < 0.8


def test_user_mask_file_and_local_patch(tmp_path):
    from PIL import Image
    image = np.zeros((100, 120, 3), np.uint8)
    image[10:30, 80:110] = 255
    path = tmp_path / "mask.png"
    Image.fromarray(image).save(path)
    mask = load_user_mask(str(path), 100, 120)
    assert mask.shape == (1, 100, 120, 1) and mask.sum() == 20 * 30
    resized = load_user_mask(str(path), 50, 60)
    assert resized.shape == (1, 50, 60, 1) and resized.sum() == 10 * 15
    config = dict(IMG_SHAPES=[100, 120, 3], HEIGHT=64, WIDTH=64)
    t, l, h, w = patch_around_hole(mask, config)
    assert (h, w) == (64, 64) and 0 <= t <= 36 and 0 <= l <= 56
    assert t <= 10 and t + h >= 30 and l <= 80 and l + w >= 110  # the patch covers the hole
    sampler = MaskSampler(config, "user", 0, [str(path)])
    sample = sampler.sample()
    np.testing.assert_array_equal(sample.mask, mask)
    with pytest.raises(FileNotFoundError, match="mask file not found"):
        load_user_mask(str(tmp_path / "nope.png"), 10, 10)
    with pytest.raises(ValueError, match="mask kind"):
        MaskSampler(config, "circle")


def test_mask_sampler_resumes_from_rng_state():
    sampler = MaskSampler(CONFIG, "bbox", 11)
    sampler.sample()
    state = sampler.rng.bit_generator.state
    expected = [sampler.sample() for _ in range(3)]
    other = MaskSampler(CONFIG, "bbox", 0)
    other.rng.bit_generator.state = state
    for want in expected:
        got = other.sample()
        assert got.bbox == want.bbox
        np.testing.assert_array_equal(got.mask, want.mask)
    free = MaskSampler(CONFIG, "free_form", 2).sample()
    assert free.bbox[2:] == (128, 128) and free.mask.shape == (1, 256, 256, 1)
