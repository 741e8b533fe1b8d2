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
# # 6. A recorded light field: calibrate, correct, rectify, reconstruct
#
# A real microscope's frame is not on the model's grid.  napari-LF's GUV frame (a giant unilamellar
# vesicle, a spherical membrane of radius ~13 µm; 60x/1.2 water, 100 µm / f 2500 µm lenslets on
# 6.5 µm pixels: 15.38 pixels per lenslet) ships with the tests (`tests/data/guv-experim1`, BSD-3,
# see its README).  Each step of `reconstruction.recorded` in turn: the white frame's lattice, the
# dark and flat correction, the rectification to 15 whole pixels per lenslet, and Richardson-Lucy
# with the camera's read noise.
#
# Run from the repository root.  `LFMSIM_NOTEBOOK_SMALL=1` (the test suite) runs fewer iterations.

# %%
# ruff: noqa: E402
import pathlib
import sys

_root = pathlib.Path.cwd()
if not (_root / "benchmarks").is_dir() and (_root.parent / "benchmarks").is_dir():
    _root = _root.parent
sys.path.insert(0, str(_root))

# %%
import os
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import tifffile

from optics import compute_psf, presets
from reconstruction import richardson_lucy
from reconstruction.calibration import calibrate
from reconstruction.calibration_figures import plot_calibration
from reconstruction.recorded import prepare_recorded
from reconstruction.rectification import correct_frame, rectify
from reconstruction.scanned import make_operator

SMALL = os.environ.get("LFMSIM_NOTEBOOK_SMALL", "") not in ("", "0")
data = _root / "tests" / "data" / "guv-experim1"
raw = tifffile.imread(data / "Lightfield_GUVExperim1.tif")
white = tifffile.imread(data / "Radiometry_GUVExperim1.tif")
dark = tifffile.imread(data / "DarkFrame_GUVExperim1.tif")
m = presets.get("recorded-guv-60x-1.2w")
print(m.name)
print(f"raw {raw.shape} {raw.dtype}, white median {np.median(white):.0f}, dark median {np.median(dark):.0f} ADU")

# %% [markdown]
# ## 1. The lenslet lattice of the white frame
# The config says 100 / 6.5 = 15.385 pixels per lenslet; the white frame is measured (its Fourier
# fundamentals, then each lenslet's centroid, then a robust lattice fit).  The residual map shows
# what a lattice does not explain (dust, distortion).

# %%
t0 = time.perf_counter()
cal = calibrate(white, dark, expected_pitch_px=m.mla.pitch_um / m.camera.pixel_um)
print(f"calibrated in {time.perf_counter() - t0:.2f} s:", cal.summary())
fig = plot_calibration(cal, white, dark)
fig  # noqa: B018 (Jupyter shows the figure)

# %% [markdown]
# ## 2. Dark, gain and flat field; 3. rectification
# (raw - dark) / gain gives photo-electrons; the white frame's smooth vignetting is divided out
# (not the pupil image inside each lenslet: that is optics the operator models).  Some pixels of
# this frame lie well below its dark frame (it was recorded with another offset), which
# `prepare_recorded` detects and corrects with a warning.  The rectified frame has 15 pixels per
# lenslet, centred and unrotated.

# %%
electrons = correct_frame(raw, cal, dark, gain_adu_per_e=m.camera.gain_adu_per_e)
rect, info = rectify(electrons, cal)
print(info)
fig, ax = plt.subplots(1, 3, figsize=(15, 5))
ax[0].imshow(raw[:90, :90], cmap="gray")
ax[0].set_title("raw frame, corner (ADU)")
ax[1].imshow(rect[:90, :90], cmap="gray")
ax[1].set_title("rectified (e-), 15 px per lenslet")
for k in range(0, 91, 15):
    ax[1].axhline(k - 0.5, color="c", lw=0.5)
    ax[1].axvline(k - 0.5, color="c", lw=0.5)
ax[2].imshow(rect, cmap="gray")
ax[2].set_title(f"rectified frame {rect.shape}")
plt.show()

# %% [markdown]
# ## 4. Richardson-Lucy with the camera's read noise
# `prepare_recorded` runs steps 1-3 (with the offset check); the operator is that of the rectified
# microscope (pixels of 100/15 µm).  15 iterations, as napari-LF's reference reconstruction.

# %%
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    frame = prepare_recorded(m, raw, white=white, dark=dark)
for w in caught:
    print("warning:", w.message)
mr = frame.microscope
t0 = time.perf_counter()
op = make_operator(compute_psf(mr, progress=False), "auto", np.float32, progress=False)
print(f"PSF and operator of the rectified microscope in {time.perf_counter() - t0:.1f} s")
iterations = 4 if SMALL else 15
t0 = time.perf_counter()
vol = richardson_lucy(frame.image, op, iterations, progress=False, read_noise=frame.info["noise_e"])
print(f"{iterations} RL iterations in {time.perf_counter() - t0:.1f} s; volume {vol.shape}, voxel {mr.voxel_um:.3f} µm")

# %%
z = mr.z_um
fig, ax = plt.subplots(2, 5, figsize=(16, 7))
for k, a in enumerate(ax.flat[: len(z)]):
    a.imshow(vol[k], cmap="gray", extent=(0, vol.shape[2] * mr.voxel_um, vol.shape[1] * mr.voxel_um, 0))
    a.set_title(f"z = {z[k]:+.1f} µm")
fig.suptitle("the GUV: a ring in every slice (the native focal plane z ~ 0 shows the LFM's grid artefacts)")
plt.show()
hx = op.forward(vol)
print(f"re-projection residual {np.linalg.norm(hx - frame.image) / np.linalg.norm(frame.image):.3f} (L2, of the rectified frame)")
