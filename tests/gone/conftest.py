"""Small fakes for the pipeline tests: a colour-keyed detector and a trivial inpainter."""
import numpy as np
import pytest
from scipy import ndimage

# Pure colours the fake detector "detects": red = person (1), blue = car (3).
PERSON_RGB = (255, 0, 0)
CAR_RGB = (0, 0, 255)


class FakeDetector:
    """Matterport-style ``detect``: one instance per connected blob of a key colour."""

    def __init__(self, batch_size=None, score=0.9):
        self.calls = []
        self.score = score
        if batch_size:
            self.config = type("Cfg", (), {"BATCH_SIZE": batch_size})()

    def detect(self, images, verbose=0):
        self.calls.append(len(images))
        if hasattr(self, "config"):
            assert len(images) == self.config.BATCH_SIZE
        out = []
        for img in images:
            rois, ids, masks = [], [], []
            for rgb, cid in ((PERSON_RGB, 1), (CAR_RGB, 3)):
                key = np.all(img == np.array(rgb, np.uint8), axis=-1)
                labels, n = ndimage.label(key)
                for k in range(1, n + 1):
                    m = labels == k
                    ys, xs = np.nonzero(m)
                    rois.append([ys.min(), xs.min(), ys.max() + 1, xs.max() + 1])
                    ids.append(cid)
                    masks.append(m)
            h, w = img.shape[:2]
            out.append({
                "rois": np.array(rois, np.int32).reshape(-1, 4),
                "class_ids": np.array(ids, np.int32),
                "scores": np.full(len(ids), self.score, np.float32),
                "masks": (np.stack(masks, -1) if masks else np.zeros((h, w, 0), bool)),
            })
        return out


class FakeInpainter:
    """Fills the hole with the mean colour of the known pixels and (deliberately) changes every
    pixel outside the hole too, so the tests see whether the pipeline pastes only the hole."""

    def __init__(self):
        self.shapes = []
        self.batch_calls = 0

    def inpaint(self, image, mask):
        image = np.asarray(image)
        mask = np.asarray(mask).astype(bool)
        assert image.dtype == np.uint8 and image.shape[:2] == mask.shape
        assert image.shape[0] % 8 == 0 and image.shape[1] % 8 == 0, image.shape
        self.shapes.append(image.shape)
        out = (255 - image).astype(np.uint8)          # garbage outside the hole
        known = image[~mask]
        fill = known.mean(axis=0) if len(known) else np.array([128, 128, 128])
        out[mask] = np.round(fill).astype(np.uint8)
        return out

    def inpaint_batch(self, images, masks):
        self.batch_calls += 1
        return [self.inpaint(i, m) for i, m in zip(images, masks)]


def scene(h=96, w=128, people=((20, 30, 60, 50),), cars=(), background=(40, 160, 90)):
    """Textured background with red 'people' and blue 'cars' boxes (y1, x1, y2, x2)."""
    rng = np.random.default_rng(h * 1000 + w)
    img = np.empty((h, w, 3), np.uint8)
    img[:] = background
    img = np.clip(img.astype(int) + rng.integers(-30, 30, size=img.shape), 0, 254).astype(np.uint8)
    img[..., 0] = np.minimum(img[..., 0], 200)  # no accidental pure red/blue
    for y1, x1, y2, x2 in people:
        img[y1:y2, x1:x2] = PERSON_RGB
    for y1, x1, y2, x2 in cars:
        img[y1:y2, x1:x2] = CAR_RGB
    return img


@pytest.fixture
def fake_detector():
    return FakeDetector()


@pytest.fixture
def fake_inpainter():
    return FakeInpainter()


@pytest.fixture
def make_scene():
    return scene


@pytest.fixture
def fake_detector_cls():
    return FakeDetector


@pytest.fixture
def fake_inpainter_cls():
    return FakeInpainter
