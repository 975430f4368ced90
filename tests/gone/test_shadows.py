"""gone.shadows: cast shadows found from pixels (tiny hand-made scenes, numpy only)."""
import numpy as np
import pytest
from scipy import ndimage

from gone.shadows import cast_shadow_mask, cast_shadows



def _scene(ground):
    """A 'person' (a bright 30x8 bar standing at row 50) on `ground` (HxWx3 float), its soft
    shadow (darkened by up to 50 %, edge blurred as in data_prep.synth) from its feet to the
    right, and a dark blob of the same darkening that does not touch the feet. The shadow and
    blob masks are the pixels darkened by more than 1 % (synth's ground-truth definition)."""
    h, w = ground.shape[:2]
    person = np.zeros((h, w), bool)
    person[20:50, 20:28] = True
    shadow = np.zeros((h, w), bool)
    shadow[44:50, 28:52] = True          # lies on the ground beside the lower legs, touching them
    blob = np.zeros((h, w), bool)
    blob[8:16, 56:70] = True
    shade = 0.5 * ndimage.gaussian_filter((shadow | blob).astype(np.float64), 1.5)
    img = ground * (1 - shade)[..., None]
    img[person] = (250, 30, 30)
    dark = (shade > 0.01) & ~person
    near = ndimage.binary_dilation(shadow, iterations=6)
    return (np.clip(np.rint(img), 0, 255).astype(np.uint8), person, dark & near, dark & ~near)


def _noisy(colour, h=64, w=80, seed=0):
    rng = np.random.default_rng(seed)
    return np.asarray(colour, np.float64) + rng.normal(0, 3, (h, w, 1))


def test_finds_the_attached_shadow_not_the_detached_blob():
    img, person, shadow, blob = _scene(_noisy((120, 160, 90)))
    found = cast_shadow_mask(img, person)
    recall = (found & shadow).sum() / shadow.sum()
    precision = (found & shadow).sum() / found.sum()
    assert recall > 0.9 and precision > 0.9
    assert not (found & blob).any()
    assert not (found & person).any()


def test_two_colour_ground_shadow_keeps_chroma():
    ground = _noisy((200, 150, 140))
    ground[:, ::2] = ground[:, ::2] * 0 + np.array([60, 70, 200])   # stripes of another colour
    img, person, shadow, _ = _scene(ground)
    found = cast_shadow_mask(img, person)
    assert (found & shadow).sum() / shadow.sum() > 0.8
    assert (found & shadow).sum() / found.sum() > 0.8


def test_no_shadow_on_plain_ground_and_removed_pixels_excluded():
    ground = np.clip(np.rint(_noisy((120, 160, 90))), 0, 255).astype(np.uint8)
    person = np.zeros(ground.shape[:2], bool)
    person[20:50, 20:28] = True
    assert cast_shadow_mask(ground, person).sum() == 0
    img, person, shadow, _ = _scene(_noisy((120, 160, 90)))
    bag = np.zeros_like(person)
    bag[46:50, 30:38] = True             # e.g. a held object standing in the shadow
    found = cast_shadows(img, person[..., None], removed=person | bag)
    assert not (found & bag).any() and (found & shadow & ~bag).sum() > 0.8 * (shadow & ~bag).sum()


def test_bad_input_and_empty_person():
    img, person, _, _ = _scene(_noisy((120, 160, 90)))
    assert not cast_shadow_mask(img, np.zeros_like(person)).any()
    with pytest.raises(ValueError, match="unknown shadow parameter"):
        cast_shadow_mask(img, person, darkness=3)
    with pytest.raises(ValueError, match="HxW person mask"):
        cast_shadow_mask(img, person[:10])
