"""visualize: every plot writes a non-empty PNG of the requested size and returns the figure."""
import numpy as np
import pytest
from PIL import Image

from mrcnn import visualize


@pytest.fixture()
def scene():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    boxes = np.array([[5, 5, 20, 30], [25, 30, 45, 60]], dtype=np.int32)
    masks = np.zeros((48, 64, 2), bool)
    for i, (y1, x1, y2, x2) in enumerate(boxes):
        masks[y1:y2, x1:x2, i] = True
    return image, boxes, masks, np.array([1, 2], np.int32), ["BG", "person", "car"]


def _png(path):
    assert path.stat().st_size > 0
    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.size


def test_display_instances(scene, tmp_path):
    image, boxes, masks, class_ids, names = scene
    out = tmp_path / "sub" / "instances.png"
    fig = visualize.display_instances(image, boxes, masks, class_ids, names, scores=np.array([0.9, 0.8]),
                                      figsize=(3, 2), dpi=50, save_path=out)
    assert _png(out) == (150, 100)
    assert fig.axes and [p.name for p in (tmp_path / "sub").iterdir()] == ["instances.png"]  # no temp left
    # Without instances, and with captions.
    visualize.display_instances(image, boxes[:0], masks[..., :0], class_ids[:0], names, figsize=(2, 2), dpi=50,
                                save_path=tmp_path / "empty.png")
    assert _png(tmp_path / "empty.png") == (100, 100)
    visualize.display_instances(image, boxes, masks, class_ids, names, captions=["a", "b"], figsize=(2, 2), dpi=50,
                                save_path=tmp_path / "captions.png")
    with pytest.raises(ValueError, match="must match"):
        visualize.display_instances(image, boxes, masks[..., :1], class_ids, names)


def test_display_images_and_top_masks(scene, tmp_path):
    image, boxes, masks, class_ids, names = scene
    visualize.display_images([image, image], titles=["a", "b"], cols=2, dpi=20, save_path=tmp_path / "grid.png")
    assert _png(tmp_path / "grid.png") == (280, 280)  # figsize (14, 14 * rows // cols) = (14, 14)
    visualize.display_top_masks(image, masks, class_ids, names, limit=2, dpi=20, save_path=tmp_path / "top.png")
    assert _png(tmp_path / "top.png") == (280, 180)  # 3 images, cols 3 -> rows 2 -> (14, 28 // 3 = 9)


def test_draw_boxes(scene, tmp_path):
    image, boxes, masks, class_ids, names = scene
    fig = visualize.draw_boxes(image, boxes=boxes, refined_boxes=boxes + 2, masks=masks, captions=["x", "y"],
                               visibilities=[2, 1], figsize=(2, 2), dpi=50, save_path=tmp_path / "boxes.png")
    assert _png(tmp_path / "boxes.png") == (100, 100) and fig is not None


def test_evaluation_plots(tmp_path):
    visualize.plot_precision_recall(0.5, np.array([1, 1, .5, 0]), np.array([0, .5, .5, 1]), figsize=(2, 2), dpi=50,
                                    save_path=tmp_path / "pr.png")
    assert _png(tmp_path / "pr.png") == (100, 100)
    overlaps = np.array([[0.8, 0.1], [0.2, 0.6]])
    visualize.plot_overlaps(np.array([1, 2]), np.array([1, 1]), np.array([0.9, 0.7]), overlaps, ["BG", "a", "b"],
                            figsize=(3, 3), dpi=50, save_path=tmp_path / "overlaps.png")
    assert _png(tmp_path / "overlaps.png") == (150, 150)


def test_random_colors_and_apply_mask():
    colors = visualize.random_colors(5, seed=1)
    assert len(colors) == 5 and colors == visualize.random_colors(5, seed=1)
    assert all(0 <= c <= 1 for color in colors for c in color)
    image = np.full((4, 4, 3), 100, np.uint32)
    mask = np.zeros((4, 4), bool)
    mask[0, 0] = True
    visualize.apply_mask(image, mask, (1.0, 0.0, 0.0), alpha=0.5)
    assert image[0, 0].tolist() == [177, 50, 50] and image[1, 1].tolist() == [100, 100, 100]
