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
# # 3. Explore the trade-off: field of view vs resolution vs depth
#
# The measurement of `python -m benchmarks tradeoff`, at a small size: choose an objective and
# a lenslet pitch (pixels per lenslet N, f-number matched, same camera), choose the depths, and
# measure the two-point lateral resolution, bead FWHMs and the usable depth range, beside the
# closed-form theory.  `LFMSIM_NOTEBOOK_SMALL=1` shrinks everything.

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
import dataclasses
import os

import matplotlib.pyplot as plt
import numpy as np

from benchmarks import designs, plots, tradeoff
from optics import theory

SMALL = os.environ.get("LFMSIM_NOTEBOOK_SMALL", "") not in ("", "0")
size = designs.SIZES["smallest"]
if not SMALL:
    size = dataclasses.replace(designs.SIZES["quick"], objectives=("lfm-20x-0.5w", "lfm-40x-0.95"))

# %% [markdown]
# ## Theory first: how pitch and objective move the curves
#
# Bigger lenslets (larger N for the same pixel) push the useful depth range out (∝ d²) and
# coarsen the rendering resolution d/M; the artifact band around focus grows ∝ d.

# %%
rows = []
for key in ("lfm-20x-0.5w", "lfm-40x-0.95"):
    for n in (7, 11, 15, 19):
        d = [x for x in designs.standard_designs(designs.SIZES["quick"], nnums=(n,), objectives=(key,))
             if x.kind == "lfm"][0]
        s = theory.theory_summary(d.microscope)
        rows.append((d.name, s["rendering_resolution_um"], s["artifact_band_um"], s["useful_range_um"], s["fov_um"][0]))
print(f"{'design':22s} {'d/M':>6s} {'band':>6s} {'useful':>7s} {'FOV':>6s}  (µm)")
for r in rows:
    print(f"{r[0]:22s} {r[1]:6.2f} {r[2]:6.2f} {r[3]:7.1f} {r[4]:6.0f}")

# %% [markdown]
# ## Measure: pick designs and depths
#
# Change `nnums`, `objectives` or `depths` and re-run.  At the quick size, N = 15 on 20x/0.5W also
# brings the 3x3 scanning LFM of the same optics (9 camera frames per volume, the same photons per
# volume; slower to measure): drop it with `chosen = [d for d in chosen if d.kind != "slfm"]`.

# %%
nnums = (7, 15)
objectives = ("lfm-20x-0.5w",)
chosen = designs.standard_designs(size, nnums=nnums, objectives=objectives)
depths = (0.0, 20.0) if SMALL else (0.0, 10.0, 25.0, 45.0)
chosen = [d if d.kind == "widefield" else designs.with_depths(d, depths) for d in chosen]
results = [tradeoff.measure(d, size, device="auto", seed=i) for i, d in enumerate(chosen)]
for e in results:
    print(e["name"], "z =", e["depths_um"], "two-point:", e["lateral_resolution_um"],
          "theory:", np.round(e["theory_lateral_resolution_um"], 2).tolist(),
          f"usable depth {e['usable_depth_range_um']:.3g} µm")

# %%
fig = plots.resolution_vs_depth_figure(results, tradeoff.DEFAULT_THRESHOLD_UM, fig=plt.figure(figsize=(11, 3.2)))
plt.show()
fig = plots.tradeoff_figure(results, tradeoff.DEFAULT_THRESHOLD_UM, fig=plt.figure(figsize=(15, 4)))
plt.show()
