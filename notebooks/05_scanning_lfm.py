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
# # 5. A scanning light-field microscope and digital adaptive optics
#
# A scanning LFM (Wu et al., Cell 2021) steps the image across the lenslets in K x K positions d/K
# apart and takes one camera frame at each: every view is then sampled K times per lenslet, and the
# native focal plane, where a standard LFM only sees whole lenslets, is resolved again.  Start from
# the optics of the `lfm-20x-0.5w` preset with a 3 x 3 scan, look at the scan frames and their
# realignment into views, compare the sLFM with the LFM on two beads at focus, and let digital
# adaptive optics estimate a spherical aberration from the data.  See `../shared/FAMILIES.md`
# section 3.
#
# Run from the repository root.  `LFMSIM_NOTEBOOK_SMALL=1` (the test suite) uses fewer beads and
# iterations.

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

import matplotlib.pyplot as plt
import numpy as np

from optics import compute_psf, presets, theory
from optics.camera import apply_camera
from optics.scan import realign, scan_offsets
from optics.simulation import point_photon_image
from reconstruction import reconstruct

SMALL = os.environ.get("LFMSIM_NOTEBOOK_SMALL", "") not in ("", "0")

# %% [markdown]
# ## The design: the standard LFM's optics, scanned 3 x 3

# %%
crop = {"camera": {"shape": [105, 105]},
        "volume": {"z_min_um": -12, "z_max_um": 12, "z_step_um": 4, "voxels_per_lenslet": 9}}
slfm = presets.get("slfm-20x-0.5w", **crop)
lfm = presets.get("lfm-20x-0.5w", **crop)
print(slfm.describe())
print("scan order (row, col offsets):", scan_offsets(3, slfm.scan.order).tolist())
for name, m in (("LFM", lfm), ("sLFM 3x3", slfm)):
    print(f"{name:9s} theory lateral resolution at z = 0, 8, 20 um:",
          np.round(theory.lateral_resolution_m(m, [0.0, 8.0, 20.0]), 2))

# %% [markdown]
# ## Scan frames and views
#
# One bead 6 um out of focus: the nine frames differ by sub-lenslet shifts; realigned, they are
# N x N = 225 views sampled every d/3 = 2.5 um.

# %%
frames = point_photon_image(slfm, [[0.3, 0.2, 6.0]], photons_per_point=1e4)
views = realign(frames, 3, 15, slfm.scan.order)
fig, ax = plt.subplots(1, 3, figsize=(11, 3.6))
ax[0].imshow(frames[0], cmap="magma")
ax[0].set_title("scan frame 1 of 9")
ax[1].imshow(frames[4] - frames[0], cmap="RdBu_r")
ax[1].set_title("frame 5 - frame 1")
ax[2].imshow(views[7, 2], cmap="magma")
ax[2].set_title("view (7, 2), 2.5 um samples")
for a in ax:
    a.set_xticks([])
    a.set_yticks([])
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Two beads 4 um apart at focus: LFM against sLFM, same photons per volume

# %%
pts = [[-1.69, 0.17, 0.0], [2.31, 0.17, 0.0]]
out = {}
for name, m, photons in (("LFM", lfm, 2e4), ("sLFM 3x3", slfm, 2e4 / 9)):
    raw = apply_camera(point_photon_image(m, pts, photons_per_point=photons), m.camera, rng=0)
    out[name] = reconstruct(m, raw, iterations=10 if SMALL else 30, progress=False)
c = slfm.volume_shape[1] // 2
xs = (np.arange(slfm.volume_shape[2]) - c) * slfm.voxel_um
fig, ax = plt.subplots(figsize=(6, 3.2))
for name, vol in out.items():
    prof = vol[3, c - 1: c + 2].sum(axis=0)  # the z = 0 plane, through the beads
    ax.plot(xs, prof / prof.max(), label=name)
for x, _, _ in pts:
    ax.axvline(x, color="0.7", lw=0.8)
ax.set_xlim(-10, 10)
ax.set_xlabel("x (um)")
ax.set_ylabel("reconstruction (norm.)")
ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Digital adaptive optics
#
# The same sLFM, imaging beads through 0.15 waves rms of spherical aberration (Noll 11), reconstructed
# with the ideal kernels: DAO measures each view's shift against the model, removes tilt and defocus,
# fits Zernike gradients and, round by round, puts the estimate into the kernels.

# %%
rng = np.random.default_rng(1)
nb = 6 if SMALL else 12
beads = np.c_[rng.uniform(-18, 18, nb), rng.uniform(-18, 18, nb), rng.uniform(-10, 10, nb)]
aberrated = slfm.replace(aberrations={"zernike_waves": {"11": 0.15}})
raw = apply_camera(point_photon_image(aberrated, beads, photons_per_point=2e5 / 9), slfm.camera, rng=0)
psf = compute_psf(slfm, progress=False)
plain = reconstruct(slfm, raw, iterations=4, psf=psf, method="phase-space", progress=False)
fixed, ab = reconstruct(slfm, raw, iterations=4, psf=psf, dao=1 if SMALL else 3, progress=False)
print("estimated (waves rms):", {j: round(c, 3) for j, c in ab.zernike_waves.items() if abs(c) >= 0.01},
      "truth: {11: 0.15}")
fig, ax = plt.subplots(1, 2, figsize=(9, 4))
for a, vol, title in ((ax[0], plain, "ideal kernels"), (ax[1], fixed, "with DAO")):
    a.imshow(vol.max(axis=0), cmap="magma")
    a.set_title(f"max projection, {title}")
    a.set_xticks([])
    a.set_yticks([])
plt.tight_layout()
plt.show()
