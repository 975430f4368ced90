"""MS COCO in Matterport's Dataset API (samples/coco/coco.py of matterport/Mask_RCNN), on pycocotools.

    dataset = CocoDataset()
    coco = dataset.load_coco("/data/coco", "val", year="2017", class_ids=[1], return_coco=True)
    dataset.prepare()
    masks, class_ids = dataset.load_mask(0)   # crowd regions get negative class ids

Layout: <dir>/annotations/instances_<subset><year>.json and images in <dir>/<subset><year>/
("minival" / "valminusminival" use the val<year> images).
"""
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile

import numpy as np
from pycocotools import mask as maskUtils
from pycocotools.coco import COCO

from mrcnn import utils

DEFAULT_DATASET_YEAR = "2014"

# Class names in model order (index = class id of the COCO model; 'BG' first), as in
# Matterport's demo notebook.
COCO_CLASS_NAMES = [
    'BG', 'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat',
    'traffic light', 'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog',
    'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella',
    'handbag', 'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball', 'kite',
    'baseball bat', 'baseball glove', 'skateboard', 'surfboard', 'tennis racket', 'bottle',
    'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple', 'sandwich', 'orange',
    'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant', 'bed',
    'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote', 'keyboard', 'cell phone', 'microwave',
    'oven', 'toaster', 'sink', 'refrigerator', 'book', 'clock', 'vase', 'scissors', 'teddy bear',
    'hair drier', 'toothbrush']

# COCO category id of each model class 1..80 (the sorted COCO ids; the gaps are unused ids).
COCO_CATEGORY_IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83, 91)]

PERSON_CLASS_ID = 1

_IMAGES_URL = "http://images.cocodataset.org/zips/{}{}.zip"
_ANNOTATIONS_URL = "http://images.cocodataset.org/annotations/annotations_trainval{}.zip"
# Matterport's hosted 2014 minival / valminusminival splits.
_SPLIT_URLS = {
    "minival": "https://dl.dropboxusercontent.com/s/o43o90bna78omob/instances_minival2014.json.zip?dl=0",
    "valminusminival": "https://dl.dropboxusercontent.com/s/s3tw5zcg7395368/instances_valminusminival2014.json.zip?dl=0",
}


