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
    (M_T = 4), 201 x 201 pixels of 6.5 um, 5 depths (``benchmarks.scale``'s Fourier LFM)."""
    from benchmarks.scale import small_flfm as make

    return make(201).replace(volume={"z_min_um": -20, "z_max_um": 20, "z_step_um": 10})
