"""load_image_gt and DataGenerator: Matterport's training input layout, mini-masks, flips."""
import numpy as np
import pytest

from mrcnn import utils
from mrcnn.config import Config
from mrcnn.data_generator import (INPUT_NAMES, DataGenerator, RandomFlipLeftRight, build_rpn_targets,
                                  data_generator, load_image_gt, training_anchors)

pytestmark = pytest.mark.jax  # numpy only


class BoxesDataset(utils.Dataset):
    """Images with one or two axis-aligned rectangles (class 1 or 2); image 2 has none."""

    def load(self, size=(48, 80)):
        self.add_class("boxes", 1, "a")
        self.add_class("boxes", 2, "b")
        self.add_image("boxes", 0, None, rects=[(1, 5, 10, 25, 30)], size=size)
        self.add_image("boxes", 1, None, rects=[(2, 20, 40, 40, 70), (1, 2, 2, 12, 20)], size=size)
        self.add_image("boxes", 2, None, rects=[], size=size)

    def load_image(self, image_id):
        info = self.image_info[image_id]
        img = np.zeros(info["size"] + (3,), np.uint8)
        img[..., 0] = np.arange(info["size"][1])[None, :]  # a left-right gradient to see flips
        for k, (c, y1, x1, y2, x2) in enumerate(info["rects"]):
            img[y1:y2, x1:x2, 1] = 100 * c
        return img

    def load_mask(self, image_id):
        info = self.image_info[image_id]
        masks = np.zeros(info["size"] + (len(info["rects"]),), bool)
        for k, (c, y1, x1, y2, x2) in enumerate(info["rects"]):
            masks[y1:y2, x1:x2, k] = True
        return masks, np.array([r[0] for r in info["rects"]], np.int32)


def _config(**kw):
    fields = dict(NAME="boxes", NUM_CLASSES=3, IMAGES_PER_GPU=2, IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=64,
                  RPN_ANCHOR_SCALES=(8, 16, 32, 64, 128), MAX_GT_INSTANCES=3, MINI_MASK_SHAPE=(16, 16),
                  RPN_TRAIN_ANCHORS_PER_IMAGE=32, BACKBONE="resnet50")
    fields.update(kw)
    return Config(**fields)


@pytest.fixture
def dataset():
    ds = BoxesDataset()
    ds.load()
    ds.prepare()
    return ds


def test_load_image_gt_resizes_and_minimizes(dataset):
    cfg = _config()
    image, meta, class_ids, bbox, mask = load_image_gt(dataset, cfg, 1, use_mini_mask=True)
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    assert meta.shape == (cfg.IMAGE_META_SIZE,)
    np.testing.assert_array_equal(meta[1:4], [48, 80, 3])
    np.testing.assert_array_equal(meta[4:7], [64, 64, 3])
    np.testing.assert_array_equal(meta[12:], [1, 1, 1])
    np.testing.assert_array_equal(class_ids, [2, 1])
    assert bbox.dtype == np.int32 and bbox.shape == (2, 4)
    assert mask.shape == (16, 16, 2) and mask.dtype == bool
    # A full rectangle's mini mask is all set.
    assert mask.all()
    # Full-size masks when use_mini_mask is False; boxes agree with them.
    _, _, _, bbox_full, mask_full = load_image_gt(dataset, cfg, 1, use_mini_mask=False)
    assert mask_full.shape == (64, 64, 2)
    np.testing.assert_array_equal(utils.extract_bboxes(mask_full), bbox_full)


def test_flip_augmentation_flips_image_and_masks(dataset):
    cfg = _config()
    plain = load_image_gt(dataset, cfg, 0)
    flipped = load_image_gt(dataset, cfg, 0, augmentation=RandomFlipLeftRight(p=1.0))
    np.testing.assert_array_equal(flipped[0], plain[0][:, ::-1])
    np.testing.assert_array_equal(flipped[4], plain[4][:, ::-1])
    w = plain[0].shape[1]
    np.testing.assert_array_equal(flipped[3][:, [1, 3]], w - plain[3][:, [3, 1]])
    custom = load_image_gt(dataset, cfg, 0, augmentation=lambda im, m: (im[::-1], m[::-1]))
    np.testing.assert_array_equal(custom[4], plain[4][::-1])
    with pytest.raises(ValueError, match="augmentation changed the shapes"):
        load_image_gt(dataset, cfg, 0, augmentation=lambda im, m: (im[:10], m[:10]))
    with pytest.raises(TypeError, match="augmentation must be"):
        load_image_gt(dataset, cfg, 0, augmentation="flip")


