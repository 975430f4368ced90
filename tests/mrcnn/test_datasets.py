"""Dataset API, the COCO loader (polygon / RLE / crowd) and the shapes dataset."""
import json

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as maskUtils

from mrcnn import utils
from mrcnn.datasets.coco import COCO_CATEGORY_IDS, COCO_CLASS_NAMES, CocoDataset
from mrcnn.datasets.shapes import ShapesConfig, ShapesDataset

H, W = 40, 50


def _uncompressed_rle(mask):
    """COCO's uncompressed RLE: column-major run lengths starting with zeros."""
    flat = mask.flatten(order="F").astype(np.uint8)
    counts, current, run = [], 0, 0
    for v in flat:
        if v == current:
            run += 1
        else:
            counts.append(run)
            current, run = v, 1
    counts.append(run)
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts}


@pytest.fixture()
def tiny_coco(tmp_path):
    """<tmp>/annotations/instances_val2017.json + images: 3 images, categories person and car."""
    (tmp_path / "annotations").mkdir()
    (tmp_path / "val2017").mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(tmp_path / "val2017" / "a.png")
    Image.fromarray(rng.integers(0, 256, (H, W), dtype=np.uint8)).save(tmp_path / "val2017" / "b.png")  # gray
    Image.fromarray(rng.integers(0, 256, (H, W, 4), dtype=np.uint8)).save(tmp_path / "val2017" / "c.png")  # RGBA

    rle_mask = np.zeros((H, W), np.uint8)
    rle_mask[20:30, 5:15] = 1
    car_mask = np.zeros((H, W), np.uint8)
    car_mask[2:8, 30:45] = 1
    car_rle = maskUtils.encode(np.asfortranarray(car_mask))
    car_rle["counts"] = car_rle["counts"].decode("ascii")
    crowd_mask = np.zeros((H, W), np.uint8)
    crowd_mask[30:38, 30:48] = 1
    annotations = [
        # person as a polygon (a 10x10 square at x 10..20, y 5..15)
        {"id": 1, "image_id": 11, "category_id": 1, "iscrowd": 0, "area": 100.0, "bbox": [10, 5, 10, 10],
         "segmentation": [[10, 5, 20, 5, 20, 15, 10, 15]]},
        # person as an uncompressed RLE
        {"id": 2, "image_id": 11, "category_id": 1, "iscrowd": 0, "area": 100.0, "bbox": [5, 20, 10, 10],
         "segmentation": _uncompressed_rle(rle_mask)},
        # crowd of people (uncompressed RLE, as COCO stores crowds)
        {"id": 3, "image_id": 11, "category_id": 1, "iscrowd": 1, "area": 144.0, "bbox": [30, 30, 18, 8],
         "segmentation": _uncompressed_rle(crowd_mask)},
        # car as a compressed RLE
        {"id": 4, "image_id": 11, "category_id": 3, "iscrowd": 0, "area": 90.0, "bbox": [30, 2, 15, 6],
         "segmentation": car_rle},
        # a car only in image 12; image 13 has a person made of two polygons
        {"id": 5, "image_id": 12, "category_id": 3, "iscrowd": 0, "area": 90.0, "bbox": [30, 2, 15, 6],
         "segmentation": car_rle},
        {"id": 6, "image_id": 13, "category_id": 1, "iscrowd": 0, "area": 50.0, "bbox": [0, 0, 30, 30],
         "segmentation": [[0, 0, 5, 0, 5, 5, 0, 5], [25, 25, 30, 25, 30, 30, 25, 30]]},
    ]
    data = {
        "images": [{"id": 11, "file_name": "a.png", "height": H, "width": W},
                   {"id": 12, "file_name": "b.png", "height": H, "width": W},
                   {"id": 13, "file_name": "c.png", "height": H, "width": W}],
        "categories": [{"id": 1, "name": "person", "supercategory": "person"},
                       {"id": 3, "name": "car", "supercategory": "vehicle"}],
        "annotations": annotations,
    }
    (tmp_path / "annotations" / "instances_val2017.json").write_text(json.dumps(data))
    return tmp_path, {"rle": rle_mask.astype(bool), "car": car_mask.astype(bool), "crowd": crowd_mask.astype(bool)}


def test_coco_loader_polygon_rle_crowd(tiny_coco):
    root, masks = tiny_coco
    dataset = CocoDataset()
    coco = dataset.load_coco(root, "val", year="2017", return_coco=True)
    dataset.prepare()
    assert coco is not None and dataset.num_images == 3 and dataset.num_classes == 3
    assert dataset.class_names == ["BG", "person", "car"]
    index = {dataset.image_info[i]["id"]: i for i in dataset.image_ids}
    mask, class_ids = dataset.load_mask(index[11])
    assert mask.dtype == bool and mask.shape == (H, W, 4)
    assert class_ids.dtype == np.int32 and class_ids.tolist() == [1, 1, -1, 2]  # crowd -> negative id
    polygon = mask[..., 0]
    assert polygon[6:15, 11:20].all() and not polygon[:4].any() and not polygon[:, 22:].any()
    assert abs(int(polygon.sum()) - 100) <= 21  # rasterised 10x10 square
    np.testing.assert_array_equal(mask[..., 1], masks["rle"])
    np.testing.assert_array_equal(mask[..., 2], masks["crowd"])
    np.testing.assert_array_equal(mask[..., 3], masks["car"])
    two_parts, ids = dataset.load_mask(index[13])
    assert ids.tolist() == [1] and two_parts[1:4, 1:4, 0].all() and two_parts[26:29, 26:29, 0].all()
    assert dataset.image_reference(index[11]) == "http://cocodataset.org/#explore?id=11"
    assert dataset.source_image_link(index[11]).endswith("val2017/a.png")
    for i in dataset.image_ids:  # RGB, gray -> RGB, RGBA -> RGB
        image = dataset.load_image(i)
        assert image.shape == (H, W, 3) and image.dtype == np.uint8


