"""Corrupt DeepFill weights are refused with one line: a damaged TF data file fails its crc32c
(stored per tensor in the .index), and a NaN/Inf weight is refused in every format."""
import shutil
import struct

import google_crc32c
import numpy as np
import pytest
from PIL import Image

from gone import cli
from gone.models import ModelLoadError, load_inpainter
from inpaint.checkpoint import CheckpointError, read_tf_checkpoint, save_native

DATA = "snap-0.data-00000-of-00001"


@pytest.fixture
def ckpt_copy(deepfill_release_ckpt, tmp_path):
    """A writable copy of the release-like TF1 checkpoint folder."""
    out = tmp_path / "ckpt"
    out.mkdir()
    for f in deepfill_release_ckpt.iterdir():
        shutil.copyfile(f, out / f.name)
    return out


def _masked_crc(data):
    """TensorFlow's crc32c::Mask (tensorflow/core/lib/hash/crc32c.h)."""
    crc = google_crc32c.value(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def _image_and_mask(tmp_path, make_scene):
    img = make_scene(people=())
    Image.fromarray(img).save(tmp_path / "img.png")
    hole = np.zeros(img.shape[:2], np.uint8)
    hole[20:50, 30:60] = 255
    Image.fromarray(hole).save(tmp_path / "hole.png")
    return img


def test_flipped_kilobyte_in_the_data_file_is_refused(ckpt_copy, tmp_path, make_scene, capsys):
    data_file = ckpt_copy / DATA
    data = bytearray(data_file.read_bytes())
    size = len(data)
    data[1_000_000:1_001_024] = bytes(b ^ 0xFF for b in data[1_000_000:1_001_024])
    data_file.write_bytes(bytes(data))
    assert data_file.stat().st_size == size
    with pytest.raises(CheckpointError, match=r"data-00000-of-00001: tensor inpaint_net/\S+ does not match "
                                              r"its checksum in the \.index"):
        read_tf_checkpoint(ckpt_copy)
    with pytest.raises(ModelLoadError, match="does not match its checksum"):
        load_inpainter(ckpt_copy)
    _image_and_mask(tmp_path, make_scene)
    rc = cli.main(["inpaint", "--image", str(tmp_path / "img.png"), "--mask", str(tmp_path / "hole.png"),
                   "--output", str(tmp_path / "res.png"), "--inpainter", "deepfill",
                   "--checkpoint_dir", str(ckpt_copy)])
    captured = capsys.readouterr()
    assert rc == 2 and "Traceback" not in captured.err
    errors = [ln for ln in captured.err.splitlines() if "error:" in ln]
    assert len(errors) == 1 and "does not match its checksum" in errors[0] and "1 inpainted" not in captured.out
    assert not (tmp_path / "res.png").exists()


def test_nan_weight_refused_tf_and_native(ckpt_copy, tmp_path):
    good = read_tf_checkpoint(ckpt_copy)   # the untouched copy passes its checksums
    # a NaN written into conv1/bias with a matching checksum: only the finiteness check catches it
    from inpaint.checkpoint import _tf_entries
    entry = _tf_entries(ckpt_copy)[0]["inpaint_net/conv1/bias"]
    data_file, index_file = ckpt_copy / DATA, ckpt_copy / "snap-0.index"
    data = bytearray(data_file.read_bytes())
    old = bytes(data[entry["offset"]:entry["offset"] + entry["size"]])
    data[entry["offset"] + 4:entry["offset"] + 8] = struct.pack("<f", float("nan"))
    new = bytes(data[entry["offset"]:entry["offset"] + entry["size"]])
    index = index_file.read_bytes()
    old_field = b"\x35" + struct.pack("<I", _masked_crc(old))   # BundleEntryProto field 6, fixed32
    assert index.count(old_field) == 1
    index_file.write_bytes(index.replace(old_field, b"\x35" + struct.pack("<I", _masked_crc(new))))
    data_file.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"snap-0: weight inpaint_net/conv1/bias holds 1 NaN/Inf "
                                              r"value\(s\) of 32; refusing"):
        read_tf_checkpoint(ckpt_copy)
    with pytest.raises(ModelLoadError, match="inpaint_net/conv1/bias holds 1 NaN/Inf"):
        load_inpainter(ckpt_copy)
    # native .npz: an Inf
    good["inpaint_net/conv2_downsample/kernel"][0, 0, 0, 0] = np.inf
    native = save_native(tmp_path / "w.npz", good)
    with pytest.raises(ModelLoadError, match=r"w.npz: weight inpaint_net/conv2_downsample/kernel holds 1 NaN/Inf"):
        load_inpainter(native)


def test_truncated_native_file_is_one_line(tmp_path, deepfill_release_ckpt):
    native = save_native(tmp_path / "w.npz", read_tf_checkpoint(deepfill_release_ckpt))
    data = native.read_bytes()
    native.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"w.npz: unreadable native checkpoint \(truncated or corrupt"):
        from inpaint.checkpoint import load_native
        load_native(native)


def test_flipped_checkpoint_refused_at_setup_by_gone_remove_and_beam(ckpt_copy, tmp_path, make_scene, capsys):
    """The setup check reads the checkpoint whole: a damaged file stops `gone remove` and Beam
    with exit 2 and one line before any output folder is created or any worker starts."""
    from gone import beam as gbeam
    data_file = ckpt_copy / DATA
    data = bytearray(data_file.read_bytes())
    data[1_000_000:1_001_024] = bytes(b ^ 0xFF for b in data[1_000_000:1_001_024])
    data_file.write_bytes(bytes(data))
    (tmp_path / "in").mkdir()
    (tmp_path / "m").mkdir()
    _image_and_mask(tmp_path, make_scene)
    (tmp_path / "img.png").rename(tmp_path / "in" / "img.png")
    (tmp_path / "hole.png").rename(tmp_path / "m" / "img.png")
    argv = ["--masks", str(tmp_path / "m"), "--inpainter", "deepfill", "--inpaint-checkpoint", str(ckpt_copy), "-q"]
    assert cli.main(["remove", str(tmp_path / "in"), "-o", str(tmp_path / "out")] + argv) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not match its checksum" in err
    assert gbeam.main(["--input", str(tmp_path / "in"), "--output", str(tmp_path / "bout")] + argv) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "does not match its checksum" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "bout").exists()
