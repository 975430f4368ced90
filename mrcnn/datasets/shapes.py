"""Synthetic shapes (Matterport's train_shapes notebook / samples/shapes/shapes.py): images of a
random background colour with 1-4 squares, circles and triangles; one instance mask each.

Shapes are drawn with skimage.draw instead of OpenCV, so edge pixels may differ slightly from the
notebook's cv2 rasterisation; the random draws (and their order) are the notebook's. Pass
`seed` to load_shapes for a deterministic dataset (a private random.Random; without a seed the
global `random` module is used, as in the notebook).
"""
import math
import random

import numpy as np
import skimage.draw

from mrcnn import utils
from mrcnn.config import Config

SHAPE_NAMES = ("square", "circle", "triangle")


class ShapesConfig(Config):
    """Notebook configuration for the shapes dataset (small images, small anchors)."""
    NAME = "shapes"
    GPU_COUNT = 1
    IMAGES_PER_GPU = 8
    NUM_CLASSES = 1 + 3  # background + 3 shapes
    IMAGE_MIN_DIM = 128
    IMAGE_MAX_DIM = 128
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
    TRAIN_ROIS_PER_IMAGE = 32
    STEPS_PER_EPOCH = 100
    VALIDATION_STEPS = 5


class ShapesDataset(utils.Dataset):
    """Random shapes; images are generated on the fly from the stored shape specifications."""

    def load_shapes(self, count, height, width, seed=None, buffer=20):
        """Add `count` random images of height x width.

        buffer: margin (pixels) of shape centres from the border and the smallest shape size;
        the notebook's 20 needs height >= 80. Lower it for tiny images.
        """
        if height // 4 < buffer or min(height, width) < 2 * buffer + 1:
            raise ValueError(f"load_shapes: {height}x{width} is too small for buffer={buffer} "
                             f"(needs height >= 4*buffer and width > 2*buffer); pass a smaller buffer")
        rng = random.Random(seed) if seed is not None else random
        for name_id, name in enumerate(SHAPE_NAMES, start=1):
            self.add_class("shapes", name_id, name)
        for i in range(count):
            bg_color, shapes = self.random_image(height, width, rng=rng, buffer=buffer)
            self.add_image("shapes", image_id=i, path=None, width=width, height=height,
                           bg_color=bg_color, shapes=shapes)

    def load_image(self, image_id):
        """RGB uint8 [H, W, 3] drawn from the stored specification."""
        info = self.image_info[image_id]
        bg_color = np.array(info["bg_color"]).reshape([1, 1, 3])
        image = np.ones([info["height"], info["width"], 3], dtype=np.uint8)
        image = image * bg_color.astype(np.uint8)
        for shape, color, dims in info["shapes"]:
            image = self.draw_shape(image, shape, dims, color)
        return image

    def image_reference(self, image_id):
        info = self.image_info[image_id]
        if info["source"] == "shapes":
            return info["shapes"]
        return super().image_reference(image_id)

    def load_mask(self, image_id):
        """Bool masks [H, W, N] (later shapes occlude earlier ones) and int32 class ids."""
        info = self.image_info[image_id]
        shapes = info["shapes"]
        count = len(shapes)
        mask = np.zeros([info["height"], info["width"], count], dtype=np.uint8)
        for i, (shape, _, dims) in enumerate(shapes):
            mask[:, :, i:i + 1] = self.draw_shape(mask[:, :, i:i + 1].copy(), shape, dims, 1)
        # Remove the parts hidden by shapes drawn later.
        occlusion = np.logical_not(mask[:, :, -1]).astype(np.uint8)
        for i in range(count - 2, -1, -1):
            mask[:, :, i] = mask[:, :, i] * occlusion
            occlusion = np.logical_and(occlusion, np.logical_not(mask[:, :, i]))
        names = [c["name"] for c in self.class_info]
        class_ids = np.array([names.index(s[0]) for s in shapes])
        return mask.astype(bool), class_ids.astype(np.int32)

    def draw_shape(self, image, shape, dims, color):
        """Draw a filled shape centred at (x, y) with size s (dims = (x, y, s)) into image."""
        x, y, s = dims
        rows, cols = image.shape[:2]
        if shape == "square":
            rr, cc = skimage.draw.rectangle((y - s, x - s), (y + s, x + s), shape=(rows, cols))
        elif shape == "circle":
            rr, cc = skimage.draw.disk((y, x), s + 0.5, shape=(rows, cols))
        elif shape == "triangle":
            half_base = s / math.sin(math.radians(60))
            points = np.array([(x, y - s), (x - half_base, y + s), (x + half_base, y + s)]).astype(np.int32)
            rr, cc = skimage.draw.polygon(points[:, 1], points[:, 0], shape=(rows, cols))
        else:
            raise ValueError(f"unknown shape {shape!r} (expected one of {SHAPE_NAMES})")
        image[rr, cc] = color
        return image

    def random_shape(self, height, width, rng=random, buffer=20):
        """(shape name, colour, (x, y, size)) drawn like the notebook."""
        shape = rng.choice(list(SHAPE_NAMES))
        color = tuple([rng.randint(0, 255) for _ in range(3)])
        y = rng.randint(buffer, height - buffer - 1)
        x = rng.randint(buffer, width - buffer - 1)
        s = rng.randint(buffer, height // 4)
        return shape, color, (x, y, s)

    def random_image(self, height, width, rng=random, buffer=20):
        """Background colour and 1-4 shapes, dropping shapes whose boxes overlap (IoU > 0.3)."""
        bg_color = np.array([rng.randint(0, 255) for _ in range(3)])
        shapes, boxes = [], []
        n = rng.randint(1, 4)
        for _ in range(n):
            shape, color, dims = self.random_shape(height, width, rng=rng, buffer=buffer)
            shapes.append((shape, color, dims))
            x, y, s = dims
            boxes.append([y - s, x - s, y + s, x + s])
        keep_ixs = utils.non_max_suppression(np.array(boxes), np.arange(n), 0.3)
        shapes = [s for i, s in enumerate(shapes) if i in keep_ixs]
        return bg_color, shapes
