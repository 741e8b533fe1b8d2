"""White-frame calibration, flat field and rectification (reconstruction.calibration, issue 11).

Synthetic white frames of known lattice (pitch, rotation, offset; square and hexagonal; with and
without Poisson noise and vignetting) are recovered to <= 0.005 px in pitch, <= 0.01 degrees in
rotation and <= 0.02 px in offset (the issue asks 0.02 px and 0.05 degrees).  The GUV frames ship
with the tests (tests/data, BSD-3); the other real frames are read from ../shared/realdata (the
tests skip without them).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from reconstruction import calibration as C
from reconstruction.calibration import CalibrationError, calibrate, synthetic_white
from reconstruction.rectification import correct_frame, rectify

REALDATA = Path(os.environ.get("LFMSIM_REALDATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "realdata"))


#: The GUV frames ship with the tests (BSD-3, napari-LF; tests/data/guv-experim1/README.md).
SHIPPED = Path(__file__).resolve().parents[1] / "data"


def _realdata(*parts) -> Path:
    shipped = SHIPPED.joinpath(*parts)
    if shipped.exists():
        return shipped
    p = REALDATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real frames not found at {p} (../shared/realdata is absent in a fresh clone; set LFMSIM_REALDATA)")
    return p


def _offset_error(cal, shape, off) -> float:
    """Distance of the measured lattice from the true lattice point at centre + off (modulo the lattice)."""
    o = np.array(cal.origin_px) - (np.array([(shape[0] - 1) / 2, (shape[1] - 1) / 2]) + np.array(off))
    a = np.column_stack([cal.u_px, cal.v_px])
    lat = np.linalg.solve(a, o)
    return float(np.hypot(*(a @ (lat - np.round(lat)))))


CASES = [
    # grid, pitch px, rotation deg, offset (y, x) px, photons at the peak (None: noise-free)
    ("square", 15.38, 0.37, (2.3, -4.1), None),
    ("square", 16.0, -1.2, (0.4, 7.7), 2000),
    ("square", 17.15, 0.0, (-3.3, 1.1), 200),
    ("hex", 15.38, 0.37, (2.3, -4.1), None),
    ("hex", 13.7, 3.5, (5.0, 5.0), 500),
]


@pytest.mark.parametrize("grid,pitch,rot,off,photons", CASES)
def test_synthetic_white_frames_recovered(grid, pitch, rot, off, photons):
    shape = (436, 436)
    white = synthetic_white(shape, pitch, rotation_deg=rot, offset_px=off, grid=grid, photons=photons, seed=3)
    cal = calibrate(white)
    assert cal.grid == grid
    assert np.allclose(cal.pitch_px, pitch, atol=0.005), cal.pitch_px
    assert abs(cal.rotation_deg - rot) < 0.01
    assert abs(cal.angle_uv_deg - (90 if grid == "square" else 60)) < 0.02
    assert _offset_error(cal, shape, off) < 0.02
    assert cal.lenslets_fitted > 400


def test_rotation_sign_and_axes():
    """Rotation is u's angle from +x towards +y (row index); u is the vector nearest +x, v on the +y side."""
    cal = calibrate(synthetic_white((300, 360), 15.0, rotation_deg=2.0))
    uy, ux = cal.u_px
    vy, vx = cal.v_px
    assert ux > 0 and uy > 0  # a positive rotation tilts the rows towards +y
    assert vy > 0 and vx < 0
    assert cal.rotation_deg == pytest.approx(2.0, abs=0.01)


def test_dust_hot_pixels_and_border_are_robust(rng):
    shape = (400, 420)
    white = synthetic_white(shape, 15.38, rotation_deg=0.2, offset_px=(1.5, 2.5), photons=1000, seed=5)
    for cy, cx in rng.uniform(40, 360, size=(6, 2)):  # dust: dark blobs covering parts of lenslets
        yy, xx = np.mgrid[0: shape[0], 0: shape[1]]
        white *= 1 - 0.8 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 5.0**2))
    hot = rng.integers(0, shape[0], 200), rng.integers(0, shape[1], 200)
    white[hot] = 60000  # hot pixels
    cal = calibrate(white)
    assert np.allclose(cal.pitch_px, 15.38, atol=0.005)
    assert _offset_error(cal, shape, (1.5, 2.5)) < 0.02
    assert cal.outliers > 0  # the dusty lenslets are rejected, and show in the residual map
    assert cal.residuals.shape[1] == 4


def test_flat_field_recovers_vignetting():
    shape = (400, 400)
    vig = 0.3
    cal = calibrate(synthetic_white(shape, 15.38, vignetting=vig))
    flat = cal.flat_field()
    yy, xx = np.mgrid[0: shape[0], 0: shape[1]]
    r2 = ((yy - 199.5) ** 2 + (xx - 199.5) ** 2) / (2 * 199.5**2)
    truth = 1 - vig * r2
    inner = r2 < 0.8  # the fitted lenslets' region
    # normalised to its maximum over the fitted lenslets, like the truth (1 at the centre)
    assert np.abs(flat[inner] / truth[inner] - 1).max() < 0.01


