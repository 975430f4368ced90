"""Training data for DeepFill v1: image folder, file list (.flist) or COCO split -> BGR float batches.

As the original pipeline (neuralgym `DataFromFNames` + `np_random_crop`): images are BGR (cv2.imread
order), float32 in [0, 255] (the model scales by /127.5 - 1), and either
- resized to IMG_SHAPES (RANDOM_CROP False), or
- randomly cropped to IMG_SHAPES (RANDOM_CROP True). Images smaller than the crop are first upscaled
  so the short side fits (neuralgym `np_scale_to_shape`).
Resizing is `cv2.resize(..., interpolation=INTER_LINEAR)` as neuralgym's, which does not
antialias when it shrinks; `resize="pil"` uses PIL's antialiased bilinear filter instead (an
option, not the original).
FAITHFUL BUG EMULATION: neuralgym's `np_scale_to_shape` passes (h, w) where OpenCV expects
(w, h), which distorts the aspect of the non-square images it upscales; that is kept by default
and `fix_upscale_aspect=True` fixes it.
Batches are deterministic in (seed, epoch, batch index) so an interrupted run resumes exactly.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import keras

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


class DataError(ValueError):
    """Bad data source (missing folder, empty list, unreadable image)."""


def list_image_folder(folder):
    """Sorted image files under `folder` (recursive)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"image folder not found: {folder}")
    files = sorted(str(p) for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise DataError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under {folder}")
    return files


def read_file_list(flist):
    """Paths from a .flist (one per line, as the original); relative paths are tried against the
    current directory, then the list's own folder."""
    flist = Path(flist)
    if not flist.is_file():
        raise DataError(f"file list not found: {flist}")
    files = []
    for line in flist.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        path = Path(line)
        if not path.is_absolute() and not path.exists() and (flist.parent / path).exists():
            path = flist.parent / path
        files.append(str(path))
    if not files:
        raise DataError(f"file list {flist} is empty")
    return files


def read_coco_split(annotations_json, image_dir=None, coco_dir=None):
    """Image paths of a COCO-format split (`images[*].file_name`): a COCO annotations file or a
    data_prep.coco_splits manifest. The images are looked up in `image_dir` when given, else
    under `coco_dir/<source_subset>/` (a manifest names its subset, e.g. val2014) or `coco_dir/`,
    else in the `images/` folder beside the json (data_prep.synth layout), else the json's folder."""
    annotations_json = Path(annotations_json)
    if not annotations_json.is_file():
        raise DataError(f"COCO annotations not found: {annotations_json}")
    try:
        data = json.loads(annotations_json.read_text())
        entries = data["images"]
    except (ValueError, KeyError, TypeError) as error:
        raise DataError(f"{annotations_json} is not a COCO annotations file ({error})") from None
    if image_dir is None and coco_dir is not None:
        coco_dir = Path(coco_dir)
        if not coco_dir.is_dir():
            raise DataError(f"COCO image root not found: {coco_dir}")
        subset = data.get("source_subset") if isinstance(data, dict) else None
        image_dir = coco_dir / subset if subset and (coco_dir / subset).is_dir() else coco_dir
    if image_dir is None:
        beside = annotations_json.parent / "images"
        image_dir = beside if beside.is_dir() else annotations_json.parent
    image_dir = Path(image_dir)
    files = [str(image_dir / entry["file_name"]) for entry in entries]
    if not files:
        raise DataError(f"COCO split {annotations_json} lists no images")
    return files


def resolve_image_source(data=None, flist=None, coco=None, coco_images=None, coco_dir=None):
    """Paths from exactly one of: a folder, a .flist, a COCO json or split manifest (a .flist /
    .json given as `data` is recognised too); `coco_dir` is the image root of COCO jsons."""
    given = [x for x in (data, flist, coco) if x]
    if len(given) != 1:
        raise DataError("give exactly one data source: an image folder, a file list or a COCO json")
    if data:
        if not os.path.exists(data):
            raise DataError(f"data source not found: {data} (expected an image folder, a .flist file "
                            f"or a COCO .json)")
        if os.path.isdir(data):
            return list_image_folder(data)
        if str(data).endswith(".json"):
            return read_coco_split(data, coco_images, coco_dir)
        return read_file_list(data)
    if flist:
        return read_file_list(flist)
    return read_coco_split(coco, coco_images, coco_dir)


def read_image_bgr(path):
    """H x W x 3 uint8 BGR through the repository's one image reader (gonefiles.read_image: EXIF
    orientation, gray, RGBA on white, 16-bit, first frame of animations)."""
    from gonefiles import ImageReadError, read_image
    try:
        rgb = read_image(path)
    except ImageReadError as error:  # one clear line
        raise DataError(f"cannot read image {path}: {error}") from None
    return np.ascontiguousarray(rgb[..., ::-1])


RESIZE_MODES = ("cv2", "pil")


def _resize(image, height, width, mode="cv2"):
    """cv2.resize INTER_LINEAR (neuralgym's; no antialiasing) or PIL's antialiased bilinear."""
    if image.shape[:2] == (height, width):
        return image
    if mode == "pil":
        from PIL import Image
        return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))
    if mode != "cv2":
        raise ValueError(f"resize must be one of {RESIZE_MODES}, got {mode!r}")
    import cv2
    return cv2.resize(image, (int(width), int(height)), interpolation=cv2.INTER_LINEAR)


