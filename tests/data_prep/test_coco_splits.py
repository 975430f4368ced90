"""data_prep.coco_splits on a tiny COCO-format fixture made in the test."""
import json

import pytest
from pycocotools.coco import COCO

from data_prep import coco_splits

# no Keras: the TensorFlow run covers it (the `jax` subset is for code on the backend)


TINY_SIZES = {"train-40k": 40, "train-2k": 12, "train-2k-no-people": 4, "val-100": 10,
              "val-100-no-large-crop": 8, "test-100-no-large-crop": 6}


def _ids(manifest):
    return [im["id"] for im in manifest["images"]]


def test_counts_membership_and_disjointness(tiny_coco):
    root, expect = tiny_coco
    m = coco_splits.build_splits(root, seed=0, sizes=TINY_SIZES, progress=False)
    assert set(m) == set(coco_splits.SPLITS)
    for split, n in TINY_SIZES.items():
        assert m[split]["count"] == n == len(_ids(m[split])) == len(set(_ids(m[split])))
    train = set(_ids(m["train-40k"]))
    assert set(_ids(m["train-2k"])) <= train
    no_people = set(_ids(m["train-2k-no-people"]))
    assert no_people <= train and no_people <= expect["no_people"]
    assert not no_people & expect["crowd_only"]       # crowd persons count as people
    val = set(_ids(m["val-100"])) | set(_ids(m["val-100-no-large-crop"]))
    test = set(_ids(m["test-100-no-large-crop"]))
    assert not val & train and not test & train and not test & val
    assert set(_ids(m["val-100"])) <= expect["people"]
    for split in ("val-100-no-large-crop", "test-100-no-large-crop"):
        assert not set(_ids(m[split])) & expect["large"]
        assert set(_ids(m[split])) <= expect["people"]
    # val-100-no-large-crop takes val-100's eligible members first
    val_small = set(_ids(m["val-100"])) - expect["large"]
    nl = set(_ids(m["val-100-no-large-crop"]))
    assert val_small <= nl or nl <= val_small
    coco_splits.check_disjoint(m)


def test_large_crop_classification_uses_union_of_person_masks(tiny_coco):
    root, expect = tiny_coco
    coco, _ = coco_splits.load_coco(root)
    assert coco_splits.large_crop_fraction_gt(coco, 4) == pytest.approx(36 * 40 / 2000)  # 0.72
    assert coco_splits.large_crop_fraction_gt(coco, 3) == pytest.approx(0.6)  # 2 x 0.3 union
    assert coco_splits.large_crop_fraction_gt(coco, 8) == pytest.approx(10 * 20 / 2000)
    assert coco_splits.large_crop_fraction_gt(coco, 5) == pytest.approx(0.1)   # crowd RLE
    assert coco_splits.large_crop_fraction_gt(coco, 6) == 0.0
    for image_id in range(1, 81):
        frac = coco_splits.large_crop_fraction_gt(coco, image_id)
        assert coco_splits.is_large_crop(frac) == (image_id in expect["large"])
    assert not coco_splits.is_large_crop(0.5) and coco_splits.is_large_crop(0.5001)


def test_manifests_are_byte_identical_and_versioned(tiny_coco, tmp_path):
    root, _ = tiny_coco
    a = coco_splits.write_manifests(
        coco_splits.build_splits(root, seed=3, sizes=TINY_SIZES, progress=False), tmp_path / "a")
    b = coco_splits.write_manifests(
        coco_splits.build_splits(root, seed=3, sizes=TINY_SIZES, progress=False), tmp_path / "b")
    for f in sorted(a.parent.iterdir()):
        assert f.read_bytes() == (b.parent / f.name).read_bytes(), f.name
    c = coco_splits.build_splits(root, seed=4, sizes=TINY_SIZES, progress=False)
    first = coco_splits.read_manifest(a.parent / "train-40k.json")
    assert _ids(first) != _ids(c["train-40k"])
    assert first["seed"] == 3 and first["manifest_version"] == coco_splits.MANIFEST_VERSION
    assert first["source_annotation_sha256"] == coco_splits.sha256_file(
        root / "annotations" / "instances_val2014.json")
    index = json.loads(a.read_text())
    assert index["splits"]["val-100"]["count"] == TINY_SIZES["val-100"]
    # The manifests name files pycocotools knows.
    coco = COCO(str(root / "annotations" / "instances_val2014.json"))
    for im in first["images"]:
        assert coco.imgs[im["id"]]["file_name"] == im["file_name"]


def test_cli(tiny_coco, tmp_path, capsys):
    root, _ = tiny_coco
    sizes = ",".join(f"{k}={v}" for k, v in TINY_SIZES.items())
    rc = coco_splits.main(["--coco_dir", str(root), "--out", str(tmp_path / "m"), "--sizes",
                           sizes])
    assert rc == 0
    assert (tmp_path / "m" / "test-100-no-large-crop.json").is_file()
    assert "manifests written" in capsys.readouterr().out


def test_missing_and_inconsistent_files_name_the_file(tiny_coco, tmp_path, capsys):
    root, _ = tiny_coco
    ann = root / "annotations" / "instances_val2014.json"
    with pytest.raises(coco_splits.CocoFilesError, match="COCO root not found"):
        coco_splits.build_splits(tmp_path / "nowhere", sizes=TINY_SIZES, progress=False)
    # A missing image file
    victim = sorted((root / "val2014").iterdir())[0]
    victim.unlink()
    with pytest.raises(coco_splits.CocoFilesError, match="image file not found") as err:
        coco_splits.build_splits(root, sizes={**TINY_SIZES, "train-40k": 80 - 30},
                                 progress=False)
    # (the message names the split image's path under val2014)
    assert "val2014" in str(err.value)
    # Broken JSON
    text = ann.read_text()
    ann.write_text(text[: len(text) // 2])
    with pytest.raises(coco_splits.CocoFilesError, match="not valid JSON") as err:
        coco_splits.load_coco(root)
    assert str(ann) in str(err.value)
    # An annotation pointing at an unknown image
    data = json.loads(text)
    data["annotations"][0]["image_id"] = 9999
    ann.write_text(json.dumps(data))
    with pytest.raises(coco_splits.CocoFilesError, match="unknown image id 9999"):
        coco_splits.load_coco(root)
    # Missing annotation file, via the CLI: a clear message, exit status 2
    ann.unlink()
    assert coco_splits.main(["--coco_dir", str(root), "--out", str(tmp_path / "x")]) == 2
    assert "instances_val2014.json" in capsys.readouterr().err


def test_too_small_dataset_is_a_clear_error(tiny_coco):
    root, _ = tiny_coco
    with pytest.raises(coco_splits.SplitSizeError, match="test-100-no-large-crop"):
        coco_splits.build_splits(root, sizes={**TINY_SIZES, "test-100-no-large-crop": 500},
                                 progress=False)
