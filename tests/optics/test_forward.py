"""Reference forward/adjoint projection (optics.forward) on synthetic kernels of the psfdata contract.

Checks: adjointness <Hx, y> = <x, H^T y> (PHYSICS.md section 6, check 13), agreement with a direct
summation over voxels written independently here, placement of a single voxel's kernel, dropping of
light outside the image, wide-field degenerate case, shape and dtype errors.
"""

import numpy as np
import pytest

from optics import presets
from optics.forward import adjoint_project, forward_project
from optics.psfdata import LightFieldPSF

TINY = dict(
    camera={"shape": [75, 75]},
    volume={"z_min_um": -10, "z_max_um": 10, "z_step_um": 10, "voxels_per_lenslet": 3},
)


def tiny_microscope(**changes):
    kw = {k: dict(v) for k, v in TINY.items()}
    for k, v in changes.items():
        kw.setdefault(k, {}).update(v)
    return presets.get("lfm-20x-0.5w", **kw)


def synthetic_psf(m, radii, seed=0, positive=True):
    """Random kernels of side (2R+1) N per depth (R from ``radii``), as compute_psf would shape them."""
    rng = np.random.default_rng(seed)
    s, n = m.voxels_per_lenslet, m.pixels_per_lenslet
    kernels = []
    for r in radii:
        side = (2 * r + 1) * n
        k = rng.random((s, s, side, side)) if positive else rng.standard_normal((s, s, side, side))
        kernels.append(k.astype(np.float32))
    return LightFieldPSF(m, m.z_um, kernels, np.zeros((len(m.z_um), s, s)))


