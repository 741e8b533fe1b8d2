"""Richardson-Lucy invariants (PHYSICS.md section 6, check 14), filter, callback, checkpoints, batching."""

from __future__ import annotations

import numpy as np
import pytest
from recon_helpers import microscope, synthetic_psf

from reconstruction import backend
from reconstruction.deconvolution import CheckpointError, richardson_lucy
from reconstruction.operator import LightFieldOperator


def _setup(rng, dtype=np.float64, n=5, s=3, lenslets=(4, 5), radii=(2, 0, 1), device="cpu"):
    m = microscope(n, s, lenslets, z=[-2.0, 0.0, 2.0], kind="widefield" if n == 1 else "lfm")
    psf = synthetic_psf(m, list(radii), rng, np.float64)
    return psf, LightFieldOperator(psf, device, dtype)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-6)])
def test_flux_is_conserved_every_iteration(dtype, tol, rng64):
    _, op = _setup(rng64, dtype)
    y = (rng64.random(op.image_shape) * 100).astype(dtype)
    sums = []
    richardson_lucy(y, op, 5, progress=False,
                    callback=lambda k, x: sums.append(float(op.forward(x).sum(dtype=np.float64))))
    assert len(sums) == 5
    target = float(y.sum(dtype=np.float64))
    for v in sums:
        assert abs(v - target) <= tol * target


@pytest.mark.parametrize("n,s", [(5, 3), (1, 1)])
def test_nonnegative_and_fixed_point(n, s, rng64):
    _, op = _setup(rng64, np.float64, n=n, s=s, lenslets=(4, 5) if n > 1 else (9, 8))
    x_true = rng64.random(op.volume_shape) + 0.1
    y = op.forward(x_true)
    x = richardson_lucy(y, op, 3, x0=x_true, progress=False)
    np.testing.assert_allclose(x, x_true, rtol=1e-10)
    x = richardson_lucy(y, op, 10, progress=False)
    assert (x >= 0).all()
    # RL decreases the Poisson negative log-likelihood (KL divergence) monotonically
    kls = []

    def kl(k, xk):
        hx = op.forward(xk)
        kls.append(float(np.sum(y * np.log(y / hx) - y + hx)))

    richardson_lucy(y, op, 6, progress=False, callback=kl)
    assert all(b <= a + 1e-9 for a, b in zip(kls, kls[1:]))


def test_float32_in_float32_out_and_zero_guard(rng64):
    _, op = _setup(rng64, np.float32)
    y = (rng64.random(op.image_shape) * 10).astype(np.float32)
    y[:3] = 0
    x = richardson_lucy(y, op, 3, progress=False)
    assert x.dtype == np.float32 and x.shape == op.volume_shape
    assert np.isfinite(x).all() and (x >= 0).all()
    z = richardson_lucy(np.zeros(op.image_shape, np.float32), op, 2, progress=False)
    assert np.isfinite(z).all() and not z.any()


def test_time_series_is_batched(rng64):
    _, op = _setup(rng64, np.float64)
    ys = rng64.random((3, *op.image_shape)) * 5
    xs = richardson_lucy(ys, op, 4, progress=False)
    assert xs.shape == (3, *op.volume_shape)
    for i in range(3):
        np.testing.assert_allclose(xs[i], richardson_lucy(ys[i], op, 4, progress=False), rtol=1e-10)


def test_bad_inputs_are_clear_errors(rng64):
    _, op = _setup(rng64, np.float32)
    y = np.ones(op.image_shape, np.float32)
    with pytest.raises(ValueError, match="image has shape"):
        richardson_lucy(np.ones((7, 7)), op, 1)
    bad = y.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        richardson_lucy(bad, op, 1)
    with pytest.raises(ValueError, match="negative"):
        richardson_lucy(-y, op, 1)
    with pytest.raises(ValueError, match="iterations"):
        richardson_lucy(y, op, -1)
    with pytest.raises(ValueError, match="filter"):
        richardson_lucy(y, op, 1, filter="gauss")


def test_checkpoint_resumes_where_it_stopped(tmp_path, rng64):
    _, op = _setup(rng64, np.float64)
    y = rng64.random(op.image_shape) * 5
    ref = richardson_lucy(y, op, 6, progress=False)
    ck = tmp_path / "rl.npz"
    seen = []

    class Stop(Exception):
        pass

    def interrupt(k, x):
        seen.append(k)
        if k == 4:
            raise Stop

    with pytest.raises(Stop):
        richardson_lucy(y, op, 6, progress=False, checkpoint=ck, checkpoint_every=2, callback=interrupt)
    with np.load(ck) as d:
        assert int(d["iteration"]) == 2
    resumed = []
    out = richardson_lucy(y, op, 6, progress=False, checkpoint=ck, checkpoint_every=2,
                          callback=lambda k, x: resumed.append(k))
    assert resumed == [3, 4, 5, 6]
    np.testing.assert_allclose(out, ref, rtol=1e-12)
    with np.load(ck) as d:
        assert int(d["iteration"]) == 6
    with pytest.raises(CheckpointError, match="another image"):
        richardson_lucy(y * 2, op, 6, progress=False, checkpoint=ck)


def test_lanczos_filter_runs_in_rl(rng64):
    psf, op = _setup(rng64, np.float32, n=15, s=5, lenslets=(3, 3), radii=(1, 1, 1))
    y = (rng64.random(op.image_shape) * 5).astype(np.float32)
    x = richardson_lucy(y, op, 2, filter="lanczos", progress=False)
    assert x.dtype == np.float32 and (x >= 0).all() and np.isfinite(x).all()


@pytest.mark.gpu
def test_rl_numpy_cupy_agree(rng64):
    psf, op_c = _setup(rng64, np.float32)
    op_g = LightFieldOperator(psf, "gpu", np.float32)
    y = (rng64.random(op_c.image_shape) * 10).astype(np.float32)
    xc = richardson_lucy(y, op_c, 4, progress=False)
    xg = richardson_lucy(backend.to_device(y, "gpu"), op_g, 4, progress=False)
    assert backend.is_gpu_array(xg)
    np.testing.assert_allclose(backend.to_host(xg), xc, rtol=1e-3, atol=1e-4 * xc.max())
    np.testing.assert_allclose(richardson_lucy(y, op_g, 4, progress=False), xc, rtol=1e-3, atol=1e-4 * xc.max())
