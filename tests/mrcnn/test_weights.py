"""Weight loading: the Keras-2 HDF5 layout of mask_rcnn_coco.h5 (reference manifest), exclude,
class-count changes, clear errors, native Keras 3 files."""
import json

import h5py
import numpy as np
import pytest

from mrcnn.weights import WeightLoadError, WeightsMismatchError


def coco_config(**overrides):
    from mrcnn.config import Config
    fields = dict(NAME="coco", NUM_CLASSES=81, IMAGES_PER_GPU=1, GPU_COUNT=1)
    fields.update(overrides)
    return Config(**fields)


@pytest.fixture(scope="module")
def coco_model():
    from mrcnn.model import MaskRCNN
    return MaskRCNN("inference", coco_config(), model_dir=None)


@pytest.mark.jax
def test_parameter_count(coco_model, mrcnn_reference_dir):
    manifest = json.loads((mrcnn_reference_dir / "mrcnn_coco_h5_manifest.json").read_text())
    assert coco_model.keras_model.count_params() == 64_158_584 == manifest["summary"]["n_params_total"]


def _assert_equal_to_file(model, path, skip=()):
    with h5py.File(path, "r") as f:
        names = [n.decode() if isinstance(n, bytes) else n for n in f.attrs["layer_names"]]
        n_checked = 0
        for name in names:
            wn = f[name].attrs["weight_names"]
            if len(wn) == 0 or name in skip:
                continue
            layer = model.keras_model.get_layer(name)
            for w, key in zip(layer.weights, wn):
                key = key.decode() if isinstance(key, bytes) else key
                np.testing.assert_array_equal(np.asarray(w.numpy()), f[name][key][()])
                n_checked += 1
    return n_checked


@pytest.mark.slow
def test_load_reference_layout_vlen_and_fixed(coco_model, mrcnn_reference_weights,
                                              mrcnn_reference_weights_fixed):
    coco_model.load_weights(mrcnn_reference_weights, by_name=True)
    assert _assert_equal_to_file(coco_model, mrcnn_reference_weights) == 690  # every dataset
    coco_model.load_weights(mrcnn_reference_weights_fixed, by_name=False)  # fixed strings, by order
    assert _assert_equal_to_file(coco_model, mrcnn_reference_weights_fixed) == 690


def _write_legacy(path, layers, extra_weightless=("activation_1", "input_gt_boxes"), fixed=True):
    """A Keras-2.0 style file (training-model layer list, fixed-length strings) from
    {layer name: [(weight name, array)]}."""
    names = list(extra_weightless) + list(layers)
    enc = (lambda xs: np.array([x.encode() for x in xs], dtype="S")) if fixed else (lambda xs: xs)
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = enc(names)
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.0.8"
        for n in names:
            g = f.create_group(n)
            ws = layers.get(n, [])
            g.attrs["weight_names"] = enc([w for w, _ in ws]) if ws else np.zeros(0)
            for w, a in ws:
                g.create_dataset(w, data=a)


