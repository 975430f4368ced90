"""Generator against the original test.py / build_server_graph outputs (infer_cases.npz)."""
import keras
import numpy as np
import pytest

from inpaint.generator import InpaintGenerator
from inpaint.model import InpaintModel

pytestmark = pytest.mark.jax


def _forward(gen, x, mask):
    if keras.backend.backend() == "jax":  # eager JAX dispatch is slow: jit the whole network
        import jax
        gen.build()
        run = jax.jit(lambda tv, x, m: gen.stateless_call(tv, [], [x, m], training=False)[0])
        outs = run([v.value for v in gen.trainable_variables], x, mask)
    else:
        outs = gen([x, mask], training=False)
    return [keras.ops.convert_to_numpy(t) for t in outs]


@pytest.fixture(scope="module")
def model(deepfill_release_ckpt):
    return InpaintModel.from_checkpoint(deepfill_release_ckpt)


@pytest.fixture(scope="module")
def infer_cases(deepfill_reference_dir):
    with np.load(deepfill_reference_dir / "infer_cases.npz") as data:
        return {k: data[k] for k in data.files}


@pytest.mark.parametrize("case", [0, 1])
def test_inference_case_matches_original(model, infer_cases, case):
    image = infer_cases[f"case{case}_image_bgr"]
    mask = infer_cases[f"case{case}_mask"]
    hole = mask[..., 0] > 127.5
    out = model.predict_raw(image, hole)
    for key in ("x1", "x2"):
        err = np.abs(out[key] - infer_cases[f"case{case}_{key}"]).max()
        assert err < 1e-4, f"{key}: max abs diff {err}"  # README: ~1e-5 expected
    ref_offsets = infer_cases[f"case{case}_offsets"]
    assert out["offsets"].shape == ref_offsets.shape
    # discrete: may differ only where two attention scores tie within rounding
    assert (out["offsets"] != ref_offsets).any(-1).mean() < 0.005
    flow_diff = np.abs(out["flow"] - infer_cases[f"case{case}_flow"])
    assert flow_diff.max() <= 1 / 127.5 + 1e-6 and (flow_diff > 1e-5).mean() < 0.01
    # test.py's own uint8 output, reproduced with its post-processing (truncation included)
    ref_out = infer_cases[f"case{case}_output_bgr"]
    assert np.abs(out["output_bgr"].astype(int) - ref_out).max() <= 1
    assert np.array_equal(out["output_bgr"][~hole], ref_out[~hole])


def test_layer_list_and_parameter_count():
    gen = InpaintGenerator()
    gen.build()
    names = gen.checkpoint_variables()
    assert len(names) == 84
    assert sum(int(np.prod(v.shape)) for v in names.values()) == 3601542
    assert tuple(names["inpaint_net/allconv11/kernel"].shape) == (3, 3, 256, 128)
    assert tuple(names["inpaint_net/xconv1/kernel"].shape) == (5, 5, 5, 32)
    assert gen.gen_layers["pmconv6"].activation_name == "relu"
    assert gen.gen_layers["conv17"].activation_name is None


@pytest.mark.parametrize("padding", ["SAME", "SYMMETRIC", "REFELECT"])
def test_runs_with_each_padding_and_any_multiple_of_8(padding):
    gen = InpaintGenerator(padding=padding)
    # dilation 16 at 1/4 scale: explicit padding needs H/4 > 16 (as the original)
    h, w = (24, 40) if padding == "SAME" else (72, 80)
    x = np.random.RandomState(0).uniform(-1, 1, (2, h, w, 3)).astype(np.float32)
    mask = np.zeros((1, h, w, 1), np.float32)
    mask[:, 8:16, 8:24] = 1
    x1, x2, flow = _forward(gen, x * (1 - mask), mask)
    assert x1.shape == x2.shape == (2, h, w, 3) and flow.shape == (2, h // 4, w // 4, 3)
    assert x1.min() >= -1 and x2.max() <= 1 and np.isfinite(x2).all()


def test_size_errors_are_clear():
    gen = InpaintGenerator()
    with pytest.raises(ValueError, match="multiples of 8"):
        gen([np.zeros((1, 20, 24, 3), np.float32), np.zeros((1, 20, 24, 1), np.float32)])
    with pytest.raises(ValueError, match=r"REFELECT padding by \d+ needs feature maps larger"):
        InpaintGenerator(padding="REFELECT")([np.zeros((1, 32, 32, 3), np.float32),
                                             np.zeros((1, 32, 32, 1), np.float32)])
