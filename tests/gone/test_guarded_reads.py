"""Every mask goes through the one guarded reader (gonefiles.images.open_image): a file whose header
claims a huge size is one error line for that item, and the size is compared before decoding."""
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from gone import cli
from gonefiles import ImageReadError, read_mask

pytestmark = pytest.mark.jax  # no Keras


def patch_png_size(path, width, height):
    """Rewrite the IHDR width/height of a PNG (and the chunk's CRC): a small file whose header
    claims ``width`` x ``height``."""
    data = bytearray(path.read_bytes())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))


def _hole_png(path, shape):
    hole = np.zeros(shape, np.uint8)
    hole[10:30, 20:40] = 255
    Image.fromarray(hole).save(path)
    return hole


def test_bomb_mask_in_gone_remove_is_one_line_and_the_batch_goes_on(tmp_path, make_scene, capsys):
    img = make_scene(people=())
    src, masks, out = tmp_path / "in", tmp_path / "masks", tmp_path / "out"
    src.mkdir()
    masks.mkdir()
    for name in ("a", "b", "c"):
        Image.fromarray(img).save(src / f"{name}.png")
        _hole_png(masks / f"{name}.png", img.shape[:2])
    patch_png_size(masks / "b.png", 20000, 20000)
    rc = cli.main(["remove", str(src), "-o", str(out), "--masks", str(masks), "--inpainter", "patchmatch", "-q"])
    captured = capsys.readouterr()
    assert rc == 1
    assert "Traceback" not in captured.err
    lines = [ln for ln in captured.err.splitlines() if "b.png" in ln]
    assert len(lines) == 1 and "mask is 20000x20000 (refused before decoding) but the image is 128x96" in lines[0], captured.err
    assert "2 inpainted" in captured.out and "1 failed" in captured.out
    assert sorted(p.name for p in out.iterdir()) == [".gone-manifest.json", "a.png", "c.png"]


def test_bomb_mask_in_gone_inpaint_is_one_line(tmp_path, make_scene, capsys):
    img = make_scene(people=())
    imgs, msk, out = tmp_path / "imgs", tmp_path / "msk", tmp_path / "out"
    imgs.mkdir()
    msk.mkdir()
    for name in ("p", "q"):
        Image.fromarray(img).save(imgs / f"{name}.png")
        _hole_png(msk / f"{name}.png", img.shape[:2])
    patch_png_size(msk / "p.png", 20000, 20000)
    # single-file form
    rc = cli.main(["inpaint", "--image", str(imgs / "p.png"), "--mask", str(msk / "p.png"),
                   "--output", str(tmp_path / "res.png"), "--inpainter", "patchmatch", "-q"])
    captured = capsys.readouterr()
    assert rc == 1 and "Traceback" not in captured.err
    assert captured.err.strip().count("\n") == 0 and "p.png: mask is 20000x20000 (refused before decoding) but the image is 128x96" in captured.err
    assert not (tmp_path / "res.png").exists()
    # folder form: the other pair is still done
    rc = cli.main(["inpaint", "--image", str(imgs), "--mask", str(msk), "--output", str(out),
                   "--inpainter", "patchmatch", "-q"])
    captured = capsys.readouterr()
    assert rc == 1 and "Traceback" not in captured.err
    assert "p.png: mask is 20000x20000 (refused before decoding) but the image is 128x96" in captured.err and "1 inpainted" in captured.out
    assert sorted(p.name for p in out.iterdir()) == [".gone-manifest.json", "q.png"]


def test_mask_size_compared_with_the_header_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "m.png"
    _hole_png(path, (96, 128))
    patch_png_size(path, 5000, 4000)   # under Pillow's pixel limit, the data is only 128x96
    decoded = []
    real_load = ImageFile.ImageFile.load

    def spy(self):
        decoded.append(self.size)
        return real_load(self)
    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    with pytest.raises(ImageReadError, match=r"m.png: mask is 5000x4000 but the image is 128x96$"):
        read_mask(path, (96, 128, 3))
    assert decoded == []          # refused from the header alone
    # a matching mask is still read (and decoded)
    _hole_png(path, (96, 128))
    hole = read_mask(path, (96, 128, 3))
    assert hole.shape == (96, 128) and hole.sum() == 20 * 20 and set(decoded) == {(128, 96)}