def test_coco_loader_people_only(tiny_coco):
    root, _ = tiny_coco
    dataset = CocoDataset()
    dataset.load_coco(root, "val", year="2017", class_ids=[1])
    dataset.prepare()
    assert dataset.class_names == ["BG", "person"]
    assert sorted(info["id"] for info in dataset.image_info) == [11, 13]  # image 12 has no person
    index = {dataset.image_info[i]["id"]: i for i in dataset.image_ids}
    mask, class_ids = dataset.load_mask(index[11])
    assert class_ids.tolist() == [1, 1, -1] and mask.shape[-1] == 3
    assert dataset.get_source_class_id(1, "coco") == 1
    assert dataset.map_source_class_id("coco.1") == 1


def test_coco_loader_errors(tiny_coco, tmp_path):
    root, _ = tiny_coco
    with pytest.raises(FileNotFoundError, match="instances_train2017.json"):
        CocoDataset().load_coco(root, "train", year="2017")
    with pytest.raises(ValueError, match="not categories"):
        CocoDataset().load_coco(root, "val", year="2017", class_ids=[99])


def test_coco_auto_download_offline_is_a_clear_error(tmp_path, monkeypatch):
    import urllib.request

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(OSError, match="could not download .*images.cocodataset.org"):
        CocoDataset().load_coco(tmp_path / "coco", "val", year="2017", auto_download=True)
    assert not any(p.suffix == ".part" for p in (tmp_path / "coco").iterdir())


def test_coco_class_names():
    assert len(COCO_CLASS_NAMES) == 81 and COCO_CLASS_NAMES[0] == "BG" and COCO_CLASS_NAMES[1] == "person"
    assert len(COCO_CATEGORY_IDS) == 80 and COCO_CATEGORY_IDS[:3] == [1, 2, 3] and COCO_CATEGORY_IDS[-1] == 90
    assert COCO_CLASS_NAMES[COCO_CATEGORY_IDS.index(90) + 1] == "toothbrush"


def test_dataset_prepare_and_mapping():
    dataset = utils.Dataset()
    dataset.add_class("a", 5, "cat,feline")
    dataset.add_class("a", 5, "duplicate ignored")
    dataset.add_class("b", 5, "dog")
    dataset.add_image("a", image_id="x1", path="/nowhere/x1.jpg", extra=3)
    dataset.add_image("b", image_id="y1", path="/nowhere/y1.jpg")
    dataset.prepare()
    assert dataset.num_classes == 3 and dataset.class_names == ["BG", "cat", "dog"]
    assert dataset.image_ids.tolist() == [0, 1] and dataset.num_images == 2
    assert dataset.map_source_class_id("b.5") == 2 and dataset.get_source_class_id(1, "a") == 5
    assert dataset.source_class_ids == {"": [0], "a": [0, 1], "b": [0, 2]}
    assert dataset.image_from_source_map == {"a.x1": 0, "b.y1": 1}
    assert dataset.image_info[0]["extra"] == 3 and dataset.image_reference(0) == ""
    mask, class_ids = dataset.load_mask(0)
    assert mask.shape == (0, 0, 0) and class_ids.dtype == np.int32
    with pytest.raises(ValueError, match="dot"):
        dataset.add_class("a.b", 1, "x")
    with pytest.raises(ValueError, match="source"):
        dataset.get_source_class_id(1, "b")
    with pytest.raises(OSError, match="cannot read image 0"):
        dataset.load_image(0)


def test_shapes_dataset_seeded_and_consistent():
    first, second = ShapesDataset(), ShapesDataset()
    first.load_shapes(6, 128, 128, seed=7)
    second.load_shapes(6, 128, 128, seed=7)
    first.prepare()
    second.prepare()
    assert first.class_names == ["BG", "square", "circle", "triangle"]
    for i in first.image_ids:
        image = first.load_image(i)
        assert image.shape == (128, 128, 3) and image.dtype == np.uint8
        np.testing.assert_array_equal(image, second.load_image(i))
        mask, class_ids = first.load_mask(i)
        assert mask.dtype == bool and mask.shape[:2] == (128, 128)
        assert class_ids.dtype == np.int32 and 1 <= len(class_ids) <= 4 and set(class_ids) <= {1, 2, 3}
        assert mask.sum(axis=(0, 1)).min() > 0
        assert (mask.sum(axis=-1) <= 1).all()  # occlusion handling: no pixel in two masks
        # Each instance is painted in its colour in the image (visible part).
        for k, (shape, color, dims) in enumerate(first.image_info[i]["shapes"]):
            assert (image[mask[..., k]] == np.array(color, np.uint8)).all()
    other = ShapesDataset()
    other.load_shapes(6, 128, 128, seed=8)
    assert [s["shapes"] for s in other.image_info] != [s["shapes"] for s in first.image_info]


def test_shapes_small_images_need_a_smaller_buffer():
    with pytest.raises(ValueError, match="buffer"):
        ShapesDataset().load_shapes(2, 64, 64)
    dataset = ShapesDataset()
    dataset.load_shapes(3, 64, 64, seed=0, buffer=8)
    dataset.prepare()
    assert dataset.load_image(0).shape == (64, 64, 3)


def test_shapes_config():
    config = ShapesConfig()
    assert config.NUM_CLASSES == 4 and config.IMAGE_SHAPE.tolist() == [128, 128, 3]
    assert config.BATCH_SIZE == 8 and config.RPN_ANCHOR_SCALES == (8, 16, 32, 64, 128)
