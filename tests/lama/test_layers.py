"""LaMa layers against the single-module cases of the original (ffc_block_cases.npz) and their
Keras serialization. Backend-neutral: these also run under KERAS_BACKEND=jax."""
import keras
import numpy as np
import pytest

from lama import layers as L
from lama.generator import LamaGenerator
from lama.config import LamaConfig

pytestmark = pytest.mark.jax


def nhwc(a):
    return np.transpose(a, (0, 2, 3, 1))


@pytest.fixture(scope="module")
def cases(lama_reference_dir):
    with np.load(lama_reference_dir / "ffc_block_cases.npz") as z:
        return {k: z[k] for k in z.files}


def params(cases, case):
    p = case + "/param/"
    return {k[len(p):]: v for k, v in cases.items() if k.startswith(p)}


def loaded(layer, cases, case):
    L.assign_torch_state(layer.torch_variables(""), params(cases, case))
    return layer


def assert_close(got, want_nchw):
    """README: an independent float64 implementation is within 4e-7 of each output's largest
    magnitude; a float32 port is allowed 1e-6 of it (2.5x)."""
    want = nhwc(want_nchw)
    got = keras.ops.convert_to_numpy(got)
    assert got.shape == want.shape
    err = np.abs(got - want).max()
    assert err <= 1e-6 * np.abs(want).max(), err


def test_ffc_bn_act_global_to_global(cases):
    layer = loaded(L.FFC_BN_ACT(64, 64, 3, 0.75, 0.75, padding=1), cases, "ffc_bn_act_075")
    y_l, y_g = layer(nhwc(cases["ffc_bn_act_075/in/x_l"]), nhwc(cases["ffc_bn_act_075/in/x_g"]))
    assert_close(y_l, cases["ffc_bn_act_075/out/y_l"])
    assert_close(y_g, cases["ffc_bn_act_075/out/y_g"])


def test_ffc_bn_act_downsampling_split(cases):
    c = "ffc_bn_act_down_0_to_075"
    layer = loaded(L.FFC_BN_ACT(32, 64, 3, 0, 0.75, stride=2, padding=1), cases, c)
    y_l, y_g = layer(nhwc(cases[c + "/in/x_l"]), None)
    assert_close(y_l, cases[c + "/out/y_l"])
    assert_close(y_g, cases[c + "/out/y_g"])


def test_ffc_resnet_block(cases):
    layer = loaded(L.FFCResnetBlock(64, 0.75, 0.75), cases, "ffc_resnet_block")
    y_l, y_g = layer(nhwc(cases["ffc_resnet_block/in/x_l"]), nhwc(cases["ffc_resnet_block/in/x_g"]))
    assert_close(y_l, cases["ffc_resnet_block/out/y_l"])
    assert_close(y_g, cases["ffc_resnet_block/out/y_g"])


def test_spectral_transform(cases):
    layer = loaded(L.SpectralTransform(48, 48), cases, "spectral_transform")
    assert_close(layer(nhwc(cases["spectral_transform/in/x"])), cases["spectral_transform/out/y"])


@pytest.mark.parametrize("case", ["fourier_unit_even", "fourier_unit_odd"])
def test_fourier_unit(cases, case):
    layer = loaded(L.FourierUnit(24), cases, case)
    x = nhwc(cases[case + "/in/x"])
    assert_close(layer(x), cases[case + "/out/y"])
    # the interleaved spectrum (2c = Re, 2c+1 = Im), (N, 2C, Wf, H) here, (N, 2C, H, Wf) in torch
    spectrum = np.transpose(keras.ops.convert_to_numpy(layer.spectrum(x)), (0, 1, 3, 2))
    want = cases[case + "/spectrum_stacked"]
    assert spectrum.shape == want.shape
    assert np.abs(spectrum - want).max() <= 1e-6 * np.abs(want).max()
    re, im = L.rfft2_ortho(np.transpose(x, (0, 3, 1, 2)))
    assert np.abs(np.swapaxes(keras.ops.convert_to_numpy(re), -1, -2) - cases[case + "/rfftn_ortho_real"]).max() < 1e-5
    assert np.abs(np.swapaxes(keras.ops.convert_to_numpy(im), -1, -2) - cases[case + "/rfftn_ortho_imag"]).max() < 1e-5


