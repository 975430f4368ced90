"""data_prep.synth.oracle_instances: what a perfect detector returns for a synthetic scene."""
import numpy as np

from data_prep import synth


def test_oracle_instances_are_people_then_held_objects():
    scene = next(s for s in (synth.make_scene(0, i, 96, 128) for i in range(20))
                 if len(s.object_kinds))
    masks, names = synth.oracle_instances(scene)
    n, m = scene.num_people, len(scene.object_kinds)
    assert masks.shape == (96, 128, n + m) and masks.dtype == bool
    assert names[:n] == ["person"] * n
    assert names[n:] == [{"bag": "handbag", "ball": "sports ball"}[k] for k in scene.object_kinds]
    np.testing.assert_array_equal(masks[..., :n], scene.person_masks)
    np.testing.assert_array_equal(masks[..., n:], scene.object_masks)
    assert not (masks.any(-1) & scene.shadow_masks.any(-1)).any()   # shadows are not instances
