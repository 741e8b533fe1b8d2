"""Richardson-Lucy with a known background and Gaussian read noise (issue 11).

Model y ~ Poisson(H x + b) + N(0, sigma^2), handled by the shift of Snyder, Hammoud & White
(JOSA A 10:1014, 1993): x <- x ⊙ Hᵀ(w ⊙ (y + sigma²)₊ ⊘ (H x + b + sigma²)) ⊘ Hᵀw.  The physics
tests draw noisy data from the forward model with fixed seeds and compare the recovered flux
sum(H x) with the true one, so they would fail if the background or the read noise were ignored.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from recon_helpers import microscope, synthetic_psf

from reconstruction import backend
from reconstruction.deconvolution import READ_NOISE_SIGMAS, CheckpointError, richardson_lucy
from reconstruction.operator import LightFieldOperator  # noqa: E402


def _op(dtype=np.float64, n=5, s=3, lenslets=(4, 5), radii=(2, 0, 1), seed=7, device="cpu"):
    m = microscope(n, s, lenslets, z=[-2.0, 0.0, 2.0])
    psf = synthetic_psf(m, list(radii), np.random.default_rng(seed), np.float64)
    return LightFieldOperator(psf, device, dtype)


def _dense_object(op, rng, mean_counts):
    """A volume with every voxel > 0, scaled so that H x has mean ``mean_counts`` per pixel."""
    x = 0.5 + rng.random(op.volume_shape)
    return x * (mean_counts / float(op.forward(x).mean()))


def _flux(op, x):
    return float(op.forward(x).sum(dtype=np.float64))


def test_defaults_are_bit_identical_to_classical_rl():
    op = _op(np.float32)
    rng = np.random.default_rng(3)
    y = (rng.random(op.image_shape) * 50).astype(np.float32)
    ref = richardson_lucy(y, op, 5, progress=False)
    for kw in (dict(background=None, read_noise=None), dict(background=0, read_noise=0.0),
               dict(background=np.zeros(op.image_shape)), dict(read_noise=0)):
        np.testing.assert_array_equal(richardson_lucy(y, op, 5, progress=False, **kw), ref)
    # with weights and a batch too (the per-frame default start and Hᵀw of each frame)
    ys = (rng.random((2, *op.image_shape)) * 50).astype(np.float32)
    w = np.array([1.0, 0.5], np.float32).reshape(2, 1, 1)
    ref = richardson_lucy(ys, op, 4, progress=False, weights=w)
    np.testing.assert_array_equal(
        richardson_lucy(ys, op, 4, progress=False, weights=w, background=None, read_noise=None), ref)


def test_background_term_removes_the_background_bias():
    """A dim object (mean H x = 100 counts/pixel) under a uniform b = 200 counts/pixel.

    RL with background=b recovers sum(H x_true) to within 3 %: the Poisson noise of the total is
    sqrt(sum(H x + b)) / sum(H x) = 0.77 %, so 3 % is ~4 standard deviations (measured -1.0 % for
    this seed, +0.1..+0.7 % for seeds 0-2).  RL without the term conserves sum(H x) = sum(y), so it
    puts the whole background, b * npix = 2 x the object's flux, into the volume: measured 99.4 %
    of it (tolerance 2 %, the same Poisson noise relative to b * npix).
    """
    op = _op(np.float64)
    rng = np.random.default_rng(11)
    x_true = _dense_object(op, rng, 100.0)
    hx = op.forward(x_true)
    b = 200.0
    y = rng.poisson(hx + b).astype(np.float64)
    truth = float(hx.sum())

    x_b = richardson_lucy(y, op, 30, background=b, progress=False)
    x_n = richardson_lucy(y, op, 30, progress=False)
    assert np.isfinite(x_b).all() and (x_b >= 0).all()
    assert abs(_flux(op, x_b) / truth - 1) < 0.03
    excess = (_flux(op, x_n) - truth) / (b * y.size)  # the fraction of the background absorbed
    assert abs(excess - 1) < 0.02
    # the default start already excludes the background: sum(H x0) = sum(y - b)
    x0 = richardson_lucy(y, op, 0, background=b, progress=False)
    assert abs(_flux(op, x0) - float((y - b).sum())) < 1e-9 * truth


def _clip_bias_per_pixel(mean, std):
    """E[max(Y, 0)] - E[Y] of a normal Y ~ N(mean, std^2): std φ(m/s) - m Φ(-m/s)."""
    z = mean / std
    phi = np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    Phi_minus = 0.5 * np.vectorize(math.erfc)(z / math.sqrt(2))
    return std * phi - mean * Phi_minus


def test_read_noise_is_unbiased_where_clipping_is_not():
    """Offset-subtracted data y = Poisson(H x + b) + N(0, sigma^2), not clipped: 21 % negative.

    16 frames of one object (mean H x = 1 count/pixel, b = 1, sigma = 2 e-) on a well-determined
    operator (60 voxels, 1575 pixels: 26 pixels per unknown, so the positivity constraint
    hardly acts).  Noise of the summed flux: sqrt(sum(H x + b + sigma^2)) / sum(H x) = 1.5 %.
    RL with read_noise and background: flux within 5 % of the truth (measured +1.2 % for this
    seed, +1.3..+2.2 % for seeds 0-3: noise plus the small positivity bias of a non-negative
    estimate at low counts).  Clipping y at 0 first adds E[max(y, 0)] - E[y] per pixel, +29 % of
    the flux by the normal approximation below; RL on the clipped data inherits it (measured +27 %).
    Measured difference between the two: 26 % of the flux (asserted > 15 %).
    """
    op = _op(np.float32, n=9, s=1)
    rng = np.random.default_rng(5)
    t, b, sigma = 16, 1.0, 2.0
    x_true = _dense_object(op, rng, 1.0)
    hx = op.forward(x_true).astype(np.float64)
    mean = np.broadcast_to(hx + b, (t, *hx.shape))
    y = rng.poisson(mean) + rng.normal(0.0, sigma, mean.shape)
    assert 0.15 < (y < 0).mean() < 0.3 and y.min() > -READ_NOISE_SIGMAS * sigma
    truth = t * float(hx.sum())

    x_r = richardson_lucy(y, op, 30, background=b, read_noise=sigma, progress=False)
    assert x_r.shape == (t, *op.volume_shape) and np.isfinite(x_r).all() and (x_r >= 0).all()
    bias_r = _flux(op, x_r) / truth - 1
    assert abs(bias_r) < 0.05

    x_c = richardson_lucy(np.maximum(y, 0), op, 30, background=b, progress=False)
    bias_c = _flux(op, x_c) / truth - 1
    predicted = t * float(_clip_bias_per_pixel(hx + b, np.sqrt(hx + b + sigma**2)).sum()) / truth
    assert predicted > 0.2  # the clipping bias is large here...
    assert abs(bias_c - predicted) < 0.05  # ...RL on clipped data shows it (measured +27 %)
    assert bias_c > bias_r + 0.15


@pytest.mark.parametrize("case", ["scalar", "map_and_read_noise", "map_with_zeros"])
def test_noise_free_data_make_the_truth_a_fixed_point(case):
    """y = H x* + b exactly: one iteration from x0 = x* leaves it (< 1e-4 relative; measured
    ~2e-16 in float64), while the classical update (no background term) moves it by ~110 % of
    max(x*) (asserted > 10 %)."""
    op = _op(np.float64)
    rng = np.random.default_rng(2)
    x_star = _dense_object(op, rng, 20.0)
    hx = op.forward(x_star)
    kw = {"scalar": dict(background=15.0),
          "map_and_read_noise": dict(background=rng.random(op.image_shape) * 30, read_noise=1.5),
          "map_with_zeros": dict(background=np.where(rng.random(op.image_shape) < 0.5, 0.0, 30.0))}[case]
    y = hx + kw["background"]
    x1 = richardson_lucy(y, op, 1, x0=x_star, progress=False, **kw)
    assert np.max(np.abs(x1 - x_star)) < 1e-4 * np.max(x_star)
    x1_classic = richardson_lucy(y, op, 1, x0=x_star, progress=False)
    assert np.max(np.abs(x1_classic - x_star)) > 0.1 * np.max(x_star)


def test_per_frame_background_broadcasts_over_a_series():
    op = _op(np.float64)
    rng = np.random.default_rng(4)
    ys = rng.random((3, *op.image_shape)) * 20 + np.array([1.0, 5.0, 9.0]).reshape(3, 1, 1)
    levels = np.array([1.0, 5.0, 9.0]).reshape(3, 1, 1)
    xs = richardson_lucy(ys, op, 4, background=levels, read_noise=1.0, progress=False)
    for i in range(3):
        xi = richardson_lucy(ys[i], op, 4, background=float(levels[i, 0, 0]), read_noise=1.0, progress=False)
        np.testing.assert_allclose(xs[i], xi, rtol=1e-10)


def test_checkpoint_fingerprint_includes_background_and_read_noise(tmp_path):
    op = _op(np.float64)
    y = np.random.default_rng(6).random(op.image_shape) * 20 + 3
    ck = tmp_path / "rl.npz"
    ref = richardson_lucy(y, op, 4, background=2.0, read_noise=1.0, progress=False)
    richardson_lucy(y, op, 2, background=2.0, read_noise=1.0, progress=False, checkpoint=ck, checkpoint_every=2)
    out = richardson_lucy(y, op, 4, background=np.full(op.image_shape, 2.0), read_noise=1.0, progress=False,
                          checkpoint=ck)  # the same background as a map: the same problem, resumed
    np.testing.assert_allclose(out, ref, rtol=1e-12)
    for kw in (dict(background=3.0, read_noise=1.0), dict(background=2.0), dict(read_noise=1.0)):
        with pytest.raises(CheckpointError, match="another"):
            richardson_lucy(y, op, 6, progress=False, checkpoint=ck, **kw)


class _CountingOp:
    """An operator that counts projections, to show the checks come before any heavy work."""

    def __init__(self, op):
        self._op, self.calls = op, 0

    def __getattr__(self, name):
        attr = getattr(self._op, name)
        if name in ("forward", "adjoint", "ones_adjoint"):
            def counted(*a, **k):
                self.calls += 1
                return attr(*a, **k)
            return counted
        return attr


@pytest.mark.parametrize("kw,match", [
    (dict(background=-1.0), r"background = -1\.0 is invalid.*>= 0"),
    (dict(background=float("nan")), r"background = nan is invalid"),
    (dict(background=True), r"background = True is invalid"),
    (dict(background="dark"), r"background has dtype <U4"),
    (dict(background=np.ones((3, 3))), r"background has shape \(3, 3\), not broadcastable to the image \(20, 25\)"),
    (dict(background=np.ones((2, 20, 25))), r"background has shape \(2, 20, 25\), not broadcastable"),
    (dict(background=np.full((20, 25), np.nan)), r"background has 500 NaN or infinite"),
    (dict(background=np.array([[-0.5]])), r"background has 1 negative value\(s\), min -0\.5"),
    (dict(background=np.ones((20, 25), bool)), r"background has dtype bool \(boolean\)"),
    (dict(read_noise=-1.0), r"read_noise = -1\.0 is invalid.*>= 0"),
    (dict(read_noise=float("inf")), r"read_noise = inf is invalid"),
    (dict(read_noise=True), r"read_noise = True is invalid"),
    (dict(read_noise=np.ones(3)), r"read_noise = array"),
])
def test_bad_background_and_read_noise_are_clear_errors(kw, match):
    op = _CountingOp(_op(np.float32))
    y = np.ones(op.image_shape, np.float32)
    with pytest.raises(ValueError, match=match):
        richardson_lucy(y, op, 1, progress=False, **kw)
    assert op.calls == 0


def test_negative_image_rule_with_read_noise():
    op = _CountingOp(_op(np.float32))
    sigma = 2.0
    y = np.full(op.image_shape, 10.0, np.float32)
    y[0, 0] = -0.99 * READ_NOISE_SIGMAS * sigma  # within 8 sigma: offset-subtracted data, accepted
    y[1, 1] = -3.0
    x = richardson_lucy(y, op, 2, read_noise=sigma, background=1.0, progress=False)
    assert np.isfinite(x).all() and (x >= 0).all()
    calls = op.calls
    with pytest.raises(ValueError, match="negative"):  # without read noise: today's refusal
        richardson_lucy(y, op, 1, progress=False)
    y[2, 2] = -1.2 * READ_NOISE_SIGMAS * sigma  # beyond: an offset error, refused
    with pytest.raises(ValueError, match=r"too negative for read_noise = 2: 1 pixel\(s\) below -\(8 x read_noise"
                                         r".*min -19\.2") as err:
        richardson_lucy(y, op, 1, read_noise=sigma, progress=False)
    assert "3 negative in all" in str(err.value)
    assert op.calls == calls  # refused before any projection


@pytest.mark.gpu
def test_numpy_and_cupy_agree_with_background_and_read_noise():
    op_c = _op(np.float32)
    op_g = _op(np.float32, device="gpu")
    rng = np.random.default_rng(9)
    y = (rng.poisson(op_c.forward(_dense_object(op_c, rng, 5.0)) + 2.0) + rng.normal(0, 1.5, op_c.image_shape))
    bg = np.full(op_c.image_shape, 2.0, np.float32)
    xc = richardson_lucy(y.astype(np.float32), op_c, 4, background=bg, read_noise=1.5, progress=False)
    xg = richardson_lucy(backend.to_device(y.astype(np.float32), "gpu"), op_g, 4,
                         background=backend.to_device(bg, "gpu"), read_noise=1.5, progress=False)
    assert backend.is_gpu_array(xg)
    np.testing.assert_allclose(backend.to_host(xg), xc, rtol=1e-3, atol=1e-4 * float(xc.max()))
