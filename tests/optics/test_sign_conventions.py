"""Named sign conventions of the light-field model (lateral orientation, which way +z is).

lfmsim's conventions (DESIGN.md, optics.config.Microscope): lateral coordinates are image-oriented, a
source at object (y, x) images in focus at (M y, M x) from the optical axis; z is the source's
offset from the focal plane, positive AWAY from the objective; time factor exp(-i omega t).
Set A of PHYSICS.md section 6 (20x/0.5 water, d = 150 µm, f_ml = 3000 µm, 10 µm pixels, N = 15).
"""

import math

import numpy as np
import pytest

from optics import presets
from optics.debye import radial_field
from optics.lfpsf import sensor_pattern
from optics.propagation import propagate

N = 15
L = 11  # lenslets per side of the test sensor


@pytest.fixture(scope="module")
def m():
    return presets.get("lfm-20x-0.5w", camera={"shape": [L * N, L * N]})


def lenslet_sums(img):
    return img.reshape(L, N, L, N).sum(axis=(1, 3))


def centroid_offset(img, iy, ix):
    """Intensity centroid (pixels, (y, x)) of lenslet (iy, ix)'s N x N patch, from its centre pixel;
    (iy, ix) counted from the axis lenslet."""
    c = L // 2
    p = img[(c + iy) * N : (c + iy + 1) * N, (c + ix) * N : (c + ix + 1) * N]
    yy, xx = np.mgrid[0:N, 0:N] - N // 2
    return (p * yy).sum() / p.sum(), (p * xx).sum() / p.sum()


def test_a_source_at_plus_x_lights_lenslets_at_plus_x(m):
    """(a) In focus (z = 0) a source at object +x (+y) images at +M x (+M y): the lenslet two pitches
    to the +x side (column L//2 + 2) of the sensor, not the -x side (no inversion in our model)."""
    d_obj = m.lenslet_pitch_object_um  # 7.5 µm
    img = sensor_pattern(m, (2 * d_obj, 0.0, 0.0))
    s = lenslet_sums(img)
    assert np.unravel_index(np.argmax(s), s.shape) == (L // 2, L // 2 + 2)
    img = sensor_pattern(m, (0.0, -3 * d_obj, 0.0))
    s = lenslet_sums(img)
    assert np.unravel_index(np.argmax(s), s.shape) == (L // 2 - 3, L // 2)


def test_positive_z_diverges_at_the_mla(m):
    """A source at z > 0 (away from the objective) is imaged at Delta = M^2 z / n IN FRONT of the
    native image plane (object farther -> image nearer the tube lens; axial magnification M^2 / n
    from object space of index n to image space in air).  Past that focus the wave diverges at
    the MLA, so propagating the NIP field BACK by Delta refocuses it to a point."""
    z = 20.0
    mag, n = 20.0, 1.33
    delta = mag**2 * z / n  # 6015 µm
    dx, npts = 2.0, 512
    x = (np.arange(npts) - (npts - 1) / 2) * dx
    r = np.hypot(x[:, None], x[None, :]) / mag
    rt = np.linspace(0, r.max() + 0.01, 10001)  # fine radial table, linear interpolation

    def field(zz):
        t = radial_field(rt, zz, wavelength_um=0.52, na=0.5, n=n)
        return np.interp(r, rt, t.real) + 1j * np.interp(r, rt, t.imag)

    u = field(z)

    def peak(dist):
        return np.max(np.abs(propagate(u, dx, dist, 0.52, method="asm")) ** 2)

    assert peak(-delta) > 20 * peak(0.0)  # refocuses behind us: a diverging wave
    assert peak(-delta) > 2 * max(peak(-0.8 * delta), peak(-1.25 * delta))
    assert peak(+delta) < peak(0.0)  # forward it only spreads further
    # and z < 0 is a converging wave focusing Delta behind the MLA
    u_neg = field(-z)
    fwd = np.max(np.abs(propagate(u_neg, dx, delta, 0.52, method="asm")) ** 2)
    assert fwd > 20 * np.max(np.abs(u_neg) ** 2)


@pytest.mark.parametrize("z,away", [(30.0, True), (-30.0, False)])
def test_b_defocused_subimages_move_away_for_positive_z(m, z, away):
    """(b) Ray optics: the point's image lies on the axis at signed distance Delta = M^2 z / n in
    front of the MLA (z > 0; behind it for z < 0).  The bundle reaching lenslet l (centre c_l) is
    nearly collimated (Delta >> f_ml) with direction c_l / Delta: diverging from the axis for z > 0,
    converging towards it for z < 0.  The lenslet focuses it at c_l + f_ml c_l / Delta on the
    sensor: the sub-image centroid is displaced from the lenslet centre by f_ml c_l / Delta,
    AWAY from the optical axis for z > 0 and TOWARDS it for z < 0.  Set A at |z| = 30 µm:
    Delta = 9023 µm, |shift| = 3000 * 150 / 9023 = 49.9 µm = 5.0 pixels for the nearest lenslets
    (which the blur, radius M |z| tan(alpha) = 244 µm, covers fully)."""
    img = sensor_pattern(m, (0.0, 0.0, z), precision="double")
    delta = 20.0**2 * abs(z) / 1.33
    expect = 3000 * 150 / delta / 10  # pixels
    sign = 1 if away else -1
    for iy, ix in [(0, 1), (0, -1), (1, 0), (-1, 0)]:
        cy, cx = centroid_offset(img, iy, ix)
        along = cy * iy + cx * ix  # component along the direction from the axis to the lenslet
        across = cy * ix - cx * iy
        assert sign * along > 0.6 * expect, (iy, ix, along)
        assert along == pytest.approx(sign * expect, rel=0.3)
        assert abs(across) < 1e-9
    # diagonal lenslet: displaced along the diagonal, by ~sqrt(2) times as much
    cy, cx = centroid_offset(img, 1, 1)
    assert sign * cy > 0 and sign * cx > 0 and cy == pytest.approx(cx, abs=1e-9)


def test_axis_lenslet_is_centred_and_z_sign_is_not_a_mirror(m):
    """The on-axis source's pattern is centred on the axis lenslet for any z, and +z / -z differ
    (the LF PSF is not symmetric in z: PHYSICS.md check 6), so the sign above is observable."""
    hp = sensor_pattern(m, (0.0, 0.0, 30.0), precision="double")
    hm = sensor_pattern(m, (0.0, 0.0, -30.0), precision="double")
    cy, cx = centroid_offset(hp, 0, 0)
    assert abs(cy) < 1e-9 and abs(cx) < 1e-9
    assert np.linalg.norm(hp - hm) / np.linalg.norm(hp) > 0.05
    # same power but for the light the band-limited array sends beyond the grid's band (~1e-3)
    assert math.isclose(hp.sum(), hm.sum(), rel_tol=2e-3)
