"""data_prep.synth: seeded scenes are reproducible and the COCO export round-trips."""
import json

import numpy as np
import pytest
from pycocotools.coco import COCO

from data_prep import synth

# no Keras: the TensorFlow run covers it (the `jax` subset is for code on the backend)


def test_scene_is_reproducible_from_seed():
    a = synth.make_scene(seed=7, index=3, height=96, width=128)
    b = synth.make_scene(seed=7, index=3, height=96, width=128)
    for name in ("image", "background", "person_masks", "shadow_masks", "object_masks"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    c = synth.make_scene(seed=8, index=3, height=96, width=128)
    assert not np.array_equal(a.image, c.image)


def test_scene_contents_are_consistent():
    for index in range(8):
        s = synth.make_scene(0, index, height=128, width=160)
        assert s.image.shape == s.background.shape == (128, 160, 3)
        assert s.image.dtype == s.background.dtype == np.uint8
        assert 1 <= s.num_people <= 3
        assert s.person_masks.shape == (128, 160, s.num_people)
        assert s.shadow_masks.shape[-1] == s.num_people
        assert s.object_masks.shape[-1] == len(s.object_owner) == len(s.object_kinds)
        # Outside what must be removed, the photo IS the clean background (exact ground truth).
        outside = ~s.removal_mask
        np.testing.assert_array_equal(s.image[outside], s.background[outside])
        # Visible instance masks do not overlap each other.
        stack = np.concatenate([s.person_masks, s.object_masks], -1)
        assert stack.sum(-1).max() <= 1
        assert not (s.shadow_masks.any(-1) & stack.any(-1)).any()


def test_backgrounds_exclude_people_images():
    assert "astronaut" not in synth.NATURAL_BACKGROUNDS
    assert "camera" not in synth.NATURAL_BACKGROUNDS


def test_coco_export_round_trips_and_is_byte_identical(tmp_path):
    ann = synth.generate(tmp_path / "a", n_scenes=4, seed=3, height=64, width=80, progress=False)
    ann2 = synth.generate(tmp_path / "b", n_scenes=4, seed=3, height=64, width=80, progress=False)
    assert ann.read_bytes() == ann2.read_bytes()
    for sub in ("images", "backgrounds"):
        for f in sorted((tmp_path / "a" / sub).iterdir()):
            assert f.read_bytes() == (tmp_path / "b" / sub / f.name).read_bytes()

    coco = COCO(str(ann))
    assert {c["name"] for c in coco.loadCats(coco.getCatIds())} == {"person", "shadow",
                                                                     "held_object"}
    assert coco.getCatIds(catNms=["person"]) == [1]
    assert len(coco.getImgIds()) == 4
    from PIL import Image

    for index in range(4):
        scene = synth.make_scene(3, index, 64, 80)
        image_id = index + 1
        info = coco.loadImgs(image_id)[0]
        np.testing.assert_array_equal(
            np.asarray(Image.open(ann.parent / "images" / info["file_name"])), scene.image)
        np.testing.assert_array_equal(
            np.asarray(Image.open(ann.parent / info["background_file"])), scene.background)
        people = synth.load_masks(coco, image_id, synth.PERSON_CATEGORY_ID)
        expected = scene.person_masks[..., scene.person_masks.any((0, 1))]
        np.testing.assert_array_equal(people, expected)
        for a in coco.loadAnns(coco.getAnnIds(imgIds=[image_id])):
            assert a["iscrowd"] == 0
            assert a["area"] == int(coco.annToMask(a).sum())
            if a["category_id"] != synth.PERSON_CATEGORY_ID:
                owner = a["person_annotation_id"]
                assert owner is None or coco.anns[owner]["category_id"] == 1
    assert json.loads(ann.read_text())["info"]["seed"] == 3


def test_cli(tmp_path, capsys):
    assert synth.main(["--out", str(tmp_path), "--n_scenes", "2", "--height", "48",
                       "--width", "64"]) == 0
    assert (tmp_path / "annotations.json").is_file()
    assert "annotations.json" in capsys.readouterr().out


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="at least 32x32"):
        synth.make_scene(0, 0, height=8, width=8)
    with pytest.raises(ValueError, match="seed and index"):
        synth.make_scene(-1, 0)


def test_package_cli_dispatch(tmp_path, capsys):
    from data_prep.__main__ import main

    assert main(["synth", "--out", str(tmp_path), "--n_scenes", "1", "--height", "32",
                 "--width", "32"]) == 0
    assert main(["nonsense"]) == 2
    assert "unknown command" in capsys.readouterr().err
