"""The calls of Matterport's samples and notebooks besides training (shapes, balloon, nucleus,
inspect_*): user Dataset subclasses with uint8 or bool masks, modellib.load_image_gt / log,
utils.compute_ap / compute_recall, config.display(), visualize without a display, run_graph."""
import numpy as np
import pytest
from PIL import Image

from mrcnn import model as modellib
from mrcnn import utils, visualize
from mrcnn.config import Config


class SquaresConfig(Config):
    NAME = "squares"
    NUM_CLASSES = 3
    IMAGES_PER_GPU = 1
    IMAGE_MIN_DIM = 64
    IMAGE_MAX_DIM = 64


def squares_dataset(mask_dtype):
    """A user's Dataset subclass (the balloon sample's pattern) whose load_mask returns
    masks of `mask_dtype`."""

    class Squares(utils.Dataset):
        def load_squares(self):
            self.add_class("squares", 1, "small")
            self.add_class("squares", 2, "big")
            for i in range(2):
                self.add_image("squares", image_id=i, path=None, width=50, height=40)

        def load_image(self, image_id):
            return np.full((40, 50, 3), 100 + image_id, np.uint8)

        def load_mask(self, image_id):
            mask = np.zeros((40, 50, 2), mask_dtype)
            mask[5:15, 5:15, 0] = 1
            mask[20:38, 10:45, 1] = 1
            return mask, np.array([1, 2], np.int32)

    ds = Squares()
    ds.load_squares()
    ds.prepare()
    return ds


def test_load_image_gt_takes_uint8_and_bool_masks():
    config = SquaresConfig()
    out_bool = modellib.load_image_gt(squares_dataset(bool), config, 1)
    out_uint8 = modellib.load_image_gt(squares_dataset(np.uint8), config, 1)
    image, image_meta, class_ids, bbox, mask = out_uint8
    assert image.shape == (64, 64, 3) and mask.dtype == bool and mask.shape == (64, 64, 2)
    assert image_meta.shape == (config.IMAGE_META_SIZE,) and class_ids.tolist() == [1, 2]
    for a, b in zip(out_bool, out_uint8):
        np.testing.assert_array_equal(a, b)
    # 40x50 scaled by 64/50 = 1.28 to 51x64, 6 rows of padding above: rows 5..14 -> 12..24
    assert bbox.tolist() == [[12, 6, 25, 19], [31, 13, 55, 58]]


def test_modellib_log_and_config_display(capsys):
    modellib.log("image", np.array([[0.5, 2.0]], np.float32))
    modellib.log("empty", np.zeros((0, 4)))
    modellib.log("just text")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "image".ljust(25) + "shape: " + "(1, 2)".ljust(20) + "  min:    0.50000  max:    2.00000  float32"
    assert lines[1].startswith("empty".ljust(25) + "shape: (0, 4)") and lines[1].endswith("float64")
    assert lines[2] == "just text"
    SquaresConfig().display()
    out = capsys.readouterr().out
    assert "\nConfigurations:\n" in out and "NUM_CLASSES                    3\n" in out


def test_compute_ap_and_recall_on_a_known_case():
    gt_boxes = np.array([[0, 0, 10, 10], [20, 20, 30, 30]])
    gt_masks = np.zeros((32, 32, 2), bool)
    gt_masks[0:10, 0:10, 0] = gt_masks[20:30, 20:30, 1] = True
    pred_boxes = np.array([[0, 0, 10, 10], [0, 20, 5, 30]])
    pred_masks = np.zeros((32, 32, 2), bool)
    pred_masks[0:10, 0:10, 0] = pred_masks[0:5, 20:30, 1] = True
    ap, precisions, recalls, overlaps = utils.compute_ap(
        gt_boxes, np.array([1, 1]), gt_masks, pred_boxes, np.array([1, 1]), np.array([0.9, 0.8]), pred_masks)
    assert ap == pytest.approx(0.5)
    np.testing.assert_allclose(overlaps, [[1.0, 0.0], [0.0, 0.0]])
    recall, positive_ids = utils.compute_recall(pred_boxes, gt_boxes, 0.5)
    assert recall == pytest.approx(0.5) and list(positive_ids) == [0]


def test_visualize_without_display_writes_numbered_files(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MRCNN_FIGURE_DIR", str(tmp_path / "figures"))
    image = np.full((20, 30, 3), 80, np.uint8)
    masks = np.zeros((20, 30, 1), bool)
    masks[5:15, 5:20] = True
    boxes, class_ids, names = np.array([[5, 5, 15, 20]]), np.array([1]), ["BG", "thing"]
    for _ in range(2):  # Matterport's calls, no path: never overwrites the previous figure
        visualize.display_instances(image, boxes, masks, class_ids, names, figsize=(2, 2))
    visualize.display_top_masks(image, masks, class_ids, names, limit=1)
    visualize.plot_precision_recall(0.5, np.array([1.0, 0.5]), np.array([0.5, 1.0]))
    written = sorted(p.name for p in (tmp_path / "figures").iterdir())
    assert written == ["display_images_0001.png", "display_instances_0001.png", "display_instances_0002.png",
                       "plot_precision_recall_0001.png"]
    for name in written:
        with Image.open(tmp_path / "figures" / name) as im:
            assert im.format == "PNG"
    assert "display_instances: figure written to" in capsys.readouterr().out


def test_run_graph_inspects_intermediate_layers_by_name():
    """inspect_model.ipynb's pattern: tensors of named layers, values for a list of images."""
    import importlib.util
    import pathlib
    spec = importlib.util.spec_from_file_location("_detect_api", pathlib.Path(__file__).with_name("test_detect_api.py"))
    detect_api = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(detect_api)
    config = detect_api.tiny_config(IMAGES_PER_GPU=2)
    model = modellib.MaskRCNN("inference", config, model_dir=None)
    images = [np.random.default_rng(i).integers(0, 255, (50, 60, 3), dtype=np.uint8) for i in range(3)]
    km = model.keras_model
    values = model.run_graph(images, [("rpn_class", km.get_layer("rpn_class").output),
                                      ("proposals", km.get_layer("ROI").output),
                                      ("fpn_p2", km.get_layer("fpn_p2").output)])
    assert list(values) == ["rpn_class", "proposals", "fpn_p2"]
    assert values["proposals"].shape == (3, config.POST_NMS_ROIS_INFERENCE, 4)
    assert values["fpn_p2"].shape == (3, 16, 16, config.TOP_DOWN_PYRAMID_SIZE)
    np.testing.assert_allclose(values["rpn_class"].sum(-1), 1.0, rtol=1e-5)
    # the same values as one image alone (no batch mixing)
    single = model.run_graph(images[2:], [("fpn_p2", km.get_layer("fpn_p2").output)])
    np.testing.assert_allclose(single["fpn_p2"][0], values["fpn_p2"][2], rtol=1e-5, atol=1e-6)