@pytest.fixture(scope="module")
def tiny():
    import importlib.util
    import pathlib
    spec = importlib.util.spec_from_file_location(
        "_h2_detect_api", pathlib.Path(__file__).with_name("test_detect_api.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.tiny_config


def _layer_dict(model, scale=1.0, rename=None):
    out = {}
    for layer in model.keras_model.layers:
        if layer.weights:
            out[layer.name] = [(f"{layer.name}/w{i}_{w.name}:0", np.asarray(w.numpy()) * 0 + scale * (i + 1))
                               for i, w in enumerate(layer.weights)]
    return out


@pytest.mark.jax
def test_exclude_class_change_and_errors(tiny, tmp_path):
    from mrcnn.model import MaskRCNN
    src = MaskRCNN("inference", tiny(NUM_CLASSES=4), None)
    path = tmp_path / "tiny_legacy.h5"
    _write_legacy(path, _layer_dict(src, 0.5))
    src.load_weights(path, by_name=True)
    assert float(src.keras_model.get_layer("fpn_p2").weights[1].numpy()[0]) == 1.0

    # a different class count: the heads mismatch -> one error naming them with shapes
    other = MaskRCNN("inference", tiny(NUM_CLASSES=7), None)
    with pytest.raises(WeightLoadError) as err:
        other.load_weights(path, by_name=True)
    msg = str(err.value)
    for name in ("mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_mask"):
        assert name in msg
    assert "expected [(32, 7), (7,)], found [(32, 4), (4,)]" in msg
    # Matterport's recipe: exclude the class-specific heads
    heads = ["mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_bbox", "mrcnn_mask"]
    before = np.asarray(other.keras_model.get_layer("mrcnn_mask").weights[0].numpy())
    other.load_weights(path, by_name=True, exclude=heads)
    assert float(other.keras_model.get_layer("fpn_p2").weights[1].numpy()[0]) == 1.0
    np.testing.assert_array_equal(other.keras_model.get_layer("mrcnn_mask").weights[0].numpy(), before)

    # corrupt / foreign files
    bad = tmp_path / "garbage.h5"
    bad.write_bytes(b"not an hdf5 file" * 10)
    with pytest.raises(WeightLoadError, match="cannot read"):
        src.load_weights(bad, by_name=True)
    with pytest.raises(WeightLoadError, match="not found"):
        src.load_weights(tmp_path / "missing.h5")
    broken = tmp_path / "broken.h5"
    d = _layer_dict(src)
    d["fpn_p2"] = d["fpn_p2"][:1]  # bias missing
    _write_legacy(broken, d)
    with pytest.raises(WeightLoadError, match="fpn_p2: expected"):
        src.load_weights(broken, by_name=True)
    with pytest.raises(WeightsMismatchError, match="weight groups in the file"):
        src.load_weights(path, by_name=False, exclude=["fpn_p2"])

    # a file with a few of the model's layers: an error naming them, unless partial loads are allowed
    few = tmp_path / "few.h5"
    _write_legacy(few, {k: v for k, v in _layer_dict(src, 0.25).items() if k in ("fpn_p2", "fpn_p3")})
    with pytest.raises(WeightsMismatchError, match=r"of the model's \d+ weighted layers are not in the file"
                       r" \(missing: \w+, .+ more\); the file has: fpn_p2, fpn_p3\)") as err:
        src.load_weights(few, by_name=True)
    assert isinstance(err.value, ValueError) and "array(" not in str(err.value)
    missing = src.load_weights(few, by_name=True, allow_partial=True)
    assert "mrcnn_mask" in missing and "fpn_p2" not in missing
    assert float(src.keras_model.get_layer("fpn_p2").weights[1].numpy()[0]) == 0.5


@pytest.mark.jax
def test_native_keras3_round_trip(tiny, tmp_path):
    from mrcnn.model import MaskRCNN
    a = MaskRCNN("inference", tiny(), None)
    b = MaskRCNN("inference", tiny(), None)
    path = tmp_path / "tiny.weights.h5"
    a.save_weights(path)
    b.load_weights(path)
    for wa, wb in zip(a.keras_model.weights, b.keras_model.weights):
        np.testing.assert_array_equal(np.asarray(wa.numpy()), np.asarray(wb.numpy()))
    # another architecture: one line naming the weights and shapes, no arrays
    other = MaskRCNN("inference", tiny(NUM_CLASSES=7), None)
    with pytest.raises(WeightsMismatchError, match=r"native Keras 3 weights do not fit this model .*"
                       r"mrcnn_class_logits/\S*kernel \(32, 7\)") as err:
        other.load_weights(path)
    assert "\n" not in str(err.value) and "array(" not in str(err.value) and len(str(err.value)) < 1500


@pytest.mark.jax
def test_keras2_h5_round_trip_by_name(tiny, tmp_path):
    """save_weights(*.h5) writes Matterport's layout; it loads back by name and by order."""
    import keras
    from mrcnn.model import MaskRCNN
    keras.utils.set_random_seed(3)
    a = MaskRCNN("inference", tiny(), None)
    keras.utils.set_random_seed(4)
    b = MaskRCNN("inference", tiny(), None)
    path = tmp_path / "tiny.h5"
    a.save_weights(path)
    assert not [p for p in tmp_path.iterdir() if p.name != "tiny.h5"]  # no temporary left
    with h5py.File(path, "r") as f:
        assert [n.decode() for n in f.attrs["layer_names"]] == [l.name for l in a.keras_model.layers]
    assert b.load_weights(path, by_name=True) == []
    assert _assert_equal_to_file(b, path) == len(a.keras_model.weights)
    b.load_weights(path, by_name=False)
    assert _assert_equal_to_file(b, path) == len(a.keras_model.weights)


@pytest.mark.jax
def test_nan_or_inf_weight_is_refused_in_both_layouts(tiny, tmp_path):
    from mrcnn.model import MaskRCNN
    model = MaskRCNN("inference", tiny(), None)
    layers = _layer_dict(model, 0.5)
    layers["fpn_p3"][1][1][0] = np.nan
    legacy = tmp_path / "nan_legacy.h5"
    _write_legacy(legacy, layers)
    before = np.asarray(model.keras_model.get_layer("fpn_p2").weights[1].numpy())
    with pytest.raises(WeightLoadError, match=r"nan_legacy.h5: weight fpn_p3/fpn_p3/w1_\S+ holds 1 NaN/Inf "
                                              r"value\(s\) of \d+; refusing") as err:
        model.load_weights(legacy, by_name=True)
    assert "\n" not in str(err.value)
    np.testing.assert_array_equal(model.keras_model.get_layer("fpn_p2").weights[1].numpy(), before)  # untouched
    native = tmp_path / "inf.weights.h5"
    model.save_weights(native)
    with h5py.File(native, "r+") as f:
        names = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) and o.dtype.kind == "f" else None)
        ds = f[names[0]]
        value = ds[()]
        value.flat[0] = np.inf
        ds[...] = value
    with pytest.raises(WeightLoadError, match=rf"inf.weights.h5: weight {names[0]} holds 1 NaN/Inf"):
        model.load_weights(native)
