"""The torch checkpoint reader (no PyTorch) on the reference checkpoint and on crafted files, the
native file and `python -m lama.convert`."""
import collections
import json
import sys

import numpy as np
import pytest

from lama import CheckpointError, LamaInpainter
from lama.checkpoint import Placeholder, load_npz_state, read_generator_state, read_torch_checkpoint
from lama.convert import main as convert_main


pytestmark = pytest.mark.jax


def test_reference_checkpoint_structure(lama_reference_dir):
    obj = read_torch_checkpoint(lama_reference_dir / "lama_generator_random_small.ckpt")
    assert obj["pytorch-lightning_version"] == "1.2.9"
    assert isinstance(obj["state_dict"], collections.OrderedDict)
    sd = obj["state_dict"]
    assert len(sd) == 157 and all(k.startswith("generator.model.") for k in sd)
    w = sd["generator.model.1.ffc.convl2l.weight"]
    assert w.shape == (16, 4, 7, 7) and w.dtype == np.float32
    assert sd["generator.model.1.bn_l.num_batches_tracked"].dtype == np.int64


def test_reference_checkpoint_matches_make_weights(lama_reference_dir, tmp_path):
    """The reduced checkpoint holds exactly the make_weights.py tensors of variables_small.txt."""
    import subprocess
    out = tmp_path / "small.npz"
    subprocess.run([sys.executable, str(lama_reference_dir / "make_weights.py"),
                    str(lama_reference_dir / "variables_small.txt"), "--npz", str(out)], check=True,
                   capture_output=True)
    state = read_generator_state(lama_reference_dir / "lama_generator_random_small.ckpt")
    with np.load(out) as z:
        assert len(z.files) == 157
        for key in z.files:
            np.testing.assert_array_equal(state[key[len("generator."):]], z[key])


def test_malicious_pickle_runs_nothing(tz, tmp_path, small_state):
    marker = tmp_path / "pwned"
    evil = {
        "a": tz.Call(tz.Global("os", "system"), (f"touch {marker}",)),
        "b": tz.Call(tz.Global("builtins", "exec"), (f"open({str(marker)!r}, 'w').write('x')",)),
        "c": tz.Call(tz.Global("builtins", "eval"), (f"__import__('os').mkdir({str(marker)!r})",)),
        "d": tz.Call(tz.Global("gone_lama_test_module_that_must_not_import", "f"), ()),
        "e": tz.Call(tz.Global("subprocess", "Popen"), (["touch", str(marker)],)),
    }
    path = tz.write(tmp_path / "evil.ckpt", tz.lightning(small_state, **evil))
    before = set(sys.modules)
    obj = read_torch_checkpoint(path)
    assert not marker.exists()
    assert "gone_lama_test_module_that_must_not_import" not in sys.modules
    assert not {"subprocess"} & (set(sys.modules) - before)
    assert isinstance(obj["a"], Placeholder) and obj["a"].args == (f"touch {marker}",)
    assert (obj["a"].module, obj["a"].name) == ("os", "system")
    assert isinstance(obj["b"], Placeholder)
    # the generator still loads from such a file, and nothing ran
    model = LamaInpainter.from_checkpoint(path)
    assert model.config.NGF == 16 and not marker.exists()


def test_malicious_top_level_object_is_refused(tz, tmp_path):
    marker = tmp_path / "pwned"
    path = tz.write(tmp_path / "evil.ckpt", tz.Call(tz.Global("os", "system"), (f"touch {marker}",)))
    with pytest.raises(CheckpointError, match="no state_dict in the checkpoint"):
        LamaInpainter.from_checkpoint(path)
    assert not marker.exists()


