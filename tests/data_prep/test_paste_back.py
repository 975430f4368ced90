"""data_prep.paste_back: COCO people pasted on person-free COCO photos, with exact ground truth."""
import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from data_prep import coco_splits, paste_back

# no Keras: the TensorFlow run covers it (the `jax` subset is for code on the backend)


def test_paste_back_set(tiny_coco, tmp_path):
    root, expect = tiny_coco
    ann = paste_back.build_paste_back(root, tmp_path / "a", n_images=5, seed=1, progress=False)
    again = paste_back.build_paste_back(root, tmp_path / "b", n_images=5, seed=1, progress=False)
    assert ann.read_bytes() == again.read_bytes()
    coco = COCO(str(ann))
    assert len(coco.imgs) == 5
    for image_id, info in coco.imgs.items():
        assert info["target_image_id"] in expect["no_people"]
        composite = np.asarray(Image.open(ann.parent / "images" / info["file_name"]))
        clean = np.asarray(Image.open(ann.parent / info["background_file"]))
        original = np.asarray(Image.open(root / "val2014" / info["target_file_name"]))
        np.testing.assert_array_equal(clean, original)
        pasted = np.zeros(clean.shape[:2], bool)
        for a in coco.loadAnns(coco.getAnnIds(imgIds=[image_id])):
            assert a["category_id"] == 1 and a["iscrowd"] == 0
            pasted |= coco.annToMask(a).astype(bool)
        assert pasted.any()
        np.testing.assert_array_equal(composite[~pasted], clean[~pasted])
        assert (composite[pasted] != clean[pasted]).any()


def test_donors_exclude_crowd_large_and_truncated(tiny_coco):
    root, expect = tiny_coco
    coco, _ = coco_splits.load_coco(root)
    donors = paste_back.eligible_donors(coco)
    assert donors
    for d in donors:
        a = coco.anns[d]
        assert a["iscrowd"] == 0 and a["image_id"] not in expect["large"]


def test_not_enough_targets_is_a_clear_error(tiny_coco, tmp_path):
    root, _ = tiny_coco
    with pytest.raises(coco_splits.SplitSizeError, match="person-free"):
        paste_back.build_paste_back(root, tmp_path, n_images=1000, progress=False)
    assert paste_back.main(["--coco_dir", str(tmp_path / "none"), "--out", str(tmp_path)]) == 2