def scale_to_shape(image, height, width, fix_upscale_aspect=False, resize="cv2"):
    """Upscale so that both sides are >= (height, width) (neuralgym `np_scale_to_shape`, align=False)."""
    img_h, img_w = image.shape[:2]
    if img_h >= height and img_w >= width:
        return image
    scale = max(height / img_h, width / img_w)
    new_h, new_w = math.ceil(img_h * scale), math.ceil(img_w * scale)
    if not fix_upscale_aspect:
        new_h, new_w = new_w, new_h  # faithful bug: the original's (h, w) passed as OpenCV's (w, h)
    return _resize(image, new_h, new_w, resize)


def random_crop(image, height, width, rng, fix_upscale_aspect=False, resize="cv2"):
    image = scale_to_shape(image, height, width, fix_upscale_aspect, resize)
    img_h, img_w = image.shape[:2]
    top = int(rng.integers(img_h - height + 1))
    left = int(rng.integers(img_w - width + 1))
    return image[top:top + height, left:left + width]


def prepare_image(image_bgr, height, width, random_crop_enabled, rng=None, fix_upscale_aspect=False,
                  resize="cv2"):
    """Random crop or resize to (height, width) as the original; returns uint8 BGR."""
    if random_crop_enabled:
        return random_crop(image_bgr, height, width, rng, fix_upscale_aspect, resize)
    return _resize(image_bgr, height, width, resize)


class InpaintImageDataset(keras.utils.PyDataset):
    """Batches of B x H x W x 3 float32 BGR in [0, 255] (the original's input range).

    Shuffled each epoch with `seed + epoch`; random crops drawn from (seed, epoch, index), so
    `dataset.batch(epoch, index)` is reproducible and a resumed run sees the same data.
    `len(dataset)` is the number of full batches per epoch (the last partial batch is dropped).
    """

    def __init__(self, paths, image_shape=(256, 256, 3), batch_size=16, random_crop=False,
                 shuffle=True, seed=0, fix_upscale_aspect=False, resize="cv2", **kwargs):
        super().__init__(**kwargs)
        self.paths = list(paths)
        self.height, self.width = int(image_shape[0]), int(image_shape[1])
        self.batch_size = int(batch_size)
        if len(self.paths) < self.batch_size:
            raise DataError(f"{len(self.paths)} images are fewer than one batch of {self.batch_size}")
        self.random_crop = bool(random_crop)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.fix_upscale_aspect = fix_upscale_aspect
        if resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")
        self.resize = resize
        self.epoch = 0

    @classmethod
    def from_config(cls, config, paths, seed=0, shuffle=True, **kwargs):
        get = (lambda k, d=None: config.get(k, d)) if isinstance(config, dict) else \
            (lambda k, d=None: getattr(config, k, d))
        return cls(paths, get("IMG_SHAPES"), get("BATCH_SIZE", 16), get("RANDOM_CROP", False),
                   shuffle=shuffle, seed=seed, **kwargs)

    def __len__(self):
        return len(self.paths) // self.batch_size

    def order(self, epoch):
        if not self.shuffle:
            return np.arange(len(self.paths))
        return np.random.default_rng([self.seed, int(epoch)]).permutation(len(self.paths))

    def batch(self, epoch, index):
        if not 0 <= index < len(self):
            raise IndexError(f"batch index {index} out of range for {len(self)} batches")
        order = self.order(epoch)[index * self.batch_size:(index + 1) * self.batch_size]
        rng = np.random.default_rng([self.seed, int(epoch), int(index), 1])
        images = [prepare_image(read_image_bgr(self.paths[i]), self.height, self.width,
                                self.random_crop, rng, self.fix_upscale_aspect, self.resize)
                  for i in order]
        return np.stack(images).astype(np.float32)

    def __getitem__(self, index):
        return self.batch(self.epoch, index)

    def on_epoch_end(self):
        self.epoch += 1
