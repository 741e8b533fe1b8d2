"""Camera noise model (optics.camera): moments against the closed form, saturation, seeds, bad input.

Statistical tolerances: with n samples the sample mean has standard error sqrt(var / n) and the
sample variance has standard error about var * sqrt(2 / (n - 1)) (close to Gaussian here); the
tests allow 5 standard errors, a false-alarm rate below 1e-6 per check.
"""

import numpy as np
import pytest

from optics.camera import apply_camera, digitize, expected_adu, max_adu, output_dtype
from optics.config import Camera

N_SAMPLES = 400_000


@pytest.mark.parametrize(
    "photons,qe,read,gain,offset",
    [(50.0, 0.8, 1.5, 0.5, 100.0), (3.0, 0.6, 0.0, 2.0, 10.0), (1000.0, 0.9, 2.5, 0.25, 50.0)],
)
def test_mean_and_variance_match_the_model(photons, qe, read, gain, offset):
    cam = Camera(quantum_efficiency=qe, read_noise_e=read, gain_adu_per_e=gain, offset_adu=offset)
    frames = apply_camera(np.full(N_SAMPLES, photons), cam, rng=7).astype(np.float64)
    mean_model = qe * photons * gain + offset
    # the 1/12 of rounding holds when the signal spreads over many ADU levels; with gain 2 ADU/e
    # and no read noise the values fall on integers already and rounding adds nothing
    quant = 0.0 if read == 0 and float(gain).is_integer() else 1 / 12
    var_model = gain**2 * (qe * photons + read**2) + quant
    se_mean = np.sqrt(var_model / N_SAMPLES)
    se_var = var_model * np.sqrt(2 / (N_SAMPLES - 1))
    assert abs(frames.mean() - mean_model) < 5 * se_mean
    assert abs(frames.var(ddof=1) - var_model) < 5 * se_var
    assert expected_adu(photons, cam) == pytest.approx(mean_model)


def test_zero_photons_gives_offset_plus_read_noise():
    cam = Camera(read_noise_e=2.0, gain_adu_per_e=1.0, offset_adu=100.0)
    f = apply_camera(np.zeros((400, 500)), cam, rng=1).astype(float)
    assert abs(f.mean() - 100.0) < 5 * np.sqrt(4.0 / f.size)
    assert f.var() == pytest.approx(4.0 + 1 / 12, rel=0.02)


def test_saturation_and_floor():
    cam = Camera(bit_depth=12, gain_adu_per_e=1.0, offset_adu=0.0, read_noise_e=3.0)
    assert max_adu(cam) == 4095
    f = apply_camera(np.array([0.0, 0.0, 1e6, 1e9]), cam, rng=0)
    assert f.dtype == np.uint16
    assert f[2] == 4095 and f[3] == 4095
    assert f.min() >= 0  # negative read-noise excursions clip at 0
    many = apply_camera(np.zeros(10000), cam, rng=0)
    assert many.min() == 0


def test_output_dtypes():
    assert output_dtype(Camera(bit_depth=16)) == np.uint16
    assert output_dtype(Camera(bit_depth=8)) == np.uint16
    f = apply_camera(np.full(3, 1e7), Camera(bit_depth=20, gain_adu_per_e=1.0), rng=0)
    assert f.dtype == np.uint32 and f.max() == 2**20 - 1
    assert digitize([-3.2, 2.5, 3.5, 70000.0], Camera()).tolist() == [0, 2, 4, 65535]


def test_reproducible_with_seed_and_generator():
    cam = Camera()
    ph = np.random.default_rng(0).random((32, 32)) * 100
    a = apply_camera(ph, cam, rng=42)
    b = apply_camera(ph, cam, rng=42)
    c = apply_camera(ph, cam, rng=43)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    d = apply_camera(ph, cam, rng=np.random.default_rng(42))
    np.testing.assert_array_equal(a, d)
    assert a.shape == (32, 32)


def test_accepts_a_microscope():
    from optics import presets

    m = presets.get("lfm-20x-0.5w")
    assert expected_adu(0.0, m) == pytest.approx(m.camera.offset_adu)


@pytest.mark.parametrize(
    "photons,match",
    [(np.array([1.0, -0.5]), "negative"), (np.array([np.nan]), "non-finite"), (np.array([np.inf]), "non-finite"),
     (np.array(["a"]), "dtype"), (np.array([1e30]), "at most")],
)
def test_bad_photons_raise(photons, match):
    with pytest.raises(ValueError, match=match):
        apply_camera(photons, Camera(), rng=0)
    with pytest.raises(ValueError, match="photons"):
        expected_adu(photons, Camera())


def test_bad_camera_and_rng():
    with pytest.raises(TypeError, match="camera"):
        apply_camera(np.ones(3), {"gain": 1})
    with pytest.raises(TypeError, match="rng"):
        apply_camera(np.ones(3), Camera(), rng="seed")
