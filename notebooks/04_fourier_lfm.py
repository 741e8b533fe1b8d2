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
# # 4. A Fourier light-field microscope
#
# The Fourier LFM puts the lenslets at a relayed pupil: each lenslet sees the whole sample through
# its own part of the aperture, so every elemental image is a small wide-field view at
# NA / N, shifted by the parallax M_T z tan(theta_k).  Start from the `flfm-20x-0.5w` preset
# (20x/0.5W, Fourier lens f2 = 200 mm, 2 mm lenslets of f = 40 mm on a hexagonal grid), read its
# theory figures, look at its elemental images through focus, check the disparity against the
# ray picture, and reconstruct beads.  See `../shared/PHYSICS.md` sections 1, 4, 5 and
# `../shared/FAMILIES.md` section 1.
#
# Run from the repository root.  `LFMSIM_NOTEBOOK_SMALL=1` (the test suite) uses a reduced copy of the
# design (the same magnification and views on a 96-pixel pupil: `benchmarks.designs.flfm_surrogate`).

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

import matplotlib.pyplot as plt
import numpy as np

from benchmarks.designs import flfm_surrogate
from optics import presets, theory
from optics.lenslets import lenslet_centres
from optics.lfpsf import compute_psf, sensor_pattern
from reconstruction import reconstruct

SMALL = os.environ.get("LFMSIM_NOTEBOOK_SMALL", "") not in ("", "0")

# %% [markdown]
# ## The design

# %%
m = presets.get("flfm-20x-0.5w", volume={"z_min_um": -60, "z_max_um": 60, "z_step_um": 10})
print(m.describe())
for key, value in theory.theory_summary(m).items():
    print(f"{key:30s} {value}")
if SMALL:
    m, k = flfm_surrogate(m, 96)
    side = 121
else:
    k, side = 1.0, 1701
m = m.replace(camera={"shape": [side, side]})
print(f"computed on {m.name}: {side} x {side} pixels (reduction 1/{k:.3g})")

# %% [markdown]
# ## Elemental images through focus
#
# The on-axis source at three depths: for z > 0 (away from the objective) each elemental image
# moves toward the array's centre, for z < 0 away from it.

# %%
fig, axes = plt.subplots(1, 3, figsize=(11, 3.8))
for ax, z in zip(axes, (-50.0, 0.0, 50.0)):
    img = sensor_pattern(m, (0.0, 0.0, z))
    ax.imshow(img ** 0.5, cmap="magma")
    ax.set_title(f"z = {z:g} µm (sqrt)")
    ax.set_axis_off()
plt.show()

# %% [markdown]
# ## Disparity against the ray picture
#
# The elemental image of the lenslet at c_k moves by -M_T z tan(theta_k) toward the axis, with
# n sin(theta_k) = |c_k| / F (`optics.theory.flfm_disparity_um`).  Centroids of the nearest
# off-axis lenslet's image:

# %%
c = lenslet_centres(m)
r = np.hypot(c[:, 0], c[:, 1])
ck = c[np.argsort(r)[1]]  # an inner-ring lenslet
p = m.camera.pixel_um
mid = side // 2
zs = np.linspace(-50, 50, 5 if SMALL else 11)
half = int(0.4 * m.mla.pitch_um / p)
meas = []
for z in zs:
    img = sensor_pattern(m, (0.0, 0.0, float(z)))
    jy, jx = mid + int(round(ck[1] / p)), mid + int(round(ck[0] / p))
    sl = img[jy - half: jy + half + 1, jx - half: jx + half + 1]
    yy, xx = np.mgrid[-half: half + 1, -half: half + 1]
    cx = (sl * xx).sum() / sl.sum() + jx - mid - ck[0] / p
    cy = (sl * yy).sum() / sl.sum() + jy - mid - ck[1] / p
    meas.append(np.dot([cx, cy], ck / np.hypot(*ck)) * p)
th = theory.flfm_disparity_um(zs, ck, m.fourier_focal_um, m.objective.immersion_index, m.lateral_magnification)
fig, ax = plt.subplots(figsize=(5, 3.4))
ax.plot(zs, meas, "o", label="wave optics (centroid)")
ax.plot(zs, th @ (ck / np.hypot(*ck)), "k-", label="-M_T z tan(theta_k)")
ax.set_xlabel("z (µm)")
ax.set_ylabel("radial shift on the sensor (µm)")
ax.legend()
plt.show()

# %% [markdown]
# ## Beads, off the grid, reconstructed
#
# The operator is one kernel per depth (all elemental images of the on-axis source) convolved with
# each plane: the same shift-invariant code path as wide-field.  The beads are imaged from their own
# positions by a finer model (3 field samples per pixel), with Poisson noise.

# %%
t0 = time.perf_counter()
psf = compute_psf(m, progress=False)
print(f"operator kernels of {len(psf.z_um)} depths in {time.perf_counter() - t0:.1f} s "
      f"(side {psf.kernels[0].shape[-1]} px), voxel {m.voxel_um:.3g} µm")
rng = np.random.default_rng(0)
vox = m.voxel_um
beads = [(-6.3 * vox, 4.4 * vox, -27.0), (5.6 * vox, -7.2 * vox, 12.0), (1.3 * vox, 9.1 * vox, 33.0)]
fine = m.replace(simulation={"oversampling": 3})
frame = rng.poisson(2e4 * sum(sensor_pattern(fine, b) for b in beads)).astype(np.float32)
t0 = time.perf_counter()
rec = reconstruct(m, frame, psf=psf, iterations=20, device="cpu", progress=False)
print(f"20 RL iterations in {time.perf_counter() - t0:.1f} s")
for x, y, z in beads:
    iy, ix = mid + int(round(y / vox)), mid + int(round(x / vox))
    win = rec[:, iy - 3: iy + 4, ix - 3: ix + 4]
    kz = int(np.argmax(win.max(axis=(1, 2))))
    print(f"bead at z = {z:6.1f} µm -> brightest plane z = {m.z_um[kz]:6.1f} µm")
fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
axes[0].imshow(rec.max(axis=0), cmap="gray")
axes[0].set_title("reconstruction, max over z")
axes[1].imshow(rec.max(axis=1), cmap="gray", aspect="auto",
               extent=(0, rec.shape[2], m.z_um[-1], m.z_um[0]))
axes[1].set_title("max over y (x-z)")
plt.show()
