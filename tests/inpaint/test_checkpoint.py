"""TF1 checkpoint bundle reader (numpy only), name mapping, native format and conversion.

The reader, the native format and `python -m inpaint.convert` use no Keras: they run once, on
TensorFlow; the tests that assign into Keras variables are marked `jax` too."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from inpaint.checkpoint import (CheckpointError, assign_generator_weights, list_tf_checkpoint, load_native,
                                read_checkpoint, read_tf_checkpoint, resolve_tf_prefix, save_native)


def _variables_txt(ref):
    rows = {}
    for line in (ref / "variables.txt").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name = line.split()[0]
        shape = tuple(int(v) for v in re.search(r"\[([\d, ]*)\]", line).group(1).split(",") if v.strip())
        total = float(re.search(r"sum=\s*(\S+)", line).group(1))
        abs_total = float(re.search(r"abs_sum=\s*(\S+)", line).group(1))
        rows[name] = (shape, total, abs_total)
    return rows


def _recipe(names_shapes, seed):
    """README recipe: RandomState(seed), sorted names, k in -7..7, glorot-like scale / 7 or 0.1 / 7."""
    rng = np.random.RandomState(seed)
    out = {}
    for name in sorted(names_shapes):
        shape = names_shapes[name]
        k = rng.randint(-7, 8, size=shape)
        if name.endswith("/kernel"):
            if len(shape) == 4:
                fan_in, fan_out = shape[0] * shape[1] * shape[2], shape[0] * shape[1] * shape[3]
            else:
                fan_in, fan_out = shape
            out[name] = np.float32(k * (np.sqrt(6.0 / (fan_in + fan_out)) / 7))
        else:
            out[name] = np.float32(k * (0.1 / 7))
    return out


def test_release_checkpoint_read_without_tf(deepfill_release_ckpt, deepfill_reference_dir):
    variables = read_tf_checkpoint(deepfill_release_ckpt)
    table = _variables_txt(deepfill_reference_dir)
    assert len(variables) == 84 and all(n.startswith("inpaint_net/") for n in variables)
    assert sum(v.size for v in variables.values()) == 3601542
    for name, value in variables.items():
        shape, total, abs_total = table[name]
        assert value.dtype == np.float32 and value.shape == shape
        assert np.isclose(value.astype(np.float64).sum(), total, rtol=1e-5, atol=1e-6)
        assert np.isclose(np.abs(value.astype(np.float64)).sum(), abs_total, rtol=1e-5)
    # bit-exact against the README's generation recipe
    expected = _recipe({n: v.shape for n, v in variables.items()}, 0)
    for name, value in variables.items():
        np.testing.assert_array_equal(value, expected[name], err_msg=name)


def test_full_checkpoint_and_path_forms(deepfill_full_ckpt, deepfill_release_ckpt):
    variables = read_tf_checkpoint(deepfill_full_ckpt)
    assert len(variables) == 104 and sum(v.size for v in variables.values()) == 3601542 + 7072770
    critics = {n: v for n, v in variables.items() if n.startswith("discriminator/")}
    expected = _recipe({n: v.shape for n, v in critics.items()}, 1)
    for name, value in critics.items():
        np.testing.assert_array_equal(value, expected[name], err_msg=name)
    release = read_tf_checkpoint(deepfill_release_ckpt / "snap-0")
    for name, value in release.items():
        np.testing.assert_array_equal(variables[name], value)
    assert resolve_tf_prefix(deepfill_release_ckpt) == deepfill_release_ckpt / "snap-0"
    assert resolve_tf_prefix(deepfill_release_ckpt / "snap-0.index") == deepfill_release_ckpt / "snap-0"
    listing = list_tf_checkpoint(deepfill_release_ckpt)
    assert listing["inpaint_net/conv1/kernel"] == ((5, 5, 5, 32), np.dtype(np.float32))


def test_reader_matches_tensorflow(deepfill_full_ckpt):
    tf = pytest.importorskip("tensorflow")
    reader = tf.train.load_checkpoint(str(deepfill_full_ckpt))
    ours = read_tf_checkpoint(deepfill_full_ckpt)
    shapes = reader.get_variable_to_shape_map()
    assert set(shapes) == set(ours)
    for name in shapes:
        np.testing.assert_array_equal(reader.get_tensor(name), ours[name], err_msg=name)


def test_bad_paths_give_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no TF checkpoint"):
        read_tf_checkpoint(tmp_path / "nothing")
    (tmp_path / "snap-0.index").write_bytes(b"\0" * 64)
    with pytest.raises(CheckpointError, match="bad table magic"):
        read_tf_checkpoint(tmp_path / "snap-0")


@pytest.fixture(scope="module")
def generator():
    from inpaint.generator import InpaintGenerator
    gen = InpaintGenerator()
    gen.build()
    return gen


@pytest.mark.jax
def test_generator_names_map_one_to_one(generator, deepfill_full_ckpt):
    variables = read_tf_checkpoint(deepfill_full_ckpt)
    names = assign_generator_weights(generator, variables)  # discriminator/* ignored
    assert names == sorted(n for n in variables if n.startswith("inpaint_net/"))
    assert "inpaint_net/conv13_upsample/conv13_upsample_conv/kernel" in names
    np.testing.assert_array_equal(generator.checkpoint_variables()["inpaint_net/allconv17/bias"].numpy(),
                                  variables["inpaint_net/allconv17/bias"])


@pytest.mark.jax
def test_missing_and_unexpected_names_are_listed(generator, deepfill_release_ckpt):
    variables = dict(read_tf_checkpoint(deepfill_release_ckpt))
    del variables["inpaint_net/pmconv9/bias"]
    variables["inpaint_net/conv99/kernel"] = np.zeros(3, np.float32)
    variables["inpaint_net/conv1/kernel/Adam"] = np.zeros(3, np.float32)  # optimizer slot: ignored
    with pytest.raises(CheckpointError) as err:
        assign_generator_weights(generator, variables)
    text = str(err.value)
    assert "missing from the checkpoint (1): inpaint_net/pmconv9/bias" in text
    assert "unexpected in the checkpoint (1): inpaint_net/conv99/kernel" in text
    good = dict(read_tf_checkpoint(deepfill_release_ckpt))
    good["inpaint_net/conv1/bias"] = np.zeros(5, np.float32)
    with pytest.raises(CheckpointError, match=r"(?s)shape mismatch.*conv1/bias: checkpoint \(5,\) vs model \(32,\)"):
        assign_generator_weights(generator, good)


def test_native_round_trip(tmp_path, deepfill_release_ckpt):
    variables = read_tf_checkpoint(deepfill_release_ckpt)
    path = save_native(tmp_path / "w.npz", variables, config={"PADDING": "SAME"})
    loaded, manifest = load_native(path)
    assert manifest["config"] == {"PADDING": "SAME"} and set(loaded) == set(variables)
    for name, value in variables.items():
        np.testing.assert_array_equal(loaded[name], value)
    assert set(read_checkpoint(path)) == set(variables)
    np.savez(tmp_path / "other.npz", a=np.zeros(2))
    with pytest.raises(CheckpointError, match="not a GONE inpaint checkpoint"):
        load_native(tmp_path / "other.npz")


def test_convert_command(tmp_path, deepfill_full_ckpt):   # the real `python -m` entry point
    dst = tmp_path / "deepfill.npz"
    done = subprocess.run([sys.executable, "-m", "inpaint.convert", str(deepfill_full_ckpt), str(dst),
                           "--with-critics"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded, manifest = load_native(dst)
    assert len(loaded) == 104 and "source" in manifest["extra"]



def test_convert_command_refuses_a_missing_checkpoint(tmp_path, capsys):
    from inpaint import convert

    assert convert.main([str(tmp_path / "none"), str(tmp_path / "deepfill.npz")]) == 2
    err = capsys.readouterr().err
    assert "error: no TF checkpoint" in err and "Traceback" not in err
    assert not (tmp_path / "deepfill.npz").exists()


# not marked jax: it runs JAX in its own process whatever the suite's backend, so once is enough
def test_yu_checkpoint_usable_without_tensorflow(deepfill_release_ckpt):
    pytest.importorskip("jax")
    script = (
        "import sys; sys.modules['tensorflow'] = None  # any TF import now fails\n"
        "import numpy as np\n"
        "from inpaint import InpaintModel\n"
        f"m = InpaintModel.from_checkpoint({str(deepfill_release_ckpt)!r})\n"
        "img = np.full((16, 24, 3), 100, np.uint8); hole = np.zeros((16, 24), bool); hole[4:12, 8:16] = True\n"
        "out = m.inpaint(img, hole)\n"
        "assert out.shape == img.shape and (out[~hole] == 100).all()\n"
        "print('ok', m.weights_source)\n")
    env = dict(os.environ, KERAS_BACKEND="jax")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("ok")
