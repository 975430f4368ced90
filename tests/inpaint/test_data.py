"""Training data sources (folder, file list, COCO split) and the original crop / resize."""
import json

import numpy as np
import pytest

from inpaint.data import (DataError, InpaintImageDataset, prepare_image, read_image_bgr,
                          resolve_image_source, scale_to_shape)


@pytest.fixture()
def image_folder(tmp_path):
    from PIL import Image
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index, (h, w) in enumerate([(40, 60), (64, 64), (80, 50), (30, 30), (70, 90)]):
        target = folder / ("sub" if index % 2 else "") / f"im{index}.png"
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(target)
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.mark.jax
def test_sources_folder_flist_coco(image_folder, tmp_path):
    files = resolve_image_source(str(image_folder))
    assert len(files) == 5 and all(f.endswith(".png") for f in files)
    flist = tmp_path / "train.flist"
    flist.write_text("\n".join(files[:3]) + "\n\n")
    assert resolve_image_source(flist=str(flist)) == files[:3]
    coco = tmp_path / "annotations.json"
    coco.write_text(json.dumps({"images": [{"id": 1, "file_name": "im0.png"},
                                           {"id": 2, "file_name": "sub/im1.png"}], "annotations": []}))
    paths = resolve_image_source(coco=str(coco))
    assert paths == [str(image_folder / "im0.png"), str(image_folder / "sub/im1.png")]
    with pytest.raises(DataError, match="not found"):
        resolve_image_source(str(tmp_path / "missing"))
    with pytest.raises(DataError, match="exactly one"):
        resolve_image_source(str(image_folder), str(flist))


@pytest.mark.jax
def test_read_image_is_bgr(tmp_path):
    from PIL import Image
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 200  # red
    Image.fromarray(rgb).save(tmp_path / "red.png")
    bgr = read_image_bgr(str(tmp_path / "red.png"))
    assert bgr.shape == (8, 8, 3) and bgr[0, 0].tolist() == [0, 0, 200]
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="cannot read image"):
        read_image_bgr(str(tmp_path / "broken.png"))


@pytest.mark.jax
def test_crop_and_resize_as_original():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)
    crop = prepare_image(image, 256, 256, True, np.random.default_rng(1))
    assert crop.shape == (256, 256, 3)
    # a crop is a window of the original, no resampling
    found = any(np.array_equal(image[t:t + 256, l:l + 256], crop) for t in range(45) for l in range(145))
    assert found
    assert prepare_image(image, 256, 256, False).shape == (256, 256, 3)
    small = rng.integers(0, 255, (100, 200, 3), dtype=np.uint8)
    # neuralgym np_scale_to_shape passes (h, w) as OpenCV's (w, h): kept by default, fixable
    assert scale_to_shape(small, 256, 256).shape[:2] == (512, 256)
    assert scale_to_shape(small, 256, 256, fix_upscale_aspect=True).shape[:2] == (256, 512)
    assert prepare_image(small, 256, 256, True, np.random.default_rng(0)).shape == (256, 256, 3)


@pytest.mark.jax
def test_dataset_batches_are_deterministic(image_folder):
    files = resolve_image_source(str(image_folder))
    dataset = InpaintImageDataset(files, (32, 32, 3), batch_size=2, random_crop=True, seed=4)
    assert len(dataset) == 2
    batch = dataset[0]
    assert batch.shape == (2, 32, 32, 3) and batch.dtype == np.float32
    assert 0 <= batch.min() and batch.max() <= 255
    np.testing.assert_array_equal(dataset.batch(3, 1), dataset.batch(3, 1))
    assert not np.array_equal(dataset.batch(0, 0), dataset.batch(1, 0))
    dataset.on_epoch_end()
    np.testing.assert_array_equal(dataset[1], dataset.batch(1, 1))
    with pytest.raises(DataError, match="fewer than one batch"):
        InpaintImageDataset(files, (32, 32, 3), batch_size=8)
