"""The fast PSF build equals a plain reference computation of the same model.

``optics.lfpsf`` builds kernels with shortcuts that must not change a number beyond float32
round-off: one set of Bessel matrices for all depths, the radial table evaluated on one quadrant
of the field grid and mirrored, each source's field sliced from one enlarged grid, sources
propagated side by side in threads, distinct phases only (mirror/transpose symmetry), and the
wide-field patch from one octant.  The reference here does none of that: every phase of every
depth is computed on its own, its table built for its depth alone, its field evaluated point by
point, in one thread.  The zero-padding of a window to a fast FFT size is part of the model (it
changes where light leaving the window goes), so both sides use it; its own effect is bounded
against the unpadded window below.
"""

import math

import numpy as np
import pytest

from optics import presets
from optics.lfpsf import (
    _grid,
    _Propagator,
    _RadialTable,
    _table_radius,
    _widefield_patch,
    compute_psf,
    fast_pixels,
    field_oversampling,
    pixel_nodes,
    window_lenslets,
)
from optics.support import CROP_TOLERANCE, crop_side_pixels

#: float32 round-off of a kernel built through complex64 FFTs, relative to its peak.
ROUNDOFF = 2e-6


def _reference_pattern(m, z, offset_um, w, pad=True):
    """One source at image offset (y, x) from the window centre: table of its own depth, field
    evaluated at every sample, one propagator call."""
    q = field_oversampling(m)
    prop = _Propagator(m, q, np.complex64, pad=pad)
    mag = m.objective.magnification
    table = _RadialTable(m, abs(z), _table_radius(m, w, math.hypot(*offset_um)))
    n = w * m.pixels_per_lenslet * q
    c = _grid(n, prop.dx)
    oy, ox = offset_um
    comps = table.components(((c - oy) / mag)[:, None], ((c - ox) / mag)[None, :], z < 0)
    fields = np.stack([np.asarray(v, dtype=np.complex64) for v in comps])
    pix, nip, passed = prop.intensity(fields)
    return pix.sum(axis=0), float(nip.sum()), float(passed.sum())


def _reference_kernels(m):
    s, npx, mag = m.voxels_per_lenslet, m.pixels_per_lenslet, m.objective.magnification
    step, cs = m.voxel_um * mag, (s - 1) / 2
    out = []
    for z in m.z_um:
        w = window_lenslets(m, z)
        pats = np.empty((s, s, w * npx, w * npx))
        for a in range(s):
            for b in range(s):
                pats[a, b] = _reference_pattern(m, z, ((a - cs) * step, (b - cs) * step), w)[0]
        out.append(pats)
    return out


@pytest.mark.parametrize("s,z_range", [(3, (-20.0, 30.0, 25.0)), (4, (-10.0, 40.0, 50.0))])
def test_light_field_kernels_equal_the_reference_computation(s, z_range):
    # odd s = 3 (phase step 50 um = 20 samples) and even s = 4 (37.5 um = 15 samples), depths on
    # both sides of focus with windows of 5 to 9 lenslets
    z_min, z_max, z_step = z_range
    m = presets.get("lfm-20x-0.5w", camera={"shape": [105, 105]},
                    volume={"z_min_um": z_min, "z_max_um": z_max, "z_step_um": z_step, "voxels_per_lenslet": s})
    psf = compute_psf(m, cache=False, progress=False)
    ref = _reference_kernels(m)
    npx = m.pixels_per_lenslet
    assert len({window_lenslets(m, z) for z in m.z_um}) > 1
    for iz, (k, r) in enumerate(zip(psf.kernels, ref)):
        side = k.shape[-1]
        lo = (r.shape[-1] - side) // 2
        crop = r[:, :, lo:lo + side, lo:lo + side]
        assert side % npx == 0 and side == crop_side_pixels(r, CROP_TOLERANCE, npx)
        err = np.abs(k - crop).max() / crop.max()
        assert err < ROUNDOFF, (m.z_um[iz], err)


def test_non_integer_phase_offsets_equal_the_reference():
    # 5 voxels per 150 um lenslet at 20x: phase step 30 um = 12 samples (integer); at 4 field
    # samples of a 10 um pixel and s = 7 the step is 150/7 um, not a whole number of samples
    m = presets.get("lfm-20x-0.5w", camera={"shape": [75, 75]},
                    volume={"z_min_um": -8, "z_max_um": 8, "z_step_um": 16, "voxels_per_lenslet": 7})
    psf = compute_psf(m, cache=False, progress=False)
    ref = _reference_kernels(m)
    for k, r in zip(psf.kernels, ref):
        lo = (r.shape[-1] - k.shape[-1]) // 2
        crop = r[:, :, lo:lo + k.shape[-1], lo:lo + k.shape[-1]]
        assert np.abs(k - crop).max() / crop.max() < ROUNDOFF


