import numpy as np
import pytest

from gone import metrics

# no Keras: the TensorFlow run covers it (the `jax` subset is for code on the backend)


def _ramp(h=40, w=50, slope=0.01):
    """Gray ramp, `slope` intensity per pixel along x, as RGB uint8-free float in [0, 1]."""
    x = np.arange(w) * slope
    g = np.tile(x, (h, 1))
    return np.repeat(g[..., None], 3, axis=-1)


def _hole(h=40, w=50):
    hole = np.zeros((h, w), bool)
    hole[10:30, 15:35] = True
    return hole


def test_gradient_norm_flat_fill_equals_surrounding_slope():
    img = _ramp(slope=0.01)
    hole = _hole()
    img[hole] = 0.3                       # flat fill: zero gradient inside
    # gray of equal RGB channels = the value (luma weights sum to 1); Sobel/8 of a ramp = slope
    assert metrics.gradient_norm(img, hole) == pytest.approx(0.01, abs=1e-12)


def test_gradient_norm_zero_for_consistent_texture_and_flat_images():
    img = _ramp(slope=0.02)
    assert metrics.gradient_norm(img, _hole()) == pytest.approx(0.0, abs=1e-12)
    flat = np.full((40, 50, 3), 77, np.uint8)
    assert metrics.gradient_norm(flat, _hole()) == 0.0


def test_gradient_norm_uint8_scale_and_diagonal_ramp():
    # uint8 ramp of 2 levels per pixel along y and 3 along x: magnitude = hypot(2, 3) / 255
    yy, xx = np.mgrid[:40, :50]
    g = (2 * yy + 3 * xx).astype(np.uint8)
    img = np.repeat(g[..., None], 3, -1)
    hole = _hole()
    img[hole] = 100
    assert metrics.gradient_norm(img, hole) == pytest.approx(np.hypot(2, 3) / 255, rel=1e-9)


def test_gradient_norm_empty_regions_nan():
    assert np.isnan(metrics.gradient_norm(_ramp(), np.zeros((40, 50), bool)))


def test_psnr_ssim_l1_match_skimage():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-20, 21, size=a.shape), 0, 255).astype(np.uint8)
    assert metrics.psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), rel=1e-12)
    assert metrics.ssim(a, b) == pytest.approx(
        structural_similarity(a, b, channel_axis=-1, data_range=255), rel=1e-12)
    assert metrics.l1(a, b) == pytest.approx(np.abs(a.astype(float) - b).mean() / 255, rel=1e-12)
    assert metrics.psnr(a, a) == float("inf")


def test_masked_metrics_known_case():
    a = np.full((20, 20, 3), 100, np.uint8)
    b = a.copy()
    mask = np.zeros((20, 20), bool)
    mask[5:10, 5:10] = True
    b[mask] = 110                                    # error 10 inside the hole only
    assert metrics.l1(a, b, mask) == pytest.approx(10 / 255)
    assert metrics.l1(a, b) == pytest.approx(10 / 255 * 25 / 400)
    assert metrics.psnr(a, b, mask) == pytest.approx(10 * np.log10(255 ** 2 / 100))
    assert metrics.psnr(a, b, ~mask) == float("inf")
    assert metrics.ssim(a, a, mask) == pytest.approx(1.0)
    assert metrics.ssim(a, b, mask) < 1.0


def test_shape_mismatch_is_clear():
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.psnr(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))