def test_irfft2_treats_a_non_hermitian_spectrum_as_the_original():
    """The README's three-step inverse equals numpy's pocketfft irfftn (torch CPU's result) on a
    spectrum whose bin-0 / Nyquist columns have imaginary parts, for even and odd W."""
    rng = np.random.default_rng(0)
    for h, w in ((6, 8), (5, 7)):
        y = rng.standard_normal((2, 3, h, w // 2 + 1)) + 1j * rng.standard_normal((2, 3, h, w // 2 + 1))
        want = np.fft.irfftn(y, s=(h, w), axes=(-2, -1), norm="ortho")
        re = np.swapaxes(y.real, -1, -2).astype(np.float32)
        im = np.swapaxes(y.imag, -1, -2).astype(np.float32)
        got = keras.ops.convert_to_numpy(L.irfft2_ortho(re, im, h, w))
        assert np.abs(got - want).max() < 1e-5


def test_conv_transpose_alignment(cases):
    c = "torch_convtranspose_k3s2p1op1"
    layer = loaded(L.ConvTranspose(32, 16), cases, c)
    assert_close(layer(nhwc(cases[c + "/in/x"])), cases[c + "/out/y"])


def test_strided_reflect_conv(cases):
    c = "torch_conv_reflect_k3s2p1"
    layer = loaded(L.Conv(16, 8, 3, stride=2, padding=1), cases, c)
    assert_close(layer(nhwc(cases[c + "/in/x"])), cases[c + "/out/y"])


def test_weights_that_do_not_fit_are_refused_before_any_assignment(cases):
    layer = L.FFC_BN_ACT(64, 64, 3, 0.75, 0.75, padding=1)
    before = keras.ops.convert_to_numpy(layer.bn_l.gamma).copy()
    p = params(cases, "ffc_bn_act_075")
    del p["ffc.convg2l.weight"]
    with pytest.raises(ValueError, match=r"1 missing \(e\.g\. ffc\.convg2l\.weight\)"):
        L.assign_torch_state(layer.torch_variables(""), p)
    p = params(cases, "ffc_bn_act_075")
    p["ffc.convl2l.weight"] = p["ffc.convl2l.weight"][:, :8]
    with pytest.raises(ValueError, match=r"ffc\.convl2l\.weight has shape \(16, 8, 3, 3\)"):
        L.assign_torch_state(layer.torch_variables(""), p)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.bn_l.gamma), before)


LAYERS = [
    lambda: L.Conv(8, 4, 3, stride=2, padding=1, use_bias=True),
    lambda: L.ConvTranspose(8, 4),
    lambda: L.BatchNorm(6, epsilon=1e-5, axis=1),
    lambda: L.FourierUnit(4),
    lambda: L.SpectralTransform(8, 8),
    lambda: L.FFC_BN_ACT(8, 16, 3, 0, 0.75, stride=2, padding=1),
    lambda: L.FFCResnetBlock(16, 0.75, 0.75),
]


@pytest.mark.parametrize("make", LAYERS, ids=["Conv", "ConvTranspose", "BatchNorm", "FourierUnit",
                                              "SpectralTransform", "FFC_BN_ACT", "FFCResnetBlock"])
def test_layer_serialization_round_trip(make):
    layer = make()
    config = keras.saving.serialize_keras_object(layer)
    clone = keras.saving.deserialize_keras_object(config)
    assert type(clone) is type(layer)
    assert clone.get_config() == layer.get_config()
    assert [tuple(v.shape) for v in clone.weights] == [tuple(v.shape) for v in layer.weights]


def test_generator_save_and_load_keeps_outputs(tmp_path):
    gen = LamaGenerator(LamaConfig(NGF=8, N_BLOCKS=1, N_DOWNSAMPLING=2))
    rng = np.random.default_rng(1)
    for v in gen.weights:
        v.assign(rng.uniform(0.5, 1.0, v.shape).astype("float32") * 0.3)
    x = rng.uniform(0, 1, (1, 16, 12, 4)).astype("float32")
    path = tmp_path / "lama.keras"
    gen.save(path)
    clone = keras.saving.load_model(path)
    assert isinstance(clone, LamaGenerator)
    assert clone.config == gen.config
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(clone(x)), keras.ops.convert_to_numpy(gen(x)))