def test_data_generator_batch_layout(dataset):
    cfg = _config()
    gen = DataGenerator(dataset, cfg, shuffle=False, seed=0)
    assert len(gen) == 2
    (inputs,) = gen[0]
    arrays = dict(zip(INPUT_NAMES, inputs))
    anchors = training_anchors(cfg)
    assert arrays["input_image"].shape == (2, 64, 64, 3) and arrays["input_image"].dtype == np.float32
    assert arrays["input_image_meta"].shape == (2, cfg.IMAGE_META_SIZE)
    assert arrays["input_rpn_match"].shape == (2, anchors.shape[0], 1)
    assert arrays["input_rpn_bbox"].shape == (2, 32, 4)
    assert arrays["input_gt_class_ids"].shape == (2, 3) and arrays["input_gt_class_ids"].dtype == np.int32
    assert arrays["input_gt_boxes"].shape == (2, 3, 4)
    assert arrays["input_gt_masks"].shape == (2, 16, 16, 3) and arrays["input_gt_masks"].dtype == bool
    # Unshuffled: images 0 and 1, molded with MEAN_PIXEL; zero padding beyond the instances.
    image0, _, ids0, boxes0, _ = load_image_gt(dataset, cfg, 0, use_mini_mask=True)
    np.testing.assert_allclose(arrays["input_image"][0], image0 - cfg.MEAN_PIXEL, atol=1e-4)
    np.testing.assert_array_equal(arrays["input_gt_class_ids"], [[1, 0, 0], [2, 1, 0]])
    np.testing.assert_array_equal(arrays["input_gt_boxes"][0, 0], boxes0[0])
    assert not arrays["input_gt_boxes"][0, 1:].any()
    # RPN targets are those of build_rpn_targets (negatives are subsampled at random).
    match, deltas = build_rpn_targets(image0.shape, anchors, ids0, boxes0, cfg)
    got = arrays["input_rpn_match"][0, :, 0]
    np.testing.assert_array_equal(got == 1, match == 1)
    assert (got == -1).sum() == (match == -1).sum() == 32 - (match == 1).sum()
    np.testing.assert_allclose(arrays["input_rpn_bbox"][0], deltas, rtol=1e-6)
    assert (match == 1).sum() >= 1


def test_images_without_instances_are_skipped(dataset):
    cfg = _config(IMAGES_PER_GPU=3)
    gen = DataGenerator(dataset, cfg, shuffle=False)
    (inputs,) = gen[0]
    # Image 2 has no instance: the batch holds images 0, 1 and then 0 again (next pass).
    np.testing.assert_array_equal(inputs[1][:, 0], [0, 1, 0])


def test_shuffled_passes_cover_the_dataset_and_are_reproducible(dataset):
    cfg = _config(IMAGES_PER_GPU=1)
    ids_a = [int(DataGenerator(dataset, cfg, shuffle=True, seed=5, steps_per_epoch=6)[i][0][1][0, 0])
             for i in range(6)]
    ids_b = [int(DataGenerator(dataset, cfg, shuffle=True, seed=5, steps_per_epoch=6)[i][0][1][0, 0])
             for i in range(6)]
    assert ids_a == ids_b
    assert set(ids_a) == {0, 1}


def test_matterport_style_generator(dataset):
    cfg = _config()
    gen = data_generator(dataset, cfg, shuffle=False, batch_size=2)
    inputs, outputs = next(gen)
    assert len(inputs) == 7 and outputs == []


def test_empty_dataset_is_a_clear_error():
    ds = BoxesDataset()
    ds.prepare()
    with pytest.raises(ValueError, match="no images"):
        DataGenerator(ds, _config())
