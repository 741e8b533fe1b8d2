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
