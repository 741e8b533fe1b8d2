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
# # 2. Simulate a neuron-like sample and reconstruct it
#
# A few neuron-like cells (somata with processes) are simulated through a finer model than the
# one used to reconstruct (phantom grid `upsample` times finer, more field samples per pixel:
# no "inverse crime"), with shot and read noise; Richardson-Lucy reconstructs the volume, and
# we compare it with the ground truth.  `LFMSIM_NOTEBOOK_SMALL=1` shrinks everything.

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
from optics import phantoms, presets
from optics.lfpsf import compute_psf
from optics.simulation import simulate
from reconstruction import backend, metrics
from reconstruction.deconvolution import richardson_lucy
from reconstruction.operator import LightFieldOperator

SMALL = os.environ.get("LFMSIM_NOTEBOOK_SMALL", "") not in ("", "0")
crop, s, zmax, dz, iterations = (7, 3, 20, 10, 6) if SMALL else (11, 5, 40, 5, 20)

# %%
m = presets.get("lfm-20x-0.5w", camera={"shape": [crop * 15, crop * 15]},
                volume={"z_min_um": -zmax, "z_max_um": zmax, "z_step_um": dz, "voxels_per_lenslet": s})
print(m.describe())
upsample = 2  # phantom grid 2x finer laterally than the reconstruction
m_fine = phantoms.fine_microscope(m, upsample).replace(simulation={"oversampling": m.simulation.oversampling + 1})

# %% [markdown]
# ## Ground truth and raw frame

# %%
truth_fine, centres = phantoms.neurons(m, 3, seed=2, upsample=upsample, soma_diameter_um=(6.0, 9.0),
                                       process_length_um=(10.0, 20.0))
truth = phantoms.bin_volume(truth_fine, upsample)
psf_fine = compute_psf(m_fine, progress=False)
frame = simulate(m_fine, truth_fine, photons_per_voxel=2e4, seed=3, psf=psf_fine, progress=False)
print("frame", frame.shape, "max ADU", int(frame.max()))

# %% [markdown]
# ## Reconstruct

# %%
t0 = time.perf_counter()
psf = compute_psf(m, progress=False)  # cached by config and model version after the first run
t1 = time.perf_counter()
op = LightFieldOperator(psf, device="auto")
backend.synchronize(op.device)
print(f"operator ready in {time.perf_counter() - t0:.2f} s: PSF {t1 - t0:.2f} s, kernel spectra "
      f"{time.perf_counter() - t1:.2f} s ({op.storage} storage, {op.nbytes / 1e6:.0f} MB on {op.device})")
electrons = np.maximum((frame.astype(np.float64) - m.camera.offset_adu) / m.camera.gain_adu_per_e, 0).astype(np.float32)
t0 = time.perf_counter()
recon = np.asarray(richardson_lucy(electrons, op, iterations=iterations, progress=False))
print(f"{iterations} RL iterations in {time.perf_counter() - t0:.2f} s on {op.device} ({backend.device_name(op.device)})")

# %% [markdown]
# ## Compare with the ground truth
#
# Normalised RMS error after a least-squares photometric scale, and maximum projections.

# %%
err = metrics.nrmse(recon, truth, fit_scale=True)
print(f"NRMSE (range-normalised, scale fitted): {err:.3f}")
flat = metrics.nrmse(np.full_like(truth, truth.mean()), truth)
print(f"... a flat volume at the true mean scores {flat:.3f}")
fig = plots.image_figure({"raw frame": frame, "truth (max over z)": truth.max(axis=0),
                          "reconstruction (max over z)": recon.max(axis=0),
                          "truth (max over y)": truth.max(axis=1), "reconstruction (max over y)": recon.max(axis=1)},
                         fig=plt.figure(figsize=(16, 3.4)))
plt.show()
