import pathlib

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
        gio.write_fileobj_atomic(tmp_path / "out.png", save)
    assert list(tmp_path.iterdir()) == []


# -- gonefiles: the one atomic writer / image reader --------------------------------------------
import errno  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import gonefiles  # noqa: E402
from gonefiles import atomic  # noqa: E402


@pytest.fixture
def umask():
    old = os.umask(0o022)
    yield lambda m: os.umask(m)
    os.umask(old)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_files_get_the_users_umask(tmp_path, umask, mask, mode):
    umask(mask)
    rgb = np.zeros((4, 4, 3), np.uint8)
    paths = [gio.write_image_atomic(tmp_path / "a.png", rgb),
             gio.write_mask_atomic(tmp_path / "m.png", np.ones((4, 4), bool)),
             gonefiles.write_atomic(tmp_path / "n.npz", lambda t: np.savez(t, x=rgb), suffix=".npz"),
             gonefiles.copy_file_atomic(tmp_path / "a.png", tmp_path / "b.png")]
    assert [oct(p.stat().st_mode & 0o777) for p in paths] == [oct(mode)] * 4
    assert atomic.current_umask() == mask


def test_full_disk_leaves_no_temp_file(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(OSError) as info:
        gio.write_image_atomic(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    assert info.value.errno == errno.ENOSPC
    with pytest.raises(OSError):
        gonefiles.write_atomic(tmp_path / "b.npz", lambda t: np.savez(t, x=1), suffix=".npz")
    assert list(tmp_path.iterdir()) == []


def test_stale_temps_of_dead_processes_are_cleaned(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".a.png.{dead.pid}.k2j4l1x9{gonefiles.TEMP_MARK}"
    live = tmp_path / f".b.png.{os.getpid()}.abcd_123{gonefiles.TEMP_MARK}"
    npz = tmp_path / f".c.npz.{dead.pid}.zzzzzzzz{gonefiles.TEMP_MARK}.npz"
    user = tmp_path / ".hidden.part"
    for p in (stale, live, npz, user):
        p.write_bytes(b"x")
    assert gonefiles.is_temp_name(stale.name) and not gonefiles.is_temp_name(user.name)
    assert sorted(gonefiles.clean_stale_temps(tmp_path)) == sorted([stale, npz])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, user.name])


def test_temp_file_is_named_for_cleanup(tmp_path):
    seen = []
    gonefiles.write_atomic(tmp_path / "x.txt", lambda t: (seen.append(t), pathlib.Path(t).write_text("1")))
    name = pathlib.Path(seen[0]).name
    assert gonefiles.is_temp_name(name) and f".{os.getpid()}." in name and name.startswith(".x.txt.")


def test_animated_gif_reports_frames(tmp_path):
    frames = [Image.fromarray(np.full((6, 8, 3), v, np.uint8)) for v in (10, 120, 240)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=50)
    loaded = gio.load_image(tmp_path / "anim.gif")
    assert loaded.frames == 3 and "only the first frame" in loaded.note
    assert abs(int(loaded.rgb[0, 0, 0]) - 10) <= 2
    assert gio.load_image(gio.write_image_atomic(tmp_path / "still.png", loaded.rgb)).note == ""


def test_read_mask_white_is_hole(tmp_path):
    m = np.zeros((5, 7), np.uint8)
    m[1:3, 2:5] = 255
    m[4, 6] = 100                              # grey below the 127.5 threshold: kept
    Image.fromarray(np.dstack([m] * 3)).save(tmp_path / "m.png")
    hole = gio.read_mask(tmp_path / "m.png", (5, 7, 3))
    assert hole.dtype == bool and hole.sum() == 6 and hole[1:3, 2:5].all()
    colour = np.zeros((2, 2, 3), np.uint8)
    colour[0, 0] = (0, 0, 255)                 # blue: channel 0 of cv2.imread's BGR, a hole
    colour[0, 1] = (255, 0, 0)                 # red: not a hole
    Image.fromarray(colour).save(tmp_path / "c.png")
    np.testing.assert_array_equal(gio.read_mask(tmp_path / "c.png"), [[True, False], [False, False]])
    with pytest.raises(gio.ImageReadError, match="mask is 7x5 but the image is 8x5"):
        gio.read_mask(tmp_path / "m.png", (5, 8))


def test_gonefiles_needs_only_numpy_and_pillow():
    code = ("import sys, gonefiles; gonefiles.read_image; bad = sorted(m for m in sys.modules if m.split('.')[0] "
            "in ('gone', 'mrcnn', 'inpaint', 'keras', 'tensorflow', 'jax', 'scipy', 'cv2')); print(bad); "
            "sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