def test_pitch_warning_against_the_config():
    white = synthetic_white((300, 300), 15.6)
    with pytest.warns(UserWarning, match=r"\+1\.[34]\d% from the config"):
        calibrate(white, expected_pitch_px=100 / 6.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        calibrate(white, expected_pitch_px=15.55)


@pytest.mark.parametrize("kind", ["uniform", "random", "stripes"])
def test_frames_without_a_lattice_are_refused(kind, rng):
    shape = (300, 300)
    if kind == "uniform":
        white = np.full(shape, 1000.0) + rng.normal(0, 1, shape)
    elif kind == "random":
        white = rng.poisson(1000, shape).astype(float)
    else:
        white = 1000 + 500 * np.sin(2 * np.pi * np.arange(shape[1]) / 15.0)[None, :] * np.ones(shape)
    with pytest.raises(CalibrationError, match="no lenslet lattice"):
        calibrate(white)


def test_bad_dark_frames_are_refused():
    white = synthetic_white((200, 200), 15.0, photons=1000)
    with pytest.raises(CalibrationError, match="200 x 200"):
        calibrate(white, np.zeros((100, 200)))
    with pytest.raises(CalibrationError, match="not darker"):
        calibrate(white, np.full((200, 200), 5000.0))
    cal = calibrate(white)
    with pytest.raises(CalibrationError, match="brighter than the data"):
        correct_frame(white * 0.01, cal, np.full((200, 200), 100.0))


def test_save_load_round_trip_and_camera_check(tmp_path):
    cal = calibrate(synthetic_white((240, 260), 15.2, rotation_deg=0.5))
    p = cal.save(tmp_path / "cal.json")
    back = C.load_calibration(p)
    assert back == cal  # every saved field (the residual map is not saved)
    with pytest.raises(FileExistsError):
        cal.save(p)
    d = json.loads(p.read_text())
    assert d["derived"]["pitch_px"] == pytest.approx(list(cal.pitch_px))
    with pytest.raises(CalibrationError, match="240 x 260"):
        rectify(np.zeros((240, 250)), back)
    (tmp_path / "bad.json").write_text('{"kind": "something else"}')
    with pytest.raises(CalibrationError, match="not an lfmsim calibration"):
        C.load_calibration(tmp_path / "bad.json")


def test_rectify_geometry_and_flux():
    """A white frame rectified is a lattice of whole lenslets of N pixels centred in their cells, and
    the total light of the region it covers is kept (area factor)."""
    shape = (330, 350)
    white = synthetic_white(shape, 15.38, rotation_deg=0.6, offset_px=(3.2, -2.7), vignetting=0.0)
    cal = calibrate(white)
    rect, info = rectify(white, cal)
    n = info["pixels_per_lenslet"]
    assert n == 15
    ly, lx = info["n_lenslets"]
    assert rect.shape == (ly * n, lx * n)
    # every rectified lenslet is centred: its intensity centroid is its centre pixel
    cells = rect.reshape(ly, n, lx, n).transpose(0, 2, 1, 3)
    idx = np.arange(n) - (n - 1) / 2
    tot = cells.sum(axis=(2, 3))
    cy = (cells.sum(axis=3) * idx).sum(axis=2) / tot
    cx = (cells.sum(axis=2) * idx).sum(axis=2) / tot
    # (bilinear sampling of a disc leaves ~0.02 px of centroid jitter)
    assert np.abs(cy).max() < 0.03 and np.abs(cx).max() < 0.03
    # flux: each cell holds the light of one lattice cell of the recorded frame (area pitch^2)
    disc = math.pi * (0.95 * 15.38 / 2) ** 2  # the synthetic disc's area, intensity 1
    assert np.median(tot) == pytest.approx(disc, rel=0.01)


def test_rectify_refuses_hex_and_bad_n():
    cal = calibrate(synthetic_white((300, 300), 15.0, grid="hex"))
    with pytest.raises(CalibrationError, match="square grid"):
        rectify(np.zeros((300, 300)), cal)
    cal = calibrate(synthetic_white((300, 300), 15.0))
    with pytest.raises(CalibrationError, match="odd integer"):
        rectify(np.zeros((300, 300)), cal, pixels_per_lenslet=16)


# ----------------------------------------------------------------------------- real frames
def _read(*parts):
    tifffile = pytest.importorskip("tifffile")
    return tifffile.imread(_realdata(*parts))


def test_guv_white_frame():
    """napari-LF's GUVExperim1 radiometry frame: 100 µm lenslets on 6.5 µm pixels through a 1:1 relay
    (15.38 px nominal).  napari-LF's own cubic fit has linear terms 15.403 (x) and 15.413 (y) px
    (calibration_geometry.json); ours is within 0.03 px of both, rotation ~ -0.1 degree."""
    cal = calibrate(_read("guv-experim1", "Radiometry_GUVExperim1.tif"), _read("guv-experim1", "DarkFrame_GUVExperim1.tif"),
                    expected_pitch_px=100 / 6.5)
    py, px = cal.pitch_px
    assert py == pytest.approx(15.413, abs=0.03) and px == pytest.approx(15.403, abs=0.03)
    assert abs(cal.rotation_deg) < 0.3
    assert cal.residual_rms_px < 0.1
    assert cal.lenslets_fitted > 600


def test_sea_urchin_white_frame_warns_on_metadata():
    """The sea-urchin set's metadata say 125 µm / 7.4 µm = 16.89 px; its white frame measures
    ~17.2 px (the folder's README: FFT 17.15), so calibrate warns and uses the measurement."""
    with pytest.warns(UserWarning, match="from the config"):
        cal = calibrate(_read("seaurchin-20x", "radiometry_frame-X383Y456W1200.tif"),
                        _read("seaurchin-20x", "dark_frame-W1200.tif"), expected_pitch_px=125 / 7.4)
    assert np.allclose(cal.pitch_px, 17.2, atol=0.05)
