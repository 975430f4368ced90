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
        if hasattr(self, "config"):   # Matterport's detect pads a short batch to BATCH_SIZE itself
            assert len(images) <= self.config.BATCH_SIZE
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
    """``fill`` on network-ready batches (as every gone.inpainters kind): fills the hole with the
    mean colour of the known pixels and (deliberately) changes every pixel outside the hole too,
    so the tests see whether the pipeline pastes only the hole."""

    def __init__(self):
        self.shapes = []         # each image's shape
        self.batch_calls = 0

    def fill(self, images, holes):
        images, holes = np.asarray(images), np.asarray(holes)
        assert images.dtype == np.uint8 and images.ndim == 4 and holes.shape == images.shape[:3]
        assert holes.dtype == bool
        assert images.shape[1] % 8 == 0 and images.shape[2] % 8 == 0, images.shape
        self.batch_calls += 1
        out = (255 - images).astype(np.uint8)          # garbage outside the hole
        for o, image, mask in zip(out, images, holes):
            self.shapes.append(image.shape)
            known = image[~mask]
            fill = known.mean(axis=0) if len(known) else np.array([128, 128, 128])
            o[mask] = np.round(fill).astype(np.uint8)
        return out


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


# -- fakes for the heavy leaves of the real wiring (gone.models.build_maskrcnn / build_deepfill) ----
class FakeMaskRCNN(FakeDetector):
    """What ``gone.models.build_maskrcnn`` returns, without Keras: the colour-keyed detections of
    FakeDetector, dropping scores under the config's DETECTION_MIN_CONFIDENCE as Matterport's
    DetectionLayer does; any number of images per call (MaskRCNN.detect pads its batches)."""

    def __init__(self, config, path, score=0.9):
        super().__init__(score=score)
        self.config = config
        self.weights_path = path

    def detect(self, images, verbose=0):
        self.calls.append(len(images))
        keep_from = self.config.DETECTION_MIN_CONFIDENCE
        out = []
        for d in FakeDetector.detect(self, images):
            keep = d["scores"] >= keep_from
            out.append({"rois": d["rois"][keep], "class_ids": d["class_ids"][keep], "scores": d["scores"][keep],
                        "masks": d["masks"][..., keep]})
        return out


class FakeInpaintModel:
    """What ``gone.models.build_deepfill`` returns, without Keras: InpaintModel's network-ready
    ``fill`` (N x H x W x 3 uint8 batch + N x H x W bool holes, sides multiples of 8); fills the
    hole with the mean known colour and (deliberately) changes every pixel outside it."""

    weights_source = "fake"

    def __init__(self):
        self.batches = []        # (images.shape, holes.shape) of each fill call

    def fill(self, images, holes, batch_size=None):
        images, holes = np.asarray(images), np.asarray(holes)
        assert images.dtype == np.uint8 and images.ndim == 4 and holes.shape == images.shape[:3]
        assert images.shape[1] % 8 == 0 and images.shape[2] % 8 == 0, images.shape
        self.batches.append((images.shape, holes.shape))
        out = (255 - images).astype(np.uint8)
        for o, im, h in zip(out, images, holes):
            known = im[~h]
            o[h] = np.round(known.mean(axis=0) if len(known) else 128).astype(np.uint8)
        return out


def write_fake_mrcnn_weights(path):
    """An HDF5 file in Matterport's layout naming every weighted layer of the COCO inference model
    (so ``gone.models.check_detector_weights`` passes) with no real weights."""
    import h5py

    from gone.models import matterport_weighted_layers
    names = matterport_weighted_layers()
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [n.encode() for n in names]
        for n in names:
            f.create_group(n).attrs["weight_names"] = [f"{n}/kernel:0".encode()]
    return path


@pytest.fixture
def fake_leaves(monkeypatch, tmp_path):
    """The real ``gone`` wiring (cli.build_remover, make_inpainter, load_detector) with only the
    Keras model builds faked: a weights cache holding a checkable fake mask_rcnn_coco.h5 and no
    DeepFill checkpoint (so "auto" is the real PatchMatch); ``fake.npz`` = a DeepFill checkpoint
    path whose network is a FakeInpaintModel. Returns a dict listing what was built."""
    from gone import models
    cache = tmp_path / "weights_cache"
    cache.mkdir()
    write_fake_mrcnn_weights(cache / "mask_rcnn_coco.h5")
    monkeypatch.setenv("GONE_WEIGHTS_DIR", str(cache))
    built = {"detectors": [], "inpaint_models": [], "deepfill_npz": tmp_path / "fake.npz"}
    from inpaint.checkpoint import save_native   # a readable native file (check_inpainter_checkpoint reads it)
    save_native(built["deepfill_npz"], {"inpaint_net/fake/kernel": np.zeros((1,), np.float32)})

    def build_maskrcnn(config, path, allow_partial=False, model_dir=None):
        det = built.get("detector_cls", FakeMaskRCNN)(config, path, score=built.get("score", 0.9))
        built["detectors"].append(det)
        return det

    def build_deepfill(path):
        model = FakeInpaintModel()
        built["inpaint_models"].append(model)
        return model
    monkeypatch.setattr(models, "build_maskrcnn", build_maskrcnn)
    monkeypatch.setattr(models, "build_deepfill", build_deepfill)
    return built


@pytest.fixture
def fake_models(monkeypatch, fake_leaves):
    """The real gone.options.build_remover (only the Keras builds faked, conftest.fake_leaves); the
    list of the removers it built."""
    from gone import options
    built, real = [], options.build_remover

    def spy(args, setup=None):
        built.append(real(args, setup))
        return built[-1]
    monkeypatch.setattr(options, "build_remover", spy)
    return built


@pytest.fixture
def fake_maskrcnn_cls():
    return FakeMaskRCNN