@pytest.mark.parametrize("z", [0.0, 3.0, -7.5])
def test_widefield_octant_equals_the_full_patch(z):
    # a centred source takes one octant of the pixels and mirrors it; a source 1e-9 um off centre
    # takes the general path over every pixel's nodes
    m = presets.get("widefield-20x-0.5w", camera={"shape": [64, 64]},
                    volume={"z_min_um": -8, "z_max_um": 8, "z_step_um": 4})
    fast, _ = _widefield_patch(m, 0.0, 0.0, z)
    full, _ = _widefield_patch(m, 1e-9, -1e-9, z)
    assert fast.shape == full.shape
    assert np.abs(fast - full).max() / full.max() < 1e-7


def test_fast_fft_sizes():
    # q m' has no prime factor above 13, m' - m is even (symmetric padding), and m' is the least
    def largest_prime(v):
        p, big = 2, 1
        while v > 1:
            while v % p == 0:
                v //= p
                big = p
            p += 1
        return big

    for m_px in range(15, 800, 15):  # whole lenslets of 15 pixels
        for q in (3, 4, 5):
            mp = fast_pixels(m_px, q)
            assert (mp - m_px) % 2 == 0 and largest_prime(q * mp) <= 13
            assert all(largest_prime(q * c) > 13 for c in range(m_px, mp, 2))
    assert fast_pixels(645, 4) == 675  # W = 43 lenslets of 15 px at q = 4: 2580 -> 2700
    assert fast_pixels(195, 4) == 195  # 780 = 2^2 3 5 13 is kept


def test_padding_changes_the_pattern_less_than_the_window_does():
    # W = 17 lenslets of 15 px at q = 4: n = 1020 = 2^2 3 5 17 is padded to 1092.  The padding only
    # moves light that leaves the window from the far edge into empty samples: the pattern
    # differs from the unpadded one by 0.10% (L2, measured) at this large defocus, well inside
    # the 0.5% the window itself may cost (test_lfpsf.test_guard_band_without_padding).
    m = presets.get("lfm-20x-0.5w", camera={"shape": [255, 255]})
    z = 110.0
    w = window_lenslets(m, z)
    assert w == 17 and fast_pixels(w * 15, 4) != w * 15
    padded, nip_p, _ = _reference_pattern(m, z, (0.0, 0.0), w, pad=True)
    plain, nip_u, _ = _reference_pattern(m, z, (0.0, 0.0), w, pad=False)
    assert nip_p == nip_u
    diff = np.linalg.norm(padded - plain) / np.linalg.norm(plain)
    assert diff < 2e-3, diff
    assert abs(padded.sum() - plain.sum()) < 1e-3


def test_pixel_nodes_rule_is_shared():
    # the light-field and wide-field builds use the same Gauss-Legendre rule (q + 1 nodes)
    x, w = pixel_nodes(4)
    assert len(x) == 5 and w.sum() == pytest.approx(2.0, rel=1e-14)


@pytest.mark.parametrize("point", [(0.0, 0.0, 0.0), (3.7, -12.2, 2.5), (-30.0, 5.0, -4.0)])
def test_widefield_pattern_evaluates_only_the_image_part(point):
    # sensor_pattern evaluates the pixels of the window that land on the image; the result equals
    # the whole window's patch pasted and clipped (the window here is ~5x the 48-pixel image)
    from optics.lfpsf import _paste, sensor_pattern

    m = presets.get("widefield-20x-0.5w", camera={"shape": [48, 40]},
                    volume={"z_min_um": -4, "z_max_um": 4, "z_step_um": 2})
    x, y, z = point
    whole, (r0, c0) = _widefield_patch(m, x, y, z)  # window corner from the axis pixel
    ref = np.zeros(m.image_shape)
    ly, lx = m.n_lenslets
    _paste(ref, whole, ly // 2 + r0 + whole.shape[0] // 2, lx // 2 + c0 + whole.shape[1] // 2)
    got = sensor_pattern(m, point)
    assert np.abs(got - ref).max() <= 1e-12 * ref.max()
    assert whole.shape[0] > 2 * max(m.image_shape)


def test_sensor_pattern_reuses_its_propagator():
    from optics import lfpsf

    m = presets.get("lfm-20x-0.5w", camera={"shape": [75, 75]})
    a = lfpsf.sensor_pattern(m, (2.0, -3.0, 5.0))
    key = next(k for k in lfpsf._PROPAGATORS if k[0] == m.hash)
    prop = lfpsf._PROPAGATORS[key]
    b = lfpsf.sensor_pattern(m, (2.0, -3.0, 5.0))
    assert lfpsf._PROPAGATORS[key] is prop and len(lfpsf._PROPAGATORS) <= 2
    np.testing.assert_array_equal(a, b)