def test_callback_states_keyed_by_class_and_config_objects(tz, tmp_path, small_state):
    """Lightning < 1.5 keys callback states by the callback class; hyper-parameters may be config
    objects (OmegaConf DictConfig built with setstate, argparse Namespace via copyreg)."""
    callbacks = {tz.Global("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint"):
                 {"best_model_score": tz.Tensor(np.array(0.25, np.float32)), "best_model_path": "x.ckpt"},
                 tz.Global("pytorch_lightning.callbacks.early_stopping", "EarlyStopping"): {"wait_count": 3}}
    hparams = tz.Call(tz.Global("omegaconf.dictconfig", "DictConfig"), ({"generator": {"ngf": 16}},),
                   state={"_content": {"kind": "ffc_resnet"}, "_metadata": None})
    namespace = tz.Call(tz.Global("copyreg", "_reconstructor"),
                     (tz.Global("argparse", "Namespace"), tz.Global("builtins", "object"), None), state={"lr": 0.001})
    ckpt = tz.lightning(small_state, callbacks=callbacks, hyper_parameters=hparams, hparams=namespace,
                                optimizer_states=[{"state": {0: {"exp_avg": tz.Tensor(np.ones(3, np.float32))}}}])
    path = tz.write(tmp_path / "lightning.ckpt", ckpt)
    obj = read_torch_checkpoint(path)
    keys = list(obj["callbacks"])
    assert [k.name for k in keys] == ["ModelCheckpoint", "EarlyStopping"]
    assert float(obj["callbacks"][keys[0]]["best_model_score"]) == 0.25
    assert obj["hyper_parameters"].state["_content"] == {"kind": "ffc_resnet"}
    state = read_generator_state(path)
    assert len(state) == 157
    np.testing.assert_array_equal(state["model.1.ffc.convl2l.weight"], small_state["generator.model.1.ffc.convl2l.weight"])
    assert LamaInpainter.from_checkpoint(path).config.N_BLOCKS == 2


def test_big_endian_checkpoint(tz, tmp_path, small_state):
    path = tz.write(tmp_path / "be.ckpt", tz.lightning(small_state), byteorder="big")
    state = read_generator_state(path)
    for key, value in small_state.items():
        np.testing.assert_array_equal(state[key[len("generator."):]], value)


def test_truncated_files_are_refused(tz, tmp_path, lama_reference_dir, small_state):
    data = (lama_reference_dir / "lama_generator_random_small.ckpt").read_bytes()
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.ckpt: not a PyTorch zip checkpoint, or truncated"):
        LamaInpainter.from_checkpoint(cut)
    # a storage shorter than its tensors (the zip itself intact)
    state = dict(small_state)
    w = state["generator.model.1.ffc.convl2l.weight"]
    ckpt = tz.lightning(state)
    ckpt["state_dict"].args[0][0] = ("generator.model.1.ffc.convl2l.weight", tz.Tensor(w[:8], size=w.shape, numel=w.size))
    short = tz.write(tmp_path / "short.ckpt", ckpt)
    with pytest.raises(CheckpointError, match="truncated checkpoint: storage 0 has 6272 bytes, needs 12544"):
        read_generator_state(short)
    # a tensor whose geometry reaches beyond its storage
    ckpt["state_dict"].args[0][0] = ("generator.model.1.ffc.convl2l.weight", tz.Tensor(w[:8], size=w.shape, numel=w[:8].size))
    beyond = tz.write(tmp_path / "beyond.ckpt", ckpt)
    with pytest.raises(CheckpointError, match="truncated checkpoint: tensor data beyond storage 0"):
        read_generator_state(beyond)


def test_not_a_checkpoint(tz, tmp_path):
    text = tmp_path / "notes.ckpt"
    text.write_text("hello\n")
    with pytest.raises(CheckpointError, match="not a PyTorch zip checkpoint"):
        LamaInpainter.from_checkpoint(text)
    with pytest.raises(CheckpointError, match="no such file or folder"):
        LamaInpainter.from_checkpoint(tmp_path / "absent.ckpt")
    with pytest.raises(CheckpointError, match=r"not a LaMa model folder \(models/best\.ckpt is missing\)"):
        LamaInpainter.from_checkpoint(tmp_path)
    no_gen = tz.write(tmp_path / "disc.ckpt", tz.lightning({"discriminator.w": np.ones(2, np.float32)}))
    with pytest.raises(CheckpointError, match="no generator.. weights in the checkpoint's state_dict"):
        LamaInpainter.from_checkpoint(no_gen)


def test_missing_key_is_refused(tz, tmp_path, small_state):
    state = {k: v for k, v in small_state.items() if k != "generator.model.5.conv2.ffc.convg2g.fu.bn.running_var"}
    path = tz.write(tmp_path / "missing.ckpt", tz.lightning(state))
    with pytest.raises(CheckpointError, match=r"missing\.ckpt: generator weights do not match the configuration: "
                                              r"1 missing \(e\.g\. model\.5\.conv2\.ffc\.convg2g\.fu\.bn\.running_var\)"):
        LamaInpainter.from_checkpoint(path)


