"""Fixtures shared by the optics tests."""

import pytest

from optics import presets


@pytest.fixture(scope="module")
def m():
    """A tiny 20x/0.5W light-field microscope: 5 x 5 lenslets, 3 depths, 3 voxels per lenslet."""
    return presets.get(
        "lfm-20x-0.5w",
        camera={"shape": [75, 75]},
        volume={"z_min_um": -10, "z_max_um": 10, "z_step_um": 10, "voxels_per_lenslet": 3},
    )


@pytest.fixture(scope="module")
def small_flfm():
    """A tiny Fourier LFM: 20x/0.5W, f2 = 20 mm (1 mm pupil), 3 x 3 lenslets of 333 um, f = 4 mm
    (M_T = 4), 201 x 201 pixels of 6.5 um, 5 depths."""
    from optics.config import Microscope

    return Microscope.from_dict({
        "microscope": {"kind": "flfm", "wavelength_um": 0.52},
        "objective": {"magnification": 20, "na": 0.5, "immersion_index": 1.33, "tube_lens_focal_um": 200000},
        "mla": {"pitch_um": 333.0, "focal_um": 4000.0, "fourier_lens_focal_um": 20000.0, "lenslets": [3, 3]},
        "camera": {"pixel_um": 6.5, "shape": [201, 201]},
        "volume": {"z_min_um": -20, "z_max_um": 20, "z_step_um": 10}})