def direct_forward(psf, volume):
    """Triple loop over voxels: add each voxel's kernel, centred on its lenslet's centre pixel."""
    m = psf.microscope
    s, n = m.voxels_per_lenslet, m.pixels_per_lenslet
    ny, nx = m.image_shape
    image = np.zeros((ny, nx))
    for iz in range(volume.shape[0]):
        for iy in range(volume.shape[1]):
            for ix in range(volume.shape[2]):
                v = float(volume[iz, iy, ix])
                if v == 0:
                    continue
                k = psf.kernels[iz][iy % s, ix % s].astype(np.float64)
                half = k.shape[0] // 2
                cy, cx = (iy // s) * n + n // 2, (ix // s) * n + n // 2
                for u in range(k.shape[0]):
                    py = cy + u - half
                    if not 0 <= py < ny:
                        continue
                    for w in range(k.shape[1]):
                        px = cx + w - half
                        if 0 <= px < nx:
                            image[py, px] += v * k[u, w]
    return image


@pytest.fixture(scope="module")
def tiny():
    m = tiny_microscope()
    # radius 3 at z = -10 makes the kernel (105 px) larger than the image (75 px)
    return synthetic_psf(m, radii=[3, 0, 1], positive=False)


def test_shapes(tiny):
    assert tiny.volume_shape == (3, 15, 15) and tiny.image_shape == (75, 75)
    x = np.ones(tiny.volume_shape, np.float32)
    y = forward_project(tiny, x)
    assert y.shape == (75, 75) and y.dtype == np.float32
    xt = adjoint_project(tiny, y)
    assert xt.shape == (3, 15, 15) and xt.dtype == np.float32


def test_adjointness_float64(tiny, rng):
    # PHYSICS.md check 13: relative error <= 1e-10 (odd kernels)
    for _ in range(3):
        x = rng.standard_normal(tiny.volume_shape)
        y = rng.standard_normal(tiny.image_shape)
        hx = forward_project(tiny, x, dtype=np.float64)
        hty = adjoint_project(tiny, y, dtype=np.float64)
        lhs, rhs = np.vdot(hx, y), np.vdot(x, hty)
        scale = np.linalg.norm(hx) * np.linalg.norm(y)
        assert abs(lhs - rhs) <= 1e-10 * scale


def test_matches_direct_summation(rng):
    m = tiny_microscope()
    psf = synthetic_psf(m, radii=[3, 0, 1], seed=3)
    x = np.zeros(m.volume_shape)
    idx = rng.choice(x.size, size=40, replace=False)
    x.flat[idx] = rng.random(40)
    x[1, 0, 0] = 2.0  # corner voxel: most of its kernel falls outside
    x[0, 14, 7] = 1.5  # edge voxel with the kernel larger than the image
    ref = direct_forward(psf, x)
    got = forward_project(psf, x, dtype=np.float64)
    assert np.allclose(got, ref, rtol=0, atol=1e-12 * np.abs(ref).max())
    got32 = forward_project(psf, x.astype(np.float32))
    assert np.allclose(got32, ref, rtol=0, atol=1e-5 * np.abs(ref).max())


def test_adjoint_matches_direct_transpose(rng):
    # column j of H (direct) dotted with y equals (H^T y)_j
    m = tiny_microscope(volume={"z_min_um": 0, "z_max_um": 0})
    psf = synthetic_psf(m, radii=[1], seed=5, positive=False)
    y = rng.standard_normal(m.image_shape)
    hty = adjoint_project(psf, y, dtype=np.float64)
    for j in rng.choice(int(np.prod(m.volume_shape)), size=12, replace=False):
        e = np.zeros(m.volume_shape)
        e.flat[j] = 1
        assert hty.flat[j] == pytest.approx(np.vdot(direct_forward(psf, e), y), rel=1e-10, abs=1e-10)


def test_single_voxel_places_its_kernel_on_the_lenslet_centre():
    m = tiny_microscope(volume={"z_min_um": 0, "z_max_um": 0})
    psf = synthetic_psf(m, radii=[0], seed=1)
    s, n = 3, 15
    ly, lx, a, b = 2, 3, 0, 2  # voxel (iy, ix) = (ly s + a, lx s + b)
    x = np.zeros(m.volume_shape)
    x[0, ly * s + a, lx * s + b] = 1
    y = forward_project(psf, x, dtype=np.float64)
    k = psf.kernels[0][a, b]
    cy, cx = ly * n + n // 2, lx * n + n // 2
    assert y[cy, cx] == pytest.approx(k[n // 2, n // 2])
    block = y[cy - n // 2 : cy + n // 2 + 1, cx - n // 2 : cx + n // 2 + 1]
    np.testing.assert_allclose(block, k, rtol=0, atol=1e-12)
    assert y.sum() == pytest.approx(k.sum())  # fully inside: no light lost


def test_light_outside_the_image_is_dropped():
    m = tiny_microscope(volume={"z_min_um": 0, "z_max_um": 0})
    psf = synthetic_psf(m, radii=[2], seed=2)
    x = np.zeros(m.volume_shape)
    x[0, 0, 0] = 1  # corner lenslet: its 75 x 75 kernel centred on pixel (7, 7)
    y = forward_project(psf, x, dtype=np.float64)
    k = psf.kernels[0][0, 0]
    np.testing.assert_allclose(y[:45, :45], k[30:, 30:], rtol=0, atol=1e-12)
    assert np.abs(y[45:]).max() < 1e-12 and np.abs(y[:, 45:]).max() < 1e-12
    assert y.sum() == pytest.approx(k[30:, 30:].sum())


def test_widefield_is_plain_convolution(rng):
    from scipy.signal import convolve

    m = presets.get(
        "widefield-20x-0.5w", camera={"shape": [21, 17]}, volume={"z_min_um": -1, "z_max_um": 1}
    )
    psf = synthetic_psf(m, radii=[2, 4, 3], seed=4)
    x = rng.random(m.volume_shape)
    got = forward_project(psf, x, dtype=np.float64)
    want = sum(convolve(x[iz], psf.kernels[iz][0, 0].astype(np.float64), mode="same", method="direct") for iz in range(3))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_realistic_size_runs_in_seconds(rng):
    # 11 depths, 5 phases, 25 x 25 lenslets: the size the reconstruction team compares against
    import time

    m = presets.get(
        "lfm-20x-0.5w",
        camera={"shape": [375, 375]},
        volume={"z_min_um": -50, "z_max_um": 50, "z_step_um": 10, "voxels_per_lenslet": 5},
    )
    psf = synthetic_psf(m, radii=[4, 4, 3, 3, 2, 1, 2, 3, 3, 4, 4], seed=6)
    x = rng.random(m.volume_shape).astype(np.float32)
    t = time.perf_counter()
    y = forward_project(psf, x)
    adjoint_project(psf, y)
    assert time.perf_counter() - t < 20


@pytest.mark.parametrize("shape", [(3, 15, 14), (15, 15), (2, 15, 15)])
def test_volume_shape_error_names_both_shapes(tiny, shape):
    with pytest.raises(ValueError, match=r"volume has shape .*expected \(3, 15, 15\)"):
        forward_project(tiny, np.zeros(shape))


def test_image_shape_error(tiny):
    with pytest.raises(ValueError, match=r"image has shape \(75, 74\).*expected \(75, 75\)"):
        adjoint_project(tiny, np.zeros((75, 74)))


def test_bad_types(tiny):
    with pytest.raises(TypeError, match="psf"):
        forward_project(np.zeros((3, 3)), np.zeros((3, 15, 15)))
    with pytest.raises(TypeError, match="volume"):
        forward_project(tiny, [[0.0]])
    with pytest.raises(ValueError, match="dtype"):
        forward_project(tiny, np.zeros((3, 15, 15)), dtype=np.int32)
    with pytest.raises(ValueError, match="complex|real"):
        forward_project(tiny, np.zeros((3, 15, 15), complex))


@pytest.mark.parametrize("radii", [(0, 1, 2), (2, 0, 1)])
def test_lenslet_grid_forward_matches_the_reference(radii, rng):
    """The simulation's fast path equals the reference projection (float64 to 1e-10, float32 to 1e-5)."""
    from optics.forward import forward_project_lenslet

    m = tiny_microscope(camera={"shape": [75, 60]})
    psf = synthetic_psf(m, radii, seed=3)
    vol = rng.random(psf.volume_shape)
    vol[1, :, : vol.shape[2] // 2] = 0  # empty phases and a partly empty plane
    ref = forward_project(psf, vol, dtype=np.float64)
    fast = forward_project_lenslet(psf, vol, dtype=np.float64)
    assert fast.shape == ref.shape == psf.image_shape
    assert np.max(np.abs(fast - ref)) <= 1e-10 * np.max(np.abs(ref))
    f32 = forward_project_lenslet(psf, vol.astype(np.float32))
    assert f32.dtype == np.float32 and np.max(np.abs(f32 - ref)) <= 1e-5 * np.max(np.abs(ref))