def test_wrong_shape_is_refused(tz, tmp_path, small_state):
    state = dict(small_state)
    state["generator.model.2.ffc.convl2l.weight"] = np.zeros((32, 16, 3, 1), np.float32)
    path = tz.write(tmp_path / "shape.ckpt", tz.lightning(state))
    with pytest.raises(CheckpointError, match=r"model\.2\.ffc\.convl2l\.weight has shape \(32, 16, 3, 1\)"):
        LamaInpainter.from_checkpoint(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_is_refused(tz, tmp_path, small_state, bad):
    state = dict(small_state)
    w = state["generator.model.18.weight"].copy()
    w[0, 0, 0, 0] = bad
    state["generator.model.18.weight"] = w
    path = tz.write(tmp_path / "nan.ckpt", tz.lightning(state))
    with pytest.raises(CheckpointError, match=r"weight model\.18\.weight contains NaN or Inf"):
        LamaInpainter.from_checkpoint(path)


def test_model_folder_reads_config_yaml(tmp_path, lama_reference_dir, small_generator_yaml):
    folder = tmp_path / "big-lama"
    (folder / "models").mkdir(parents=True)
    (folder / "models" / "best.ckpt").write_bytes((lama_reference_dir / "lama_generator_random_small.ckpt").read_bytes())
    indented = "".join("  " + line + "\n" for line in small_generator_yaml.splitlines())
    (folder / "config.yaml").write_text("run_title: x\ntraining_model:\n  kind: default\ngenerator:\n" + indented)
    model = LamaInpainter.from_checkpoint(folder)
    assert (model.config.NGF, model.config.N_BLOCKS, model.config.RESNET_RATIO_GIN) == (16, 2, 0.75)
    # a config.yaml that disagrees with the weights is refused, not silently ignored
    (folder / "config.yaml").write_text("generator:\n" + indented.replace("ngf: 16", "ngf: 32"))
    with pytest.raises(CheckpointError, match=r"model\.1\.ffc\.convl2l\.weight has shape \(16, 4, 7, 7\), which does "
                                              "not fit the configuration"):
        LamaInpainter.from_checkpoint(folder)
    (folder / "config.yaml").write_text("generator:\n" + indented.replace("enable_lfu: false", "enable_lfu: true"))
    with pytest.raises(CheckpointError, match=r"config\.yaml: enable_lfu=True \(local Fourier units\) is not implemented"):
        LamaInpainter.from_checkpoint(folder)


def test_convert_writes_native_file(tmp_path, lama_reference_dir, capsys):
    src = lama_reference_dir / "lama_generator_random_small.ckpt"
    dst = tmp_path / "small.npz"
    assert convert_main([str(src), str(dst)]) == 0
    assert "ngf 16, 2 blocks, float32" in capsys.readouterr().out
    state, manifest = load_npz_state(dst)
    assert manifest["format"] == "gone-lama-v1" and manifest["generator_config"]["NGF"] == 16
    reference = read_generator_state(src)
    assert set(state) == {k for k in reference if not k.endswith("num_batches_tracked")}
    for key in state:
        np.testing.assert_array_equal(state[key], reference[key])
    assert [p.name for p in tmp_path.iterdir()] == ["small.npz"]      # no temp file left behind
    model = LamaInpainter.from_checkpoint(dst)
    assert model.config.N_BLOCKS == 2 and model.weights_source == str(dst)

    half = tmp_path / "half.npz"
    assert convert_main([str(src), str(half), "--float16"]) == 0
    with np.load(half) as z:
        assert z["model.1.ffc.convl2l.weight"].dtype == np.float16
        note = json.loads(str(z["__manifest__"]))
    assert note["stored_dtype"] == "float16" and "rounded to float16" in note["note"]
    state16, _ = load_npz_state(half)
    w = reference["model.1.ffc.convl2l.weight"]
    assert state16["model.1.ffc.convl2l.weight"].dtype == np.float32
    assert np.abs(state16["model.1.ffc.convl2l.weight"] - w).max() <= 1e-3 * np.abs(w).max()


def test_convert_refuses_bad_input_without_writing(tmp_path, capsys):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"PK\x03\x04 not really")
    dst = tmp_path / "out.npz"
    dst.write_bytes(b"keep me")
    assert convert_main([str(bad), str(dst)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "not a PyTorch zip checkpoint" in err
    assert dst.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.ckpt", "out.npz"]
