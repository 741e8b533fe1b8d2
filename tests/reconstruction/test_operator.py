"""LightFieldOperator: exact adjointness, agreement with direct summation, batching, tiling, errors."""

from __future__ import annotations

import numpy as np
import pytest
from recon_helpers import direct_forward, microscope, symmetric_psf, synthetic_psf

from reconstruction import backend
from reconstruction.operator import LightFieldOperator, projection_cost
from reconstruction.phasespace import ViewPSF

# (pixels per lenslet N, voxels per lenslet s, lenslet grid, R per depth, tile)
CASES = [
    pytest.param(5, 3, (4, 5), [2, 0, 1], None, id="lfm-s3-odd-nonsquare"),
    pytest.param(5, 2, (3, 6), [1, 3, 0], None, id="lfm-s2-even-R>L"),
    pytest.param(3, 3, (7, 6), [2, 1, 2], 2, id="lfm-tiled"),
    pytest.param(7, 4, (3, 3), [1, 1, 2], None, id="lfm-s4-N7"),
    pytest.param(1, 1, (9, 8), [3, 1, 2], None, id="widefield"),
    pytest.param(1, 1, (9, 8), [3, 1, 2], 3, id="widefield-tiled"),
    # N = 1 with s > 1 (a scanning LFM's view operator): the channel-major one-output path, its
    # frequencies split over threads (> 64 of them)
    pytest.param(1, 3, (20, 17), [2, 1, 3], None, id="one-pixel-s3"),
]


def _op(n, s, lenslets, radii, tile, rng, device="cpu", dtype=np.float64):
    if n == 1 and s > 1:  # a view of a scanning LFM: one pixel per (virtual) lenslet, s phases
        m = microscope(s, s, lenslets, z=[-2.0, 0.0, 2.0])
        kernels = tuple(rng.random((s, s, 2 * r + 1, 2 * r + 1)) for r in radii)
        psf = ViewPSF(m, m.z_um, kernels, tuple(lenslets), s)
        return psf, LightFieldOperator(psf, device, dtype, tile_lenslets=tile)
    m = microscope(n, s, lenslets, z=[-2.0, 0.0, 2.0], kind="widefield" if n == 1 else "lfm")
    psf = synthetic_psf(m, radii, rng, np.float64)
    return psf, LightFieldOperator(psf, device, dtype, tile_lenslets=tile)


@pytest.mark.parametrize("n,s,lenslets,radii,tile", CASES)
def test_adjointness_float64(n, s, lenslets, radii, tile, rng64, device, xp, to_np):
    """<Hx, y> = <x, Hᵀy> to 1e-10 relative (PHYSICS.md section 6, check 13)."""
    _, op = _op(n, s, lenslets, radii, tile, rng64, device)
    x = xp.asarray(rng64.standard_normal(op.volume_shape))
    y = xp.asarray(rng64.standard_normal(op.image_shape))
    lhs = float(xp.vdot(op.forward(x), y))
    rhs = float(xp.vdot(x, op.adjoint(y)))
    assert abs(lhs - rhs) <= 1e-10 * abs(lhs)


@pytest.mark.parametrize("n,s,lenslets,radii,tile", CASES)
def test_forward_matches_direct_summation(n, s, lenslets, radii, tile, rng64):
    psf, op = _op(n, s, lenslets, radii, tile, rng64)
    x = rng64.random(op.volume_shape)
    x[rng64.random(x.shape) < 0.5] = 0
    ref = direct_forward(psf, x)
    got = op.forward(x)
    assert got.shape == psf.image_shape
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12 * np.abs(ref).max())


def test_single_voxel_stamps_its_kernel(rng64):
    """A unit voxel of phase (a, b) in lenslet (ly, lx) puts K_{z,a,b} centred on that lenslet's centre pixel."""
    psf, op = _op(5, 3, (6, 6), [1, 1, 1], None, rng64)
    x = np.zeros(op.volume_shape)
    ly, lx, a, b, iz = 3, 2, 2, 0, 1
    x[iz, ly * 3 + a, lx * 3 + b] = 1.0
    y = op.forward(x)
    cy, cx = ly * 5 + 2, lx * 5 + 2
    k = psf.kernels[iz][a, b]
    np.testing.assert_allclose(y[cy - 7: cy + 8, cx - 7: cx + 8], k, atol=1e-12)
    assert abs(y.sum() - k.sum()) < 1e-9


