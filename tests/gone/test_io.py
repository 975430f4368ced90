import numpy as np
import pytest
from PIL import Image

from gone import io as gio

pytestmark = pytest.mark.jax  # Pillow / numpy only


def test_rgb_roundtrip_png(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (9, 13, 3), dtype=np.uint8)
    p = gio.write_image_atomic(tmp_path / "a.png", rgb)
    np.testing.assert_array_equal(gio.read_image(p), rgb)
    assert [x.name for x in tmp_path.iterdir()] == ["a.png"]  # no temp file left


def test_grayscale_rgba_16bit_and_palette(tmp_path):
    g = np.arange(60, dtype=np.uint8).reshape(6, 10)
    Image.fromarray(g, "L").save(tmp_path / "g.png")
    out = gio.read_image(tmp_path / "g.png")
    assert out.shape == (6, 10, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., 1], g)

    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 0
    rgba[0, 0, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = gio.read_image(tmp_path / "a.png")
    assert out.shape == (4, 4, 3)
    assert tuple(out[0, 0]) == (200, 0, 0)          # opaque pixel kept
    assert tuple(out[1, 1]) == (255, 255, 255)      # transparent -> white

    g16 = (np.arange(20, dtype=np.uint16).reshape(4, 5) * 3000)
    Image.fromarray(g16).save(tmp_path / "g16.png")
    loaded = gio.load_image(tmp_path / "g16.png")
    assert loaded.high_bit_depth and loaded.rgb.dtype == np.uint8
    np.testing.assert_array_equal(loaded.rgb[..., 0], np.round(g16 / 257.0).astype(np.uint8))
    assert gio.output_format_for(tmp_path / "g16.png", loaded) == (".png", "PNG")

    Image.fromarray(g, "L").convert("P").save(tmp_path / "p.gif")
    assert gio.read_image(tmp_path / "p.gif").shape == (6, 10, 3)
    assert gio.output_format_for(tmp_path / "p.gif")[1] == "PNG"


def test_exif_orientation_is_applied(tmp_path):
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[0:2, 0:2] = 255                       # white marker top-left of the stored pixels
    im = Image.fromarray(rgb)
    exif = im.getexif()
    exif[0x0112] = 6                          # rotate 90 CW to display
    im.save(tmp_path / "o.jpg", exif=exif, quality=100)
    out = gio.read_image(tmp_path / "o.jpg")
    assert out.shape == (6, 4, 3)             # transposed to upright
    assert out[0, -1].min() > 150 and out[-1, 0].max() < 60   # marker now top-right


def test_corrupt_truncated_missing(tmp_path):
    (tmp_path / "junk.jpg").write_bytes(b"this is not a jpeg")
    with pytest.raises(gio.ImageReadError, match="junk.jpg: not a recognised image"):
        gio.read_image(tmp_path / "junk.jpg")
    rgb = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "trunc.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(gio.ImageReadError, match="trunc.png: corrupt or truncated"):
        gio.read_image(tmp_path / "trunc.png")
    with pytest.raises(gio.ImageReadError, match="no such file"):
        gio.read_image(tmp_path / "nope.png")


def test_jpeg_output_and_mask(tmp_path):
    rgb = np.full((8, 8, 3), 128, np.uint8)
    p = gio.write_image_atomic(tmp_path / "x.jpg", rgb)
    assert Image.open(p).format == "JPEG"
    hole = np.zeros((8, 8), bool)
    hole[2:4, 2:5] = True
    m = gio.write_mask_atomic(tmp_path / "x_mask.png", hole)
    arr = np.asarray(Image.open(m))
    assert arr.dtype == np.uint8 and set(np.unique(arr)) == {0, 255}
    np.testing.assert_array_equal(arr == 255, hole)


def test_failed_write_leaves_no_temp(tmp_path):
    class Boom(Exception):
        pass

    def save(f):
        f.write(b"partial")
        raise Boom()

    with pytest.raises(Boom):
        gio._atomic_save(tmp_path / "out.png", save)
    assert list(tmp_path.iterdir()) == []
