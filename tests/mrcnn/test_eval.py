"""COCO evaluation (build_coco_results / evaluate_coco) and the numpy AP helpers."""
import json

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as maskUtils

from mrcnn import coco_eval, utils
from mrcnn.datasets.coco import CocoDataset

H, W = 32, 40


@pytest.fixture()
def coco_setup(tmp_path):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "val2017").mkdir()
    annotations, boxes = [], {11: [[4, 4, 20, 16]], 12: [[10, 20, 30, 38], [2, 2, 8, 12]]}
    ann_id = 1
    for image_id, image_boxes in boxes.items():
        Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(tmp_path / "val2017" / f"{image_id}.png")
        for y1, x1, y2, x2 in image_boxes:
            poly = [x1, y1, x2, y1, x2, y2, x1, y2]
            area = float(maskUtils.area(maskUtils.merge(maskUtils.frPyObjects([poly], H, W))))
            annotations.append({"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                                "area": area, "bbox": [x1, y1, x2 - x1, y2 - y1], "segmentation": [poly]})
            ann_id += 1
    data = {"images": [{"id": i, "file_name": f"{i}.png", "height": H, "width": W} for i in boxes],
            "categories": [{"id": 1, "name": "person"}], "annotations": annotations}
    (tmp_path / "annotations" / "instances_val2017.json").write_text(json.dumps(data))
    dataset = CocoDataset()
    coco = dataset.load_coco(tmp_path, "val", year="2017", return_coco=True)
    dataset.prepare()
    return dataset, coco


class OracleModel:
    """detect() returns the ground truth of the image it is given (looked up by call order)."""

    def __init__(self, dataset, drop_all=False):
        self.dataset, self.calls, self.drop_all = dataset, 0, drop_all

    def detect(self, images, verbose=0):
        image_id = self.dataset.image_ids[self.calls]
        self.calls += 1
        masks, class_ids = self.dataset.load_mask(image_id)
        if self.drop_all:
            masks, class_ids = masks[..., :0], class_ids[:0]
        rois = utils.extract_bboxes(masks)
        return [{"rois": rois, "class_ids": class_ids, "scores": np.linspace(0.9, 0.8, len(class_ids)).astype(np.float32),
                 "masks": masks}]


@pytest.mark.parametrize("eval_type", ["bbox", "segm"])
def test_evaluate_coco_perfect_detections(coco_setup, tmp_path, eval_type):
    dataset, coco = coco_setup
    results_path = tmp_path / "out" / "results.json"
    cocoeval = coco_eval.evaluate_coco(OracleModel(dataset), dataset, coco, eval_type=eval_type,
                                       results_path=results_path, verbose=0)
    assert cocoeval.stats[0] == pytest.approx(1.0)  # AP@[.5:.95]
    written = json.loads(results_path.read_text())
    assert len(written) == 3 and {r["image_id"] for r in written} == {11, 12}
    assert written[0]["category_id"] == 1 and isinstance(written[0]["segmentation"]["counts"], str)
    assert written[0]["bbox"] == [4.0, 4.0, 12.0, 16.0]  # x, y, w, h from (y1, x1, y2, x2) = (4, 4, 20, 16)


def test_evaluate_coco_limit_and_no_detections(coco_setup):
    dataset, coco = coco_setup
    cocoeval = coco_eval.evaluate_coco(OracleModel(dataset, drop_all=True), dataset, coco, limit=1, verbose=0)
    assert cocoeval.params.imgIds == [dataset.image_info[0]["id"]]
    assert cocoeval.stats[0] <= 0  # nothing detected (COCOeval reports 0 or -1)
    with pytest.raises(ValueError, match="eval_type"):
        coco_eval.evaluate_coco(OracleModel(dataset), dataset, coco, eval_type="keypoints")


def test_build_coco_results(coco_setup):
    dataset, _ = coco_setup
    assert coco_eval.build_coco_results(dataset, [11], None, None, None, None) == []
    masks = np.zeros((H, W, 1), np.uint8)
    masks[1:3, 2:5, 0] = 1
    results = coco_eval.build_coco_results(dataset, [11], np.array([[1, 2, 3, 5]]), np.array([1]),
                                           np.array([0.5], np.float32), masks)
    assert results[0]["bbox"] == [2.0, 1.0, 3.0, 2.0] and results[0]["score"] == 0.5
    np.testing.assert_array_equal(maskUtils.decode(results[0]["segmentation"]), masks[..., 0])