def test_float32_close_to_float64(rng64):
    psf, op64 = _op(5, 3, (4, 5), [2, 0, 1], None, rng64)
    op32 = LightFieldOperator(psf, "cpu", np.float32)
    x = rng64.random(op64.volume_shape)
    y64 = op64.forward(x)
    y32 = op32.forward(x.astype(np.float32))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, rtol=1e-5, atol=1e-5 * y64.max())
    b32 = op32.adjoint(y32)
    assert b32.dtype == np.float32 and b32.shape == op32.volume_shape


@pytest.mark.parametrize("tile", [None, 2])
def test_time_axis_batches(tile, rng64, device, xp, to_np):
    _, op = _op(3, 3, (5, 4), [1, 2, 0], tile, rng64, device)
    xs = xp.asarray(rng64.random((3, *op.volume_shape)))
    ys = op.forward(xs)
    assert ys.shape == (3, *op.image_shape)
    for i in range(3):
        np.testing.assert_allclose(to_np(ys[i]), to_np(op.forward(xs[i])), rtol=1e-12, atol=1e-12)
    bs = op.adjoint(ys)
    assert bs.shape == (3, *op.volume_shape)
    for i in range(3):
        np.testing.assert_allclose(to_np(bs[i]), to_np(op.adjoint(ys[i])), rtol=1e-12, atol=1e-12)