class CocoDataset(utils.Dataset):
    """COCO instances (source "coco"); class ids are remapped to consecutive internal ids."""

    def load_coco(self, dataset_dir, subset, year=DEFAULT_DATASET_YEAR, class_ids=None,
                  class_map=None, return_coco=False, auto_download=False):
        """Add the images and classes of one COCO subset.

        subset: "train", "val", "minival" or "valminusminival" (any name with an annotation file).
        class_ids: COCO category ids to load (e.g. [1] for people); None = all. Only images
            containing one of them are added, with annotations of those classes only.
        return_coco: also return the pycocotools COCO object (needed for evaluation).
        auto_download: fetch missing images / annotations from cocodataset.org first.
        """
        dataset_dir = os.fspath(dataset_dir)
        if auto_download:
            self.auto_download(dataset_dir, subset, year)
        annotation_file = os.path.join(dataset_dir, "annotations", f"instances_{subset}{year}.json")
        if not os.path.isfile(annotation_file):
            raise FileNotFoundError(f"COCO annotation file not found: {annotation_file} "
                                    f"(expected <dataset_dir>/annotations/instances_<subset><year>.json)")
        coco = COCO(annotation_file)
        image_subset = "val" if subset in ("minival", "valminusminival") else subset
        image_dir = os.path.join(dataset_dir, f"{image_subset}{year}")

        if not class_ids:
            class_ids = sorted(coco.getCatIds())
        unknown = [c for c in class_ids if c not in coco.cats]
        if unknown:
            raise ValueError(f"class ids {unknown} are not categories of {annotation_file}")
        image_ids = sorted({i for c in class_ids for i in coco.getImgIds(catIds=[c])})

        for class_id in class_ids:
            self.add_class("coco", class_id, coco.loadCats(class_id)[0]["name"])
        for image_id in image_ids:
            info = coco.imgs[image_id]
            self.add_image("coco", image_id=image_id, path=os.path.join(image_dir, info["file_name"]),
                           width=info["width"], height=info["height"],
                           annotations=coco.loadAnns(coco.getAnnIds(imgIds=[image_id], catIds=class_ids,
                                                                    iscrowd=None)))
        if return_coco:
            return coco

    def auto_download(self, dataset_dir, subset, year):
        """Download (if missing) the images and annotations of a subset, as Matterport's loader.
        Offline this fails with an OSError naming the URL and the expected local layout."""
        image_subset = "val" if subset in ("minival", "valminusminival") else subset
        image_dir = os.path.join(dataset_dir, f"{image_subset}{year}")
        os.makedirs(dataset_dir, exist_ok=True)
        if not os.path.isdir(image_dir):
            _download_and_unzip(_IMAGES_URL.format(image_subset, year), dataset_dir)
        annotation_dir = os.path.join(dataset_dir, "annotations")
        annotation_file = os.path.join(annotation_dir, f"instances_{subset}{year}.json")
        if not os.path.isfile(annotation_file):
            if subset in _SPLIT_URLS:
                if str(year) != "2014":
                    raise ValueError(f"the {subset} split exists for 2014 only, got year {year}")
                os.makedirs(annotation_dir, exist_ok=True)
                _download_and_unzip(_SPLIT_URLS[subset], annotation_dir)
            else:
                _download_and_unzip(_ANNOTATIONS_URL.format(year), dataset_dir)

    def load_mask(self, image_id):
        """(bool masks [H, W, N], int32 class_ids [N]); crowd annotations get -class_id and, when
        their mask does not match the image size, a full-image mask (as the original)."""
        image_info = self.image_info[image_id]
        if image_info["source"] != "coco":
            return super().load_mask(image_id)
        instance_masks, class_ids = [], []
        for annotation in image_info["annotations"]:
            class_id = self.map_source_class_id("coco.{}".format(annotation["category_id"]))
            if not class_id:
                continue
            m = self.annToMask(annotation, image_info["height"], image_info["width"])
            if m.max() < 1:  # tiny objects can vanish in the rasterisation
                continue
            if annotation["iscrowd"]:
                class_id *= -1  # crowd: negative id, excluded from training targets
                if m.shape[0] != image_info["height"] or m.shape[1] != image_info["width"]:
                    m = np.ones([image_info["height"], image_info["width"]], dtype=bool)
            instance_masks.append(m)
            class_ids.append(class_id)
        if class_ids:
            return np.stack(instance_masks, axis=2).astype(bool), np.array(class_ids, dtype=np.int32)
        return super().load_mask(image_id)

    def image_reference(self, image_id):
        info = self.image_info[image_id]
        if info["source"] == "coco":
            return "http://cocodataset.org/#explore?id={}".format(info["id"])
        return super().image_reference(image_id)

    def annToRLE(self, ann, height, width):
        """Polygons, uncompressed RLE or compressed RLE -> compressed RLE."""
        segm = ann["segmentation"]
        if isinstance(segm, list):
            # Polygons of one object: merge the parts.
            return maskUtils.merge(maskUtils.frPyObjects(segm, height, width))
        if isinstance(segm["counts"], list):
            return maskUtils.frPyObjects(segm, height, width)
        return segm

    def annToMask(self, ann, height, width):
        """Annotation -> uint8 [height, width] binary mask."""
        return maskUtils.decode(self.annToRLE(ann, height, width))


def _download_and_unzip(url, target_dir):
    """Download a zip to a temp file and extract it into target_dir."""
    fd, tmp = tempfile.mkstemp(dir=target_dir, suffix=".zip.part")
    try:
        print(f"Downloading {url} ...")
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=60) as resp:
                    shutil.copyfileobj(resp, out)
            except (urllib.error.URLError, OSError) as exc:
                raise OSError(f"COCO auto_download: could not download {url} ({exc}). Without network "
                              f"access, place the data under {target_dir} yourself "
                              f"(annotations/instances_<subset><year>.json and <subset><year>/ images)") from exc
        with zipfile.ZipFile(tmp) as archive:
            archive.extractall(target_dir)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
