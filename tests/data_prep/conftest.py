"""A tiny COCO-2014-layout fixture made in the test: people and no-people images, crowd
annotations and images whose person masks cover more than half of the image."""
import json

import numpy as np
import pytest
from PIL import Image

H, W = 40, 50


def _rect_polygon(x0, y0, x1, y1):
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def _uncompressed_rle(mask):
    """COCO uncompressed RLE (as crowd annotations use): column-major run lengths from 0s."""
    flat = mask.T.reshape(-1).astype(np.uint8)
    counts, current, run = [], 0, 0
    for v in flat:
        if v == current:
            run += 1
        else:
            counts.append(run)
            current, run = v, 1
    counts.append(run)
    return {"size": [mask.shape[0], mask.shape[1]], "counts": counts}


def make_tiny_coco(root, n_images=80, write_images=True):
    """Writes <root>/val2014/*.jpg and <root>/annotations/instances_val2014.json.

    Image kinds by id % 8: 0,1,2 one small person; 3 two persons whose union covers 60 % (each
    30 %, a large crop only as a union); 4 one person covering 72 % (large crop); 5 a crowd
    person region only; 6,7 no person (a dog). Returns a dict of expectations."""
    (root / "val2014").mkdir(parents=True)
    (root / "annotations").mkdir()
    rng = np.random.default_rng(0)
    images, anns, expect = [], [], {"large": set(), "people": set(), "no_people": set(),
                                    "crowd_only": set()}

    def add(image_id, cat, segmentation, area, bbox, iscrowd=0):
        anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": cat,
                     "segmentation": segmentation, "area": float(area), "bbox": bbox,
                     "iscrowd": iscrowd})

    for image_id in range(1, n_images + 1):
        name = f"COCO_val2014_{image_id:012d}.jpg"
        images.append({"id": image_id, "file_name": name, "height": H, "width": W})
        if write_images:
            Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(
                root / "val2014" / name)
        kind = image_id % 8
        if kind in (0, 1, 2):
            add(image_id, 1, _rect_polygon(5, 5, 15, 25), 200, [5, 5, 10, 20])
            expect["people"].add(image_id)
        elif kind == 3:   # two 30 % persons side by side: union 60 % > 50 %
            add(image_id, 1, _rect_polygon(0, 0, 15, 40), 600, [0, 0, 15, 40])
            add(image_id, 1, _rect_polygon(20, 0, 35, 40), 600, [20, 0, 15, 40])
            expect["people"].add(image_id)
            expect["large"].add(image_id)
        elif kind == 4:   # one person covering 36 x 40 = 72 %
            add(image_id, 1, _rect_polygon(0, 0, 36, 40), 1440, [0, 0, 36, 40])
            expect["people"].add(image_id)
            expect["large"].add(image_id)
        elif kind == 5:   # crowd region only: still an image with people
            m = np.zeros((H, W), bool)
            m[10:30, 10:20] = True
            add(image_id, 1, _uncompressed_rle(m), 200, [10, 10, 10, 20], iscrowd=1)
            expect["people"].add(image_id)
            expect["crowd_only"].add(image_id)
        else:
            add(image_id, 18, _rect_polygon(10, 10, 30, 30), 400, [10, 10, 20, 20])
            expect["no_people"].add(image_id)
    data = {"info": {"description": "tiny test COCO"}, "licenses": [], "images": images,
            "annotations": anns,
            "categories": [{"id": 1, "name": "person", "supercategory": "person"},
                           {"id": 18, "name": "dog", "supercategory": "animal"}]}
    (root / "annotations" / "instances_val2014.json").write_text(json.dumps(data))
    return expect


@pytest.fixture()
def tiny_coco(tmp_path):
    root = tmp_path / "coco"
    expect = make_tiny_coco(root)
    return root, expect