def test_depth_chunking_does_not_change_result(rng64):
    psf, op = _op(5, 3, (4, 5), [2, 0, 1], None, rng64)
    small = LightFieldOperator(psf, "cpu", np.float64, max_chunk_bytes=1)
    x = rng64.random(op.volume_shape)
    y = rng64.random(op.image_shape)
    np.testing.assert_allclose(small.forward(x), op.forward(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(small.adjoint(y), op.adjoint(y), rtol=1e-12, atol=1e-12)
    assert len(small._chunks) == 3 and len(small._frame_groups(4)) == 4
    xs, ys = np.stack([x, 2 * x]), np.stack([y, 3 * y])
    np.testing.assert_allclose(small.forward(xs), op.forward(xs), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(small.adjoint(ys), op.adjoint(ys), rtol=1e-12, atol=1e-12)


def test_auto_tiling_under_kernel_budget(rng64):
    psf, op = _op(3, 2, (12, 10), [1, 2, 1], None, rng64)
    assert op.ntiles == 1
    tiled = LightFieldOperator(psf, "cpu", np.float64, max_kernel_bytes=op.nbytes // 2)
    assert tiled.ntiles > 1 and tiled.nbytes <= op.nbytes // 2
    assert op.storage_reason == "kernels not symmetric" and tiled.storage_reason == "kernels not symmetric, tiled"
    x = rng64.random(op.volume_shape)
    np.testing.assert_allclose(tiled.forward(x), op.forward(x), rtol=1e-11, atol=1e-11)


def test_errors_name_the_parameter(rng64):
    psf, op = _op(5, 3, (4, 5), [2, 0, 1], None, rng64)
    with pytest.raises(ValueError, match="volume has shape"):
        op.forward(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="image has shape"):
        op.adjoint(np.zeros((5, 5)))
    with pytest.raises(ValueError, match="dtype"):
        LightFieldOperator(psf, "cpu", np.int32)
    with pytest.raises(ValueError, match="device"):
        LightFieldOperator(psf, "tpu")
    with pytest.raises(ValueError, match="max_chunk_bytes"):
        LightFieldOperator(psf, "cpu", max_chunk_bytes=0)


def test_gpu_request_without_gpu_is_an_error(monkeypatch):
    monkeypatch.setattr(backend, "gpu_available", lambda: False)
    with pytest.raises(backend.DeviceError, match="gpu"):
        backend.get_device("gpu")
    assert backend.get_device("auto") == "cpu"


def test_nbytes_and_cost(rng64):
    _, op = _op(5, 3, (4, 5), [2, 0, 1], None, rng64)
    assert op.nbytes == sum(k.nbytes for k in op._khat)
    c = op.cost()
    assert c.kernel_spectra_bytes == pytest.approx(op.nbytes)
    nf = [py * (px // 2 + 1) for py, px in op.fft_shapes]
    assert op.fft_shapes == [(6, 8), (4, 5), (5, 6)]  # 5-smooth sizes >= L + R_z per depth
    assert c.fourier_matmul_flops == 8 * sum(nf) * 25 * 9
    ref = projection_cost(3, 3, 5, (4, 5), [2, 0, 1])
    assert ref.direct_flops == 2 * 9 * 25 * 20 * (5 * 5 + 1 + 3 * 3)


@pytest.mark.gpu
def test_numpy_cupy_agree(rng64):
    psf, op_c = _op(5, 3, (4, 5), [2, 0, 1], None, rng64, "cpu", np.float32)
    op_g = LightFieldOperator(psf, "gpu", np.float32)
    x = rng64.random(op_c.volume_shape).astype(np.float32)
    y = rng64.random(op_c.image_shape).astype(np.float32)
    xg = backend.to_device(x, "gpu")
    yg = backend.to_device(y, "gpu")
    np.testing.assert_allclose(backend.to_host(op_g.forward(xg)), op_c.forward(x), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(backend.to_host(op_g.adjoint(yg)), op_c.adjoint(y), rtol=1e-4, atol=1e-4)
    with pytest.raises(TypeError, match="operator lives on"):
        op_g.forward(x)


@pytest.mark.parametrize("n,s,lenslets,radii,tile", CASES[:5])
def test_agrees_with_optics_forward_reference(n, s, lenslets, radii, tile, rng64):
    """Same numbers as the slow reference ``optics.forward.forward_project`` / ``adjoint_project``."""
    forward = pytest.importorskip("optics.forward")
    psf, op = _op(n, s, lenslets, radii, tile, rng64)
    x = rng64.random(op.volume_shape)
    y = rng64.random(op.image_shape)
    ref_y = forward.forward_project(psf, x, dtype=np.float64)
    ref_x = forward.adjoint_project(psf, y, dtype=np.float64)
    np.testing.assert_allclose(op.forward(x), ref_y, rtol=0, atol=1e-11 * np.abs(ref_y).max())
    np.testing.assert_allclose(op.adjoint(y), ref_x, rtol=0, atol=1e-11 * np.abs(ref_x).max())


SYM_CASES = [
    pytest.param(5, 3, (4, 5), [2, 0, 1], None, id="s3-odd-nonsquare"),
    pytest.param(5, 2, (3, 6), [1, 3, 0], None, id="s2-even"),
    pytest.param(5, 4, (5, 3), [1, 2, 1], 2, id="s4-even-tiled"),
    pytest.param(7, 5, (3, 4), [1, 1, 2], None, id="s5-N7"),
]


@pytest.mark.parametrize("n,s,lenslets,radii,tile", SYM_CASES)
def test_mirror_symmetric_storage_is_exact(n, s, lenslets, radii, tile, rng64, device, xp, to_np):
    """Storing only phases a, b < ceil(s/2) and applying the mirror group gives the same operator."""
    m = microscope(n, s, lenslets, z=[-2.0, 0.0, 2.0])
    psf = symmetric_psf(m, radii, rng64, np.float64)
    full = LightFieldOperator(psf, device, np.float64, tile_lenslets=tile, symmetry=False)
    sym = LightFieldOperator(psf, device, np.float64, tile_lenslets=tile, symmetry="mirror")
    assert sym.symmetry == "mirror" and full.symmetry == "none"
    h = (s + 1) // 2
    assert sym.nbytes * s * s == full.nbytes * h * h
    x = xp.asarray(rng64.standard_normal((2, *full.volume_shape)))
    y = xp.asarray(rng64.standard_normal((2, *full.image_shape)))
    np.testing.assert_allclose(to_np(sym.forward(x)), to_np(full.forward(x)), rtol=0, atol=1e-11)
    np.testing.assert_allclose(to_np(sym.adjoint(y)), to_np(full.adjoint(y)), rtol=0, atol=1e-11)
    lhs = float(xp.vdot(sym.forward(x[0]), y[0]))
    rhs = float(xp.vdot(x[0], sym.adjoint(y[0])))
    assert abs(lhs - rhs) <= 1e-10 * abs(lhs)
    if device == "cpu":
        xs = to_np(x[0])
        np.testing.assert_allclose(to_np(sym.forward(x[0])), direct_forward(psf, xs), rtol=0,
                                   atol=1e-11 * np.abs(direct_forward(psf, xs)).max())


D4_CASES = [
    pytest.param(5, 3, (4, 4), [2, 0, 1], None, id="s3"),
    pytest.param(5, 4, (3, 3), [1, 3, 0], None, id="s4-even-R>L"),
    pytest.param(3, 3, (6, 6), [1, 2, 1], 2, id="s3-tiled"),
    pytest.param(7, 5, (3, 3), [1, 1, 2], None, id="s5-N7"),
]


@pytest.mark.parametrize("n,s,lenslets,radii,tile", D4_CASES)
def test_d4_symmetric_storage_is_exact(n, s, lenslets, radii, tile, rng64, device, xp, to_np):
    """Mirrors and transpose on a square grid: phases a <= b < ceil(s/2) suffice, same operator."""
    m = microscope(n, s, lenslets, z=[-2.0, 0.0, 2.0])
    psf = symmetric_psf(m, radii, rng64, np.float64, transpose=True)
    full = LightFieldOperator(psf, device, np.float64, tile_lenslets=tile, symmetry=False)
    mirror = LightFieldOperator(psf, device, np.float64, tile_lenslets=tile, symmetry="mirror")
    d4 = LightFieldOperator(psf, device, np.float64, tile_lenslets=tile, symmetry="d4")
    h = (s + 1) // 2
    assert d4.symmetry == "d4" and d4.nph == h * (h + 1) // 2 and mirror.nph == h * h
    assert d4.nbytes * s * s == full.nbytes * d4.nph
    x = xp.asarray(rng64.standard_normal((2, *full.volume_shape)))
    y = xp.asarray(rng64.standard_normal((2, *full.image_shape)))
    ref_y, ref_x = to_np(full.forward(x)), to_np(full.adjoint(y))
    for op in (mirror, d4):
        np.testing.assert_allclose(to_np(op.forward(x)), ref_y, rtol=0, atol=1e-11)
        np.testing.assert_allclose(to_np(op.adjoint(y)), ref_x, rtol=0, atol=1e-11)
    lhs = float(xp.vdot(d4.forward(x[0]), y[0]))
    rhs = float(xp.vdot(x[0], d4.adjoint(y[0])))
    assert abs(lhs - rhs) <= 1e-10 * abs(lhs)
    if device == "cpu":
        ref = direct_forward(psf, to_np(x[0]))
        np.testing.assert_allclose(to_np(d4.forward(x[0])), ref, rtol=0, atol=1e-11 * np.abs(ref).max())


def test_d4_needs_a_square_grid(rng64):
    m = microscope(5, 3, (4, 5), z=[-2.0, 0.0, 2.0])
    psf = symmetric_psf(m, [1, 1, 1], rng64, np.float64, transpose=True)
    assert LightFieldOperator(psf, "cpu").symmetry_available == "mirror"
    assert LightFieldOperator(psf, "cpu", symmetry=True).symmetry == "mirror"
    with pytest.raises(ValueError, match="not square"):
        LightFieldOperator(psf, "cpu", symmetry="d4")


def test_symmetry_requested_but_absent_is_an_error(rng64):
    m = microscope(5, 3, (4, 5), z=[-2.0, 0.0, 2.0])
    psf = synthetic_psf(m, [1, 1, 1], rng64)
    assert not LightFieldOperator(psf, "cpu").symmetric
    for bad in (True, "mirror", "d4"):
        with pytest.raises(ValueError, match="symmetry"):
            LightFieldOperator(psf, "cpu", symmetry=bad)
    with pytest.raises(ValueError, match="symmetry = 'yes'"):
        LightFieldOperator(psf, "cpu", symmetry="yes")


@pytest.mark.parametrize("tile", [None, 2])
def test_auto_storage_from_memory_budget(tile, rng64, device, xp, to_np):
    """symmetry="auto": full spectra when they fit max_kernel_bytes (fewest FLOPs), else the cheapest
    symmetric storage that fits (mirror, then d4), else d4 tiled.  All give the same operator."""
    m = microscope(5, 3, (6, 6), z=[-2.0, 0.0, 2.0])
    psf = symmetric_psf(m, [2, 0, 1], rng64, np.float64, transpose=True)
    kw = dict(tile_lenslets=tile)
    full = LightFieldOperator(psf, device, np.float64, **kw)
    assert (full.storage, full.symmetry, full.storage_reason) == ("full", "none", "fits budget")
    assert full.symmetry_available == "d4"
    assert "storage='full'" in repr(full) and "fits budget" in repr(full)
    mirror = LightFieldOperator(psf, device, np.float64, symmetry="mirror", **kw)
    d4 = LightFieldOperator(psf, device, np.float64, symmetry="d4", **kw)
    assert mirror.storage_reason == d4.storage_reason == "requested"
    assert d4.nbytes < mirror.nbytes < full.nbytes
    flops = [op.cost().fourier_flops for op in (full, mirror, d4)]
    assert flops[0] < flops[1] < flops[2]  # why full storage wins when it fits
    assert LightFieldOperator(psf, device, np.float64, max_kernel_bytes=full.nbytes, **kw).storage == "full"
    ops = {"full": full}
    for budget, want in [(full.nbytes - 1, "mirror"), (mirror.nbytes - 1, "d4")]:
        op = LightFieldOperator(psf, device, np.float64, max_kernel_bytes=budget, **kw)
        assert (op.storage, op.storage_reason) == (want, "memory-bound")
        assert op.nbytes <= budget and op.ntiles == full.ntiles
        assert f"storage={want!r}" in repr(op) and "memory-bound" in repr(op)
        ops[want] = op
    x = xp.asarray(rng64.standard_normal(full.volume_shape))
    y = xp.asarray(rng64.standard_normal(full.image_shape))
    ref_y, ref_x = to_np(full.forward(x)), to_np(full.adjoint(y))
    for name, op in ops.items():
        np.testing.assert_allclose(to_np(op.forward(x)), ref_y, rtol=0, atol=1e-11 * np.abs(ref_y).max(), err_msg=name)
        np.testing.assert_allclose(to_np(op.adjoint(y)), ref_x, rtol=0, atol=1e-11 * np.abs(ref_x).max(), err_msg=name)
        lhs, rhs = float(xp.vdot(op.forward(x), y)), float(xp.vdot(x, op.adjoint(y)))
        assert abs(lhs - rhs) <= 1e-10 * abs(lhs), name


def test_auto_storage_tiles_when_nothing_fits(rng64, device, xp, to_np):
    """Even d4 storage over the whole grid exceeds the budget: d4, tiled (the last resort)."""
    m = microscope(3, 3, (12, 12), z=[-2.0, 0.0, 2.0])
    psf = symmetric_psf(m, [1, 2, 1], rng64, np.float64, transpose=True)
    full = LightFieldOperator(psf, device, np.float64)
    d4 = LightFieldOperator(psf, device, np.float64, symmetry="d4")
    op = LightFieldOperator(psf, device, np.float64, max_kernel_bytes=d4.nbytes - 1)
    assert (op.storage, op.storage_reason) == ("d4", "memory-bound, tiled")
    assert op.ntiles > 1 and op.nbytes <= d4.nbytes - 1 and full.ntiles == 1
    x = xp.asarray(rng64.standard_normal(full.volume_shape))
    y = xp.asarray(rng64.standard_normal(full.image_shape))
    np.testing.assert_allclose(to_np(op.forward(x)), to_np(full.forward(x)), rtol=0, atol=1e-11)
    np.testing.assert_allclose(to_np(op.adjoint(y)), to_np(full.adjoint(y)), rtol=0, atol=1e-11)


def test_auto_storage_float32_same_operator(rng64, device, xp, to_np):
    """float32: full and symmetric storage agree to float32 round-off, and each is adjoint."""
    m = microscope(7, 5, (3, 3), z=[-2.0, 0.0, 2.0])
    psf = symmetric_psf(m, [1, 1, 2], rng64, np.float32, transpose=True)
    full = LightFieldOperator(psf, device, np.float32)
    d4 = LightFieldOperator(psf, device, np.float32, max_kernel_bytes=full.nbytes // 3)
    assert full.storage == "full" and d4.storage == "d4" and d4.storage_reason == "memory-bound"
    x = xp.asarray(rng64.random(full.volume_shape, dtype=np.float32))
    y = xp.asarray(rng64.random(full.image_shape, dtype=np.float32))
    for a, b in [(full.forward(x), d4.forward(x)), (full.adjoint(y), d4.adjoint(y))]:
        a, b = to_np(a), to_np(b)
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-5 * np.abs(a).max())
    for op in (full, d4):
        lhs = float(xp.vdot(op.forward(x), y).astype(np.float64))
        rhs = float(xp.vdot(x, op.adjoint(y)).astype(np.float64))
        assert abs(lhs - rhs) <= 1e-5 * abs(lhs)


def test_auto_storage_mirror_on_a_rectangular_grid(rng64):
    m = microscope(5, 4, (3, 5), z=[-2.0, 0.0, 2.0])
    psf = symmetric_psf(m, [1, 2, 1], rng64, np.float64, transpose=True)
    auto = LightFieldOperator(psf, "cpu", np.float64)
    assert auto.symmetry_available == "mirror" and auto.storage in ("full", "mirror")  # never d4
    full = LightFieldOperator(psf, "cpu", np.float64, symmetry="none")
    op = LightFieldOperator(psf, "cpu", np.float64, max_kernel_bytes=full.nbytes - 1)
    assert (op.storage, op.storage_reason, op.ntiles) == ("mirror", "memory-bound", 1)
    x = rng64.standard_normal(full.volume_shape)
    np.testing.assert_allclose(op.forward(x), full.forward(x), rtol=0, atol=1e-11)
    none = LightFieldOperator(psf, "cpu", np.float64, symmetry="none")
    assert (none.storage, none.storage_reason, none.symmetry_available) == ("full", "requested", None)


@pytest.mark.parametrize("n,s,lenslets,radii,tile", SYM_CASES)
def test_full_spectra_filled_by_mirrors_equal_direct_ffts(n, s, lenslets, radii, tile, rng64):
    """Full storage of mirror-symmetric kernels FFTs only a <= s-1-a, b <= s-1-b and fills the other
    phases' spectra by the mirror relations; they equal the FFTs of those phases' kernels."""
    m = microscope(n, s, lenslets, z=[-2.0, 0.0, 2.0])
    psf = symmetric_psf(m, radii, rng64, np.float64)
    direct = LightFieldOperator(psf, "cpu", np.float64, tile_lenslets=tile, symmetry=False)
    filled = LightFieldOperator(psf, "cpu", np.float64, tile_lenslets=tile, symmetry="auto",
                                max_kernel_bytes=10**12)
    assert filled.symmetry == "none" and filled.symmetry_available in ("mirror", "d4")
    assert len(filled._direct_phases()) == ((s + 1) // 2) ** 2 < s * s
    for a, b in zip(direct._khat, filled._khat):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-12 * np.abs(a).max())


_Q40 = [12, 11, 10, 9, 8, 7, 6, 5, 3, 2, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13]  # 40x/0.95 N = 15, quick crop


@pytest.mark.parametrize("case,s,lenslets,radii,frames,want", [
    # P (25 x 25 lenslets of 15 px, 11 depths) with the kernel radii optics.compute_psf gives it;
    # ``want`` is what the forward projections measured fastest on the 2-core development machine
    # (cost.DEVICE_RATES): full at s = 5 (0.022 s against 0.026 mirror, 0.044 d4), symmetric at
    # s = 15 (0.097 mirror, 0.112 d4 against 0.134 full).  (W's full spectra, 4.5 GB, do not fit the
    # default budget; measured, full and mirror projections were within 20% of each other there.)
    ("P-s5", 5, (25, 25), [5, 4, 3, 3, 2, 2, 3, 3, 4, 5, 6], 1, {"none"}),
    ("P-s15", 15, (25, 25), [5, 4, 3, 3, 2, 2, 3, 3, 4, 5, 6], 1, {"mirror", "d4"}),
    # the tradeoff's 40x/0.95 N = 15 quick crop (7 x 7 lenslets, s = 7, 21 depths), forward + adjoint
    # on one thread (2026-12-02): one frame 0.031 s full, 0.028 mirror, 0.026 d4 (within 20%: any);
    # a batch of 21 frames (the benchmark's repeats) 0.19 s full against 0.36 mirror and 0.67 d4
    ("Q40-1", 7, (7, 7), _Q40, 1, {"none", "mirror", "d4"}),
    ("Q40-21", 7, (7, 7), _Q40, 21, {"none"}),
])
def test_storage_time_model_ranks_the_measured_cases(case, s, lenslets, radii, frames, want):
    import scipy.fft as sfft

    from reconstruction.cost import projection_seconds

    ly, lx = lenslets
    shapes = [(sfft.next_fast_len(ly + min(r, ly - 1)), sfft.next_fast_len(lx + min(r, lx - 1))) for r in radii]
    syms = ["none", "mirror"] + (["d4"] if ly == lx else [])
    secs = {sym: projection_seconds(projection_cost(len(radii), s, 15, lenslets, radii, (1, 1), shapes, 4, sym,
                                                    frames=frames), "cpu")
            for sym in syms}
    assert min(secs, key=secs.get) in want, (case, secs)


def test_projection_cost_of_a_batch_reads_the_kernel_spectra_once():
    one = projection_cost(3, 3, 5, (4, 5), [2, 0, 1])
    four = projection_cost(3, 3, 5, (4, 5), [2, 0, 1], frames=4)
    assert four.fourier_flops == pytest.approx(4 * one.fourier_flops)
    assert four.kernel_spectra_bytes == one.kernel_spectra_bytes
    assert four.fourier_bytes == pytest.approx(one.kernel_spectra_bytes + 4 * (one.fourier_bytes - one.kernel_spectra_bytes))
    with pytest.raises(ValueError, match="frames"):
        projection_cost(3, 3, 5, (4, 5), [2, 0, 1], frames=0)


def test_auto_storage_follows_the_batch_it_is_built_for(rng64):
    """``frames``: the batch "auto" storage is chosen for; at N = s = 9 one frame is modelled
    bytes-bound (symmetric storage) and a batch of 16 FLOP-bound (full); the operator is the same."""
    m = microscope(9, 9, (5, 5), z=[-2.0, 0.0, 2.0])
    psf = symmetric_psf(m, [2, 1, 2], rng64, np.float64, transpose=True)
    one = LightFieldOperator(psf, "cpu", np.float64, frames=1)
    batch = LightFieldOperator(psf, "cpu", np.float64, frames=16)
    assert (one.storage, batch.storage) == ("mirror", "full")
    assert batch.frames == 16 and one.frames == 1
    x = rng64.standard_normal((3, *one.volume_shape))
    np.testing.assert_allclose(batch.forward(x), one.forward(x), rtol=0, atol=1e-11 * np.abs(one.forward(x)).max())
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="frames"):
            LightFieldOperator(psf, "cpu", frames=bad)
