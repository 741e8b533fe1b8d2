# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 1. Design a light-field microscope
#
# Start from a preset (20x/0.5 water objective, 150 µm f/20 lenslets, 10 µm camera pixels), read
# off the derived quantities and the closed-form resolution figures of `optics.theory`
# (Levoy 2006, Broxton 2013; see `../shared/PHYSICS.md` section 5), compute the light-field PSF
# at several depths, and look at the raw light-field image of one bead.
#
# Run from the repository root.  `LFMSIM_NOTEBOOK_SMALL=1` shrinks everything (the test suite
# uses it).

# %%
# ruff: noqa: E402
# the repository root must be importable (benchmarks/ is run from the checkout): from the root or notebooks/
import pathlib
import sys

_root = pathlib.Path.cwd()
if not (_root / "benchmarks").is_dir() and (_root.parent / "benchmarks").is_dir():
    _root = _root.parent
sys.path.insert(0, str(_root))

# %%
import os
import time

import matplotlib.pyplot as plt
import numpy as np

from benchmarks import plots
from optics import phantoms, presets, theory
from optics.lfpsf import compute_psf
from optics.psfdata import cache_path
from optics.simulation import simulate

SMALL = os.environ.get("LFMSIM_NOTEBOOK_SMALL", "") not in ("", "0")

# %% [markdown]
# ## The design and its derived quantities

# %%
m = presets.get("lfm-20x-0.5w")
print(m.describe())
for key, value in theory.theory_summary(m).items():
    print(f"{key:30s} {value}")

# %% [markdown]
# The lateral resolution after deconvolution depends on depth: the design model
# max(0.47 λ0/NA, 0.94 λ0 M |z| / (n d), 2 |z| M p / (n f_ml)), with the low-resolution band
# |z| < n d / (2 M NA) around focus where the reconstruction falls back to the lenslet pitch d/M.

# %%
z = np.linspace(-120, 120, 481)
res = theory.lateral_resolution_m(m, z)
fig, ax = plt.subplots(figsize=(6, 3.2))
ax.plot(z, res, label="design model")
ax.axhline(m.lenslet_pitch_object_um, ls="--", color="0.5", label="d / M")
band = theory.artifact_band_um(m.objective.na, m.objective.immersion_index, m.mla.pitch_um, m.objective.magnification)
ax.axvspan(-band, band, color="0.9", label="artifact band")
ax.set_xlabel("z (µm)")
ax.set_ylabel("lateral resolution (µm)")
ax.legend()
plt.show()

# %% [markdown]
# ## Light-field PSF at several depths (lateral and xz views)
#
# A small camera crop keeps this fast; the kernels are cached in `$LFMSIM_CACHE_DIR`.

# %%
crop = 5 if SMALL else 9
zmax, dz = (30, 15) if SMALL else (60, 10)
m_small = m.replace(camera={"shape": [crop * 15, crop * 15]},
                    volume={"z_min_um": -zmax, "z_max_um": zmax, "z_step_um": dz, "voxels_per_lenslet": 1})
cached = cache_path(m_small).is_file()
t0 = time.perf_counter()
psf = compute_psf(m_small, progress=False)
print(f"PSF of {len(psf.z_um)} depths ready in {time.perf_counter() - t0:.2f} s"
      + (" (loaded from the cache)" if cached else " (computed; cached for the next run)"))
fig = plots.psf_views_figure(psf, depths_um=[-zmax, 0, dz, zmax], fig=plt.figure(figsize=(13, 3)))
plt.show()

# %% [markdown]
# ## The raw light-field image of one bead
#
# A bead at z = +dz, simulated with shot and read noise.  Out of focus its light spreads over
# several lenslets, each lenslet showing a part of the pupil: the 4-D light field.

# %%
vol = phantoms.beads(m_small, [(0.0, 0.0, float(dz))])
frame = simulate(m_small, vol, photons_per_voxel=2e5, seed=0, psf=psf, progress=False)
in_focus = simulate(m_small, phantoms.beads(m_small, [(0.0, 0.0, 0.0)]), photons_per_voxel=2e5, seed=1,
                    psf=psf, progress=False)
fig = plots.image_figure({f"bead at z = {dz} µm": frame, "bead in focus": in_focus}, fig=plt.figure(figsize=(8, 4)))
plt.show()
print("frame", frame.shape, frame.dtype, "max ADU", int(frame.max()))
