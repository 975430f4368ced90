"""Fixtures of the `gone app` tests: an oracle detector (detections from data_prep's synthetic
oracle instances instead of Mask R-CNN) and a synthetic photo with a subject and a passer-by."""
import hashlib
import io

import numpy as np
import pytest
from PIL import Image

from data_prep.subject_scenes import make_subject_scene
from gone import masks


class OracleDetector:
    """Matterport-style ``detect``: the detections registered for an image (by its pixels), none
    for any other image. ``calls`` counts detect() calls."""

    def __init__(self):
        self.known = {}
        self.calls = 0

    @staticmethod
    def key(rgb):
        return hashlib.sha256(np.ascontiguousarray(rgb).tobytes() + str(rgb.shape).encode()).hexdigest()

    def add(self, rgb, instance_masks, scores):
        det = masks.detections_from_masks(instance_masks, scores=scores)
        self.known[self.key(rgb)] = det
        return det

    def detect(self, images, verbose=0):
        self.calls += 1
        out = []
        for img in images:
            empty = masks.detections_from_masks(np.zeros(img.shape[:2] + (0,), bool))
            out.append(self.known.get(self.key(np.asarray(img)), empty))
        return out


SCENE = (0, 25, 120, 160)      # data_prep.subject_scenes: a subject and one passer-by


@pytest.fixture
def two_people():
    """(scene, PNG bytes): a 160x120 photo with its subject (index 0) and a passer-by (1)."""
    scene = make_subject_scene(*SCENE)
    assert scene.truth.tolist() == [True, False]
    buf = io.BytesIO()
    Image.fromarray(scene.image).save(buf, format="PNG")
    return scene, buf.getvalue()


@pytest.fixture
def oracle(two_people):
    det = OracleDetector()
    scene, _ = two_people
    det.add(scene.image, scene.person_masks, [0.98, 0.91])
    return det
