"""gone.subject: the subject rule, the hole without the subject, `gone remove --keep subject`."""
import numpy as np
import pytest
from PIL import Image

from gone import cli, masks, models, subject
from gone.pipeline import PeopleRemover

pytestmark = pytest.mark.jax  # fakes only: no Keras


def _det(boxes, shape=(100, 160), class_ids=None, scores=None):
    m = np.zeros(shape + (len(boxes),), bool)
    for i, (y1, x1, y2, x2) in enumerate(boxes):
        m[y1:y2, x1:x2, i] = True
    return masks.detections_from_masks(m, class_ids, scores)


def test_large_central_person_is_the_subject_and_small_passers_by_are_not():
    det = _det([(20, 65, 98, 95), (40, 5, 60, 15), (50, 140, 70, 150)])
    assert subject.subject_instances(det, (100, 160)).tolist() == [True, False, False]


def test_companion_touching_the_subject_is_kept_a_distant_or_small_one_is_not():
    det = _det([(20, 60, 98, 80), (25, 81, 98, 100), (60, 100, 75, 106), (20, 125, 98, 145)])
    # 1 touches the subject (1 px gap < 2 % of 78 px, rounded to 2), similar size: kept.
    # 2 touches companion 1 but is small: removed. 3 is large but 25 px away: removed.
    assert subject.subject_instances(det, (100, 160)).tolist() == [True, True, False, False]


def test_no_subject_when_the_largest_person_is_small_or_at_the_edge():
    small = _det([(60, 70, 90, 85), (50, 10, 80, 20)])
    assert not subject.subject_instances(small, (100, 160)).any()
    edge = _det([(10, 0, 98, 20)])          # 88 % of the height, centroid at the left border
    assert not subject.subject_instances(edge, (100, 160)).any()
    huge = _det([(0, 0, 100, 100)])         # 62.5 % of the image: the subject wherever it is
    assert subject.subject_instances(huge, (100, 160)).tolist() == [True]


def test_only_confident_people_can_be_subjects():
    det = _det([(20, 65, 98, 95), (20, 40, 98, 64)], class_ids=[3, 1], scores=[1.0, 0.5])
    assert not subject.subject_instances(det, (100, 160), min_score=0.7).any()
    assert subject.subject_instances(det, (100, 160), min_score=0.4).tolist() == [False, True]


@pytest.mark.parametrize("strategy", masks.STRATEGIES)
def test_hole_without_nothing_kept_is_the_pipeline_hole(strategy, make_scene):
    image = make_scene(people=((20, 30, 60, 50), (30, 80, 70, 100)))
    names = masks.coco_class_names()
    det = _det([(20, 30, 60, 50), (30, 80, 70, 100), (55, 40, 70, 60), (5, 5, 15, 15)], shape=(96, 128),
               class_ids=[1, 1, names.index("handbag"), names.index("car")])
    remover = PeopleRemover(None, None, strategy=strategy, min_score=0.7)
    selected = masks.select_instances(det, remover.classes, remover.min_score)
    full = remover.hole_for(det, image.shape, image=image)
    np.testing.assert_array_equal(subject.hole_without(remover, det, image, selected), full)
    only_second = subject.hole_without(remover, det, image, np.array([False, True, False, False]))
    assert not only_second[20:60, 30:50].any() and only_second[30:70, 80:100].all()


@pytest.fixture
def oracle_models(fake_leaves):
    """The real build_remover, with the colour-keyed fake Mask R-CNN (conftest.fake_leaves)."""
    return fake_leaves


def test_gone_remove_keep_subject(tmp_path, make_scene, oracle_models, capsys):
    big, small = (10, 50, 94, 78), (40, 4, 56, 12)     # 88 % of the height, centred; a passer-by
    image = make_scene(people=(big, small))
    (tmp_path / "in").mkdir()
    Image.fromarray(image).save(tmp_path / "in" / "p.png")
    Image.fromarray(make_scene(people=(big,))).save(tmp_path / "in" / "alone.png")
    base = ["remove", str(tmp_path / "in"), "--inpainter", "telea", "--save-masks", "-q"]
    assert cli.main(base + ["-o", str(tmp_path / "keep"), "--keep", "subject"]) == 0
    assert cli.main(base + ["-o", str(tmp_path / "all")]) == 0
    hole_keep = np.asarray(Image.open(tmp_path / "keep" / "p_mask.png")) == 255
    hole_all = np.asarray(Image.open(tmp_path / "all" / "p_mask.png")) == 255
    assert not hole_keep[10:94, 50:78].any() and hole_keep[40:56, 4:12].all()
    assert hole_all[10:94, 50:78].all() and hole_all[40:56, 4:12].all()
    out = np.asarray(Image.open(tmp_path / "keep" / "p.png"))
    np.testing.assert_array_equal(out[~hole_keep], image[~hole_keep])
    assert (out[40:56, 4:12] != image[40:56, 4:12]).any()
    # the subject alone: nothing to remove, the original bytes kept
    assert (tmp_path / "keep" / "alone.png").read_bytes() == (tmp_path / "in" / "alone.png").read_bytes()
    assert "1 inpainted, 1 nothing to remove" in capsys.readouterr().out
    # the same hole given as a mask gives the same bytes
    masks_dir = tmp_path / "masks"
    masks_dir.mkdir()
    (tmp_path / "keep" / "p_mask.png").rename(masks_dir / "p.png")
    assert cli.main(["remove", str(tmp_path / "in" / "p.png"), "--inpainter", "telea", "-q",
                     "-o", str(tmp_path / "given"), "--masks", str(masks_dir)]) == 0
    assert (tmp_path / "given" / "p.png").read_bytes() == (tmp_path / "keep" / "p.png").read_bytes()
    assert cli.main(base + ["-o", str(tmp_path / "x"), "--keep", "subject", "--masks", str(masks_dir)]) == 2
    assert "--keep subject needs the detections" in capsys.readouterr().err
