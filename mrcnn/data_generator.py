"""Training data for Mask R-CNN (numpy, backend-neutral): RPN targets, ground truth loading with
mini-masks and augmentation, and a `keras.utils.PyDataset` producing Matterport's seven
training inputs.

Faithful to Matterport's model.py (3deaec5): `build_rpn_targets` (including crowd handling and
the subsampling with numpy's legacy global RNG, so `np.random.seed` reproduces the original),
`load_image_gt`, and the batch layout of `data_generator`.
"""
import logging
import math

import keras
import numpy as np

from mrcnn import transform, utils

INPUT_NAMES = ("input_image", "input_image_meta", "input_rpn_match", "input_rpn_bbox",
               "input_gt_class_ids", "input_gt_boxes", "input_gt_masks")


def build_rpn_targets(image_shape, anchors, gt_class_ids, gt_boxes, config, random_state=None):
    """Label anchors (1 positive, -1 negative, 0 neutral) and compute the deltas of positives.

    anchors: [A, 4] pixels; gt_class_ids [G] (negative = crowd); gt_boxes [G, 4] pixels.
    random_state: a np.random.RandomState for the subsampling (the DataGenerator passes one per
    batch, so that a resumed run draws what the uninterrupted run drew); None uses numpy's
    legacy global RNG like the original.
    Returns rpn_match int32 [A] and rpn_bbox float64 [RPN_TRAIN_ANCHORS_PER_IMAGE, 4]
    (deltas / RPN_BBOX_STD_DEV of the positives, in anchor order, zero padded).
    """
    del image_shape  # unused, as in the original
    rpn_match = np.zeros([anchors.shape[0]], dtype=np.int32)
    rpn_bbox = np.zeros((config.RPN_TRAIN_ANCHORS_PER_IMAGE, 4))
    gt_class_ids = np.asarray(gt_class_ids)
    gt_boxes = np.asarray(gt_boxes)

    crowd_ix = np.where(gt_class_ids < 0)[0]
    if crowd_ix.shape[0] > 0:
        # Crowd boxes: anchors touching one are never negatives; crowds are not GT for positives.
        non_crowd_ix = np.where(gt_class_ids > 0)[0]
        crowd_boxes = gt_boxes[crowd_ix]
        gt_boxes = gt_boxes[non_crowd_ix]
        crowd_iou_max = np.amax(utils.compute_overlaps(anchors, crowd_boxes), axis=1)
        no_crowd_bool = crowd_iou_max < 0.001
    else:
        no_crowd_bool = np.ones([anchors.shape[0]], dtype=bool)

    overlaps = utils.compute_overlaps(anchors, gt_boxes)
    # Negatives first (IoU < 0.3, not in a crowd); overwritten below by positives.
    anchor_iou_argmax = np.argmax(overlaps, axis=1)
    anchor_iou_max = overlaps[np.arange(overlaps.shape[0]), anchor_iou_argmax]
    rpn_match[(anchor_iou_max < 0.3) & no_crowd_bool] = -1
    # Every GT box gets its best anchor(s), whatever the IoU (all anchors tied at the max).
    gt_iou_argmax = np.argwhere(overlaps == np.max(overlaps, axis=0))[:, 0]
    rpn_match[gt_iou_argmax] = 1
    rpn_match[anchor_iou_max >= 0.7] = 1

    # Balance: at most half positives, negatives fill up to RPN_TRAIN_ANCHORS_PER_IMAGE.
    # np.random.choice (legacy algorithm) on purpose: the same call sequence as the original.
    choice = (random_state or np.random).choice
    ids = np.where(rpn_match == 1)[0]
    extra = len(ids) - (config.RPN_TRAIN_ANCHORS_PER_IMAGE // 2)
    if extra > 0:
        rpn_match[choice(ids, extra, replace=False)] = 0
    ids = np.where(rpn_match == -1)[0]
    extra = len(ids) - (config.RPN_TRAIN_ANCHORS_PER_IMAGE - np.sum(rpn_match == 1))
    if extra > 0:
        rpn_match[choice(ids, extra, replace=False)] = 0

    # Deltas of the positives towards their best GT box (float64, as the original's loop).
    ids = np.where(rpn_match == 1)[0]
    gt = gt_boxes[anchor_iou_argmax[ids]].astype(np.float64)
    a = anchors[ids].astype(np.float64)
    gt_h = gt[:, 2] - gt[:, 0]
    gt_w = gt[:, 3] - gt[:, 1]
    gt_cy = gt[:, 0] + 0.5 * gt_h
    gt_cx = gt[:, 1] + 0.5 * gt_w
    a_h = a[:, 2] - a[:, 0]
    a_w = a[:, 3] - a[:, 1]
    a_cy = a[:, 0] + 0.5 * a_h
    a_cx = a[:, 1] + 0.5 * a_w
    deltas = np.stack([(gt_cy - a_cy) / a_h, (gt_cx - a_cx) / a_w,
                       np.log(gt_h / a_h), np.log(gt_w / a_w)], axis=1)
    rpn_bbox[:len(ids)] = deltas / config.RPN_BBOX_STD_DEV
    return rpn_match, rpn_bbox


class RandomFlipLeftRight:
    """Augmentation callable (image, masks) -> (image, masks): horizontal flip with probability p."""

    def __init__(self, p=0.5, seed=None):
        self.p = p
        self.rng = np.random.default_rng(seed)

    def __call__(self, image, masks):
        if self.rng.random() < self.p:
            return np.fliplr(image), np.fliplr(masks)
        return image, masks


def _apply_augmentation(augmentation, image, mask):
    """Apply a callable(image, masks) or an imgaug augmenter (Matterport's API) to both."""
    if hasattr(augmentation, "to_deterministic"):  # imgaug, as in the original
        import imgaug

        safe = {"Sequential", "SomeOf", "OneOf", "Sometimes", "Fliplr", "Flipud", "CropAndPad",
                "Affine", "PiecewiseAffine"}
        det = augmentation.to_deterministic()
        new_image = det.augment_image(image)
        new_mask = det.augment_image(mask.astype(np.uint8), hooks=imgaug.HooksImages(
            activator=lambda images, augmenter, parents, default: augmenter.__class__.__name__ in safe))
    elif callable(augmentation):
        new_image, new_mask = augmentation(image, mask)
    else:
        raise TypeError(f"augmentation must be a callable(image, masks) -> (image, masks) or an "
                        f"imgaug augmenter, got {type(augmentation).__name__}")
    new_image, new_mask = np.asarray(new_image), np.asarray(new_mask)
    if new_image.shape != image.shape or new_mask.shape != mask.shape:
        raise ValueError(f"augmentation changed the shapes: image {image.shape} -> {new_image.shape}, "
                         f"masks {mask.shape} -> {new_mask.shape}")
    return new_image, new_mask.astype(bool)


def load_image_gt(dataset, config, image_id, augment=False, augmentation=None, use_mini_mask=False,
                  rng=None):
    """Load, resize and augment one image with its ground truth.

    augment: Matterport's deprecated flag: random horizontal flip (50%).
    augmentation: callable(image, masks) -> (image, masks) or an imgaug augmenter.
    Returns image [H, W, 3] (resized), image_meta, class_ids [N], bbox [N, 4] int32 pixels,
    mask [H, W, N] bool (or MINI_MASK_SHAPE + (N,) with use_mini_mask).
    """
    image = dataset.load_image(image_id)
    mask, class_ids = dataset.load_mask(image_id)
    original_shape = image.shape
    image, window, scale, padding, crop = utils.resize_image(
        image, min_dim=config.IMAGE_MIN_DIM, min_scale=config.IMAGE_MIN_SCALE,
        max_dim=config.IMAGE_MAX_DIM, mode=config.IMAGE_RESIZE_MODE)
    # load_mask may return bool (Matterport's samples) or 0/1 uint8 masks: bool from here on.
    mask = utils.resize_mask(mask, scale, padding, crop).astype(bool)

    if augment:
        rng = rng if rng is not None else np.random.default_rng()
        if rng.integers(0, 2):
            image = np.fliplr(image)
            mask = np.fliplr(mask)
    if augmentation is not None:
        image, mask = _apply_augmentation(augmentation, image, mask)

    # Instances whose mask vanished (crop / augmentation) are dropped.
    keep = np.sum(mask, axis=(0, 1)) > 0
    mask = mask[:, :, keep]
    class_ids = np.asarray(class_ids)[keep]
    bbox = utils.extract_bboxes(mask)

    # Classes of this image's source dataset.
    active_class_ids = np.zeros([dataset.num_classes], dtype=np.int32)
    source_class_ids = dataset.source_class_ids[dataset.image_info[image_id]["source"]]
    active_class_ids[source_class_ids] = 1

    if use_mini_mask:
        mask = utils.minimize_mask(bbox, mask, config.MINI_MASK_SHAPE)

    image_meta = transform.compose_image_meta(image_id, original_shape, image.shape, window, scale,
                                              active_class_ids)
    return image, image_meta, class_ids, bbox, mask


def training_anchors(config):
    """Pixel anchors [A, 4] of config.IMAGE_SHAPE (the order the RPN outputs use)."""
    backbone_shapes = transform.compute_backbone_shapes(config, config.IMAGE_SHAPE)
    return utils.generate_pyramid_anchors(config.RPN_ANCHOR_SCALES, config.RPN_ANCHOR_RATIOS,
                                          backbone_shapes, config.BACKBONE_STRIDES,
                                          config.RPN_ANCHOR_STRIDE)


class DataGenerator(keras.utils.PyDataset):
    """Batches of Matterport's training inputs, as `(inputs,)` with inputs the list
    [image (molded float32), image_meta, rpn_match [B, A, 1], rpn_bbox, gt_class_ids [B, MAX_GT],
    gt_boxes [B, MAX_GT, 4] pixels, gt_masks [B, h, w, MAX_GT] bool] (names in INPUT_NAMES).

    Images are drawn from an endless stream of passes over the dataset (reshuffled each pass with
    shuffle=True), so `steps_per_epoch` may exceed the dataset size, as Matterport's generator.
    Images without instances are skipped; failing images are logged and skipped (at most 5).
    Extra keyword arguments (workers, use_multiprocessing, max_queue_size) go to PyDataset.
    """

    def __init__(self, dataset, config, shuffle=True, augment=False, augmentation=None, batch_size=None,
                 no_augmentation_sources=None, steps_per_epoch=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not hasattr(dataset, "image_ids") or len(dataset.image_ids) == 0:
            raise ValueError("DataGenerator: the dataset has no images (did you call dataset.prepare()?)")
        self.dataset = dataset
        self.config = config
        self.shuffle = shuffle
        self.augment = augment
        self.augmentation = augmentation
        self.batch_size = int(batch_size or config.BATCH_SIZE)
        self.no_augmentation_sources = set(no_augmentation_sources or [])
        self.steps_per_epoch = steps_per_epoch
        self.seed = int(np.random.SeedSequence(seed).generate_state(1)[0]) if seed is None else int(seed)
        self.anchors = training_anchors(config)
        self.epoch = 0
        self.error_count = 0

    def __len__(self):
        if self.steps_per_epoch:
            return int(self.steps_per_epoch)
        return int(math.ceil(len(self.dataset.image_ids) / self.batch_size))

    def on_epoch_end(self):
        self.epoch += 1

    def _image_id_at(self, position):
        ids = self.dataset.image_ids
        n = len(ids)
        pass_index, offset = divmod(position, n)
        if self.shuffle:
            order = np.random.RandomState((self.seed + pass_index) % 2 ** 32).permutation(n)
            return ids[order[offset]]
        return ids[offset]

    def load(self, image_id, rng, random_state=None):
        """(image, image_meta, class_ids, boxes, masks, rpn_match, rpn_bbox) of one image, or None
        when it has no instance."""
        source = self.dataset.image_info[image_id]["source"]
        augmentation = None if source in self.no_augmentation_sources else self.augmentation
        image, image_meta, gt_class_ids, gt_boxes, gt_masks = load_image_gt(
            self.dataset, self.config, image_id, augment=self.augment, augmentation=augmentation,
            use_mini_mask=self.config.USE_MINI_MASK, rng=rng)
        if not np.any(gt_class_ids > 0):
            return None
        rpn_match, rpn_bbox = build_rpn_targets(image.shape, self.anchors, gt_class_ids, gt_boxes,
                                                self.config, random_state=random_state)
        if gt_boxes.shape[0] > self.config.MAX_GT_INSTANCES:
            ids = rng.choice(np.arange(gt_boxes.shape[0]), self.config.MAX_GT_INSTANCES, replace=False)
            gt_class_ids, gt_boxes, gt_masks = gt_class_ids[ids], gt_boxes[ids], gt_masks[:, :, ids]
        return image, image_meta, gt_class_ids, gt_boxes, gt_masks, rpn_match, rpn_bbox

    def __getitem__(self, index):
        cfg = self.config
        b_size = self.batch_size
        start = (self.epoch * len(self) + int(index)) * b_size
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        # The RPN subsampling's legacy RandomState, from the same (seed, epoch, step).
        random_state = np.random.RandomState(np.random.SeedSequence([self.seed, self.epoch, int(index)])
                                             .generate_state(4))
        items = []
        position = start
        tried = 0
        while len(items) < b_size:
            image_id = self._image_id_at(position)
            position += 1
            tried += 1
            if tried > b_size + 10 * len(self.dataset.image_ids):
                raise RuntimeError("DataGenerator: no image with instances found in the dataset")
            try:
                item = self.load(image_id, rng, random_state)
            except Exception:
                logging.exception("Error processing image %s", self.dataset.image_info[image_id])
                self.error_count += 1
                if self.error_count > 5:
                    raise
                continue
            if item is not None:
                items.append(item)

        image_shape = items[0][0].shape
        mask_hw = items[0][4].shape[:2]
        images = np.zeros((b_size,) + image_shape, np.float32)
        metas = np.zeros((b_size, cfg.IMAGE_META_SIZE), np.float32)
        rpn_match = np.zeros((b_size, self.anchors.shape[0], 1), np.int32)
        rpn_bbox = np.zeros((b_size, cfg.RPN_TRAIN_ANCHORS_PER_IMAGE, 4), np.float32)
        class_ids = np.zeros((b_size, cfg.MAX_GT_INSTANCES), np.int32)
        boxes = np.zeros((b_size, cfg.MAX_GT_INSTANCES, 4), np.int32)
        masks = np.zeros((b_size,) + mask_hw + (cfg.MAX_GT_INSTANCES,), bool)
        for b, (image, meta, ids, bbox, mask, match, deltas) in enumerate(items):
            if image.shape != image_shape:
                raise ValueError(f"DataGenerator: images of one batch differ in size ({image.shape} vs "
                                 f"{image_shape}); use IMAGE_RESIZE_MODE 'square' or 'crop'")
            images[b] = transform.mold_image(image.astype(np.float32), cfg)
            metas[b] = meta
            rpn_match[b, :, 0] = match
            rpn_bbox[b] = deltas
            class_ids[b, :ids.shape[0]] = ids
            boxes[b, :bbox.shape[0]] = bbox
            masks[b, :, :, :mask.shape[-1]] = mask
        return ((images, metas, rpn_match, rpn_bbox, class_ids, boxes, masks),)


def data_generator(dataset, config, shuffle=True, augment=False, augmentation=None, batch_size=1,
                   no_augmentation_sources=None, seed=None):
    """Matterport-style endless Python generator yielding (inputs, []) batches."""
    gen = DataGenerator(dataset, config, shuffle=shuffle, augment=augment, augmentation=augmentation,
                        batch_size=batch_size, no_augmentation_sources=no_augmentation_sources, seed=seed)
    index = 0
    while True:
        yield gen[index][0], []
        index += 1
        if index >= len(gen):
            gen.on_epoch_end()
            index = 0
