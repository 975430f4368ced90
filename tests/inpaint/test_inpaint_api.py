"""Public API: InpaintModel.from_checkpoint / inpaint / inpaint_batch on RGB uint8 images."""
import numpy as np
import pytest

from inpaint import InpaintConfig, InpaintModel
from inpaint.model import InpaintError, attention_matrix_bytes, hole_crop_box

pytestmark = pytest.mark.jax


@pytest.fixture(scope="module")
def model(deepfill_release_ckpt):
    return InpaintModel.from_checkpoint(deepfill_release_ckpt)


@pytest.fixture(scope="module")
def random_model():
    return InpaintModel()


@pytest.fixture(scope="module")
def infer_cases(deepfill_reference_dir):
    with np.load(deepfill_reference_dir / "infer_cases.npz") as data:
        return {k: data[k] for k in data.files}


def _scene(h, w, seed=0):
    rng = np.random.RandomState(seed)
    image = rng.randint(0, 256, (h, w, 3)).astype(np.uint8)
    hole = np.zeros((h, w), bool)
    hole[h // 4:h // 2, w // 3:w // 2 + 3] = True
    return image, hole


def test_reference_case_through_public_api(model, infer_cases):
    # One golden case (200x320, not square) through RGB in / out, a uint8 3-channel mask and a
    # bool 2-D one; both cases are checked at the network level on both backends in
    # test_generator_reference.py, so a second one here would only add a trace.
    assert model.weights_source.endswith("release_like_ckpt")
    image = infer_cases["case1_image_bgr"][..., ::-1]   # public API is RGB
    mask = infer_cases["case1_mask"]                     # uint8, 3-channel, 255 = hole
    (out,) = model.inpaint_batch([image], [mask])
    hole = mask[..., 0] > 127
    ref = infer_cases["case1_output_bgr"][..., ::-1]
    assert out.dtype == np.uint8 and out.shape == image.shape
    assert np.array_equal(out[~hole], image[~hole])  # identical to the input outside the hole
    assert np.abs(out[hole].astype(int) - ref[hole]).max() <= 1
    single = model.inpaint(image, mask[..., 0] > 0)  # bool 2-D mask
    assert np.array_equal(single, out)


def test_mask_forms_agree(random_model):
    image, hole = _scene(40, 48)
    u8 = hole.astype(np.uint8) * 255
    outs = [random_model.inpaint(image, m) for m in (hole, u8, np.dstack([u8] * 3), u8[..., None])]
    for out in outs[1:]:
        assert np.array_equal(out, outs[0])
    assert np.array_equal(outs[0][~hole], image[~hole]) and not np.array_equal(outs[0][hole], image[hole])


def test_any_size_is_padded_not_cropped(random_model):
    image, hole = _scene(37, 53, seed=1)
    out = random_model.inpaint(image, hole)
    assert out.shape == image.shape and np.array_equal(out[~hole], image[~hole])


def test_batch_equals_single_calls(random_model):
    scenes = [_scene(32, 40, 2), _scene(32, 40, 3), _scene(30, 41, 4)]
    scenes[1][1][:] = False
    scenes[1][1][2:10, 20:35] = True  # different hole in the same-size batch
    batch = random_model.inpaint_batch([s[0] for s in scenes], [s[1] for s in scenes], batch_size=2)
    for (image, hole), out in zip(scenes, batch):
        np.testing.assert_allclose(out.astype(int), random_model.inpaint(image, hole).astype(int), atol=1)


def test_empty_hole_and_crop_mode(random_model):
    image, hole = _scene(64, 96, 5)
    assert np.array_equal(random_model.inpaint(image, np.zeros_like(hole)), image)
    cropped = random_model.inpaint(image, hole, crop=True, margin=8)
    assert cropped.shape == image.shape and np.array_equal(cropped[~hole], image[~hole])
    assert hole_crop_box(hole, margin=8) == (8, 24, 40, 59)
    assert attention_matrix_bytes(1024, 1024) == 1 << 30


def test_bad_input_messages(random_model):
    image, hole = _scene(32, 32)
    with pytest.raises(InpaintError, match="uint8 RGB"):
        random_model.inpaint(image.astype(np.float32), hole)
    with pytest.raises(InpaintError, match="HxWx3"):
        random_model.inpaint(image[..., 0], hole)
    with pytest.raises(InpaintError, match="mask is 16x32 but the image is 32x32"):
        random_model.inpaint(image, hole[:16])
    with pytest.raises(InpaintError, match="bool or uint8"):
        random_model.inpaint(image, hole.astype(np.float64))
    with pytest.raises(InpaintError, match="2 images but 1 masks"):
        random_model.inpaint_batch([image, image], [hole])


def test_random_and_native_round_trip(tmp_path, model, infer_cases):
    assert InpaintModel().weights_source == "random"
    path = model.save(tmp_path / "deepfill.npz")
    again = InpaintModel.from_checkpoint(path)
    assert again.weights_source == str(path) and isinstance(again.config, InpaintConfig)
    image, hole = _scene(32, 48, 6)
    assert np.array_equal(again.inpaint(image, hole), model.inpaint(image, hole))
