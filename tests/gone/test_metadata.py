"""`gone remove` keeps the photo's EXIF (orientation applied, its tag dropped) and an RGB ICC
profile where the output format stores them."""
import io

import numpy as np
import pytest
from PIL import Image, ImageCms

from gone import cli, masks, options
from gone.io import load_image, write_image_atomic
from gone.pipeline import PeopleRemover

pytestmark = pytest.mark.jax  # fakes only: no Keras

MAKE, ORIENTATION, DATE = 0x010F, 0x0112, 0x0132


class BoxDetector:
    """One person: a fixed box (the fake colour-keyed detector cannot see through JPEG noise)."""

    def detect(self, images, verbose=0):
        m = np.zeros(images[0].shape[:2] + (1,), bool)
        m[20:60, 30:50] = True
        return [masks.detections_from_masks(m)]


SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()   # one (it holds a timestamp)


def _exif(orientation):
    exif = Image.Exif()
    exif[MAKE], exif[DATE], exif[ORIENTATION] = "GONE test camera", "2024:05:06 07:08:09", orientation
    exif.get_ifd(0x8769)[0x927C] = b"maker note with a preview"     # Exif IFD: MakerNote
    exif.get_ifd(0x8769)[0x9003] = "2024:05:06 07:08:09"           # DateTimeOriginal
    return exif.tobytes()


@pytest.mark.parametrize("fmt, ext", [("JPEG", ".jpg"), ("PNG", ".png"), ("WEBP", ".webp")])
def test_gone_remove_keeps_exif_and_icc(tmp_path, make_scene, fake_inpainter_cls, fake_leaves, monkeypatch, fmt, ext):
    monkeypatch.setattr(options, "build_remover",
                        lambda args, setup=None: PeopleRemover(BoxDetector(), fake_inpainter_cls()))
    upright = make_scene()
    stored = np.ascontiguousarray(np.rot90(upright, 1))        # orientation 6: turn 90 CW to show
    (tmp_path / "in").mkdir()
    Image.fromarray(stored).save(tmp_path / "in" / f"p{ext}", format=fmt, exif=_exif(6), icc_profile=SRGB,
                                 **({"quality": 100, "lossless": True} if fmt == "WEBP" else {}))
    loaded = load_image(tmp_path / "in" / f"p{ext}")
    assert loaded.icc_profile == SRGB and loaded.rgb.shape == upright.shape
    assert cli.main(["remove", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-q", "--save-masks"]) == 0
    assert np.asarray(Image.open(tmp_path / "out" / "p_mask.png")).any()          # inpainted, not copied
    out = Image.open(tmp_path / "out" / f"p{ext}")
    assert out.format == fmt and out.size == (upright.shape[1], upright.shape[0])
    exif = out.getexif()
    assert exif[MAKE] == "GONE test camera" and exif[DATE] == "2024:05:06 07:08:09"
    assert ORIENTATION not in exif                                # pixels are upright now
    assert exif.get_ifd(0x8769) == {0x9003: "2024:05:06 07:08:09"}  # the maker note dropped
    assert out.info["icc_profile"] == SRGB


def test_gray_and_cmyk_profiles_are_not_put_on_rgb_output(tmp_path):
    gray = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    Image.new("L", (8, 8), 100).save(tmp_path / "g.jpg", icc_profile=gray)
    loaded = load_image(tmp_path / "g.jpg")
    assert loaded.icc_profile is None
    write_image_atomic(tmp_path / "o.bmp", loaded.rgb, exif=_exif(1), icc_profile=SRGB)   # BMP: no room
    assert "icc_profile" not in Image.open(tmp_path / "o.bmp").info
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PNG")
    (tmp_path / "plain.png").write_bytes(buf.getvalue())
    assert load_image(tmp_path / "plain.png").exif is None
