"""Plot helpers shared by the trade-off benchmark and the notebooks (matplotlib, no pyplot state).

Each function returns a ``matplotlib.figure.Figure`` (pass ``fig=plt.figure()`` in a notebook to
get a pyplot-managed one): resolution against depth per design with the theory curves, the
trade-off chart (field of view, resolution, usable depth), light-field PSF views (lateral and xz)
and images.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from optics import theory
from optics.config import Microscope

__all__ = ["resolution_vs_depth_figure", "tradeoff_figure", "convergence_figure", "psf_views_figure", "image_figure", "close"]


def close(fig) -> None:
    """Release a figure (pyplot-managed or not)."""
    try:
        import matplotlib.pyplot as plt

        plt.close(fig)
    except Exception:
        pass


def _nan(v):
    return np.array([np.nan if x is None else x for x in v], dtype=float)


def _theory_curve(e: dict):
    """The design's theory curve as the benchmark computed it (``optics.theory.lateral_resolution_m``)."""
    c = e["theory_curve"]
    return np.asarray(c["z_um"], dtype=float), np.asarray(c["lateral_um"], dtype=float)


def _spread(values, ranges):
    """Error-bar half-lengths (below, above) from [min, max] ranges around the medians."""
    med = _nan(values)
    lo = np.array([np.nan if r is None or r[0] is None else r[0] for r in ranges], dtype=float)
    hi = np.array([np.nan if r is None or r[1] is None else r[1] for r in ranges], dtype=float)
    return med, np.vstack([np.nan_to_num(med - lo), np.nan_to_num(hi - med, posinf=0.0)])


#: Marker of each microscope kind in the trade-off chart.
KIND_MARKERS = {"widefield": "^", "lfm": "o", "lfm-defocused": "s", "flfm": "D", "slfm": "P"}


def design_tag(e: dict) -> str:
    """Short label of a design in the charts: WF, N=15 (LFM), LFM2 N=15, FLFM, XLFM, sLFM 3x3 N=15."""
    if e["kind"] == "widefield":
        return "WF"
    if e["kind"] == "slfm":
        k = e.get("scan_steps") or 1
        return f"sLFM {k}x{k} N={e['pixels_per_lenslet']}"
    if e["kind"] == "flfm":
        return "XLFM" if "xlfm" in e["name"] else "FLFM"
    n = f"N={e['pixels_per_lenslet']}"
    return f"LFM2 {n}" if e["kind"] == "lfm-defocused" else n


def resolution_vs_depth_figure(designs: list[dict], threshold_um: float | None = None, fig=None):
    """One panel per design: two-point resolution (median, bars: [min, max] over repeats), lateral FWHM
    and theory against depth, both signs of z as measured."""
    n = len(designs)
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig = fig if fig is not None else Figure(figsize=(3.6 * cols, 2.9 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax, e in zip(axes.flat, designs):
        z = np.asarray(e["depths_um"], dtype=float)
        zz, tc = _theory_curve(e)
        ax.plot(zz, tc, "k-", lw=1, label="theory (same criterion)")
        band = e.get("artifact_band_um") or 0.0
        if band > 0:
            ax.axvspan(-band, band, color="0.85", lw=0, label="artifact band")
        if e["kind"] in ("lfm", "lfm-defocused", "slfm"):
            bl = theory.lfm_band_limit_um(zz, e["wavelength_um"], e["immersion_index"], e["pitch_um"], e["magnification"])
            ax.plot(zz, bl, "k:", lw=1, label="B13 band limit (lenslet pitch d)")
            k = e.get("scan_steps") or 1  # a scanning LFM samples each view every d / K
            ax.axhline(e["pitch_um"] / (k * e["magnification"]), color="0.5", ls="--", lw=0.8,
                       label="d / M" if k == 1 else f"d / ({k} M), the scan step")
        med, err = _spread(e["lateral_resolution_um"], e["lateral_resolution_range_um"])
        ax.errorbar(z, med, yerr=err, fmt="o", color="C0", ms=4, capsize=2, label="two-point (median, [min, max])")
        ax.plot(z, _nan(e["lateral_fwhm_um"]), "s", mfc="none", color="C1", label="lateral FWHM")
        if threshold_um:
            ax.axhline(threshold_um, color="C3", lw=0.8, ls="-.", label="threshold")
        ax.set_title(f"{e['name']}" + (f" ({e['frames_per_volume']} frames / volume)"
                                         if (e.get("frames_per_volume") or 1) > 1 else ""), fontsize=9)
        ax.set_xlabel("z (µm)")
        ax.set_ylabel("lateral (µm)")
        ax.set_ylim(0, None)
    shown = set()
    for ax, e in zip(axes.flat, designs):  # one legend per kind of panel
        if e["kind"] not in shown:
            ax.legend(fontsize=6, loc="upper left")
            shown.add(e["kind"])
    return fig


def tradeoff_figure(designs: list[dict], threshold_um: float | None = None, fig=None):
    """Field of view against best lateral resolution (marker area: usable depth range), usable depth
    against resolvable voxels, and the acquisition volume rate against best lateral resolution (what
    a scanning LFM trades: K^2 frames per volume for its finer sampling; wide-field: planes / s)."""
    fig = fig if fig is not None else Figure(figsize=(15, 4.2), layout="constrained")
    ax1, ax2, ax3 = fig.subplots(1, 3)
    labels = sorted({e["objective"] for e in designs})
    colors = {lab: f"C{i}" for i, lab in enumerate(labels)}
    for e in designs:
        best = e.get("best_lateral_resolution_um")
        best = np.nan if best is None else best
        depth = e["usable_depth_range_um"]
        mk = KIND_MARKERS.get(e["kind"], "o")
        size = 20 + 2.0 * depth
        c = colors[e["objective"]]
        ax1.scatter(e["fov_um"][0], best, s=size, marker=mk, color=c, alpha=0.7, edgecolor="k")
        tag = design_tag(e)
        ax1.annotate(tag, (e["fov_um"][0], best), fontsize=7, xytext=(4, 3), textcoords="offset points")
        ax2.scatter(max(depth, 0.1), max(e["resolvable_voxels"], 1.0), marker=mk, color=c, s=40, edgecolor="k")
        ax2.annotate(tag, (max(depth, 0.1), max(e["resolvable_voxels"], 1.0)), fontsize=7, xytext=(4, 3),
                     textcoords="offset points")
        rate = e.get("volumes_per_second")
        if rate is not None:
            ax3.scatter(rate, best, marker=mk, color=c, s=40, edgecolor="k")
            ax3.annotate(tag + (" (1 plane)" if e["kind"] == "widefield" else ""), (rate, best), fontsize=7,
                         xytext=(4, 3), textcoords="offset points")
    for lab, c in colors.items():
        ax1.scatter([], [], color=c, label=lab)
    for kind in sorted({e["kind"] for e in designs}):
        ax1.scatter([], [], color="0.6", marker=KIND_MARKERS.get(kind, "o"), edgecolor="k", label=kind)
    ax1.set_xlabel("field of view (µm, full camera)")
    ax1.set_ylabel("best lateral resolution (µm)")
    ax1.set_title("FOV vs resolution (area ~ usable depth)", fontsize=9)
    ax1.legend(fontsize=7)
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel(f"usable depth range (µm, lateral <= {threshold_um:g} µm)" if threshold_um else "usable depth (µm)")
    ax2.set_ylabel("resolvable voxels")
    ax2.set_title("depth vs space-bandwidth product", fontsize=9)
    fps = next((e["camera_fps"] for e in designs if e.get("camera_fps")), None)
    ax3.set_xscale("log")
    ax3.set_xlabel(f"volumes / s at {fps:g} camera frames / s" if fps else "volumes / s")
    ax3.set_ylabel("best lateral resolution (µm)")
    ax3.set_title("volume rate vs resolution (sLFM: F / K², wide-field: planes / s)", fontsize=9)
    return fig


def convergence_figure(rows: list[dict], fig=None):
    """Two-point resolution against RL iterations and against photons per bead (bars: [min, max])."""
    fig = fig if fig is not None else Figure(figsize=(10, 3.6), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, var in zip(axes, ("iterations", "photons")):
        sel = [r for r in rows if r["variable"] == var]
        for k, key in enumerate(sorted({(r["design"], r["z_um"]) for r in sel})):
            pts = sorted((r for r in sel if (r["design"], r["z_um"]) == key), key=lambda r: r["value"])
            x = np.array([r["value"] for r in pts], dtype=float)
            med, err = _spread([r["lateral_resolution_um"] for r in pts], [r["lateral_resolution_range_um"] for r in pts])
            ax.errorbar(x * (1 + 0.03 * k), med, yerr=err, fmt="o-", ms=4, capsize=2, color=f"C{k}",
                        label=f"{key[0]}, z = {key[1]:g} µm")
        ax.set_xscale("log")
        ax.set_xlabel("RL iterations" if var == "iterations" else "detected photons per bead")
        ax.set_ylabel("two-point resolution (µm)")
        ax.set_ylim(0, None)
        if sel:
            ax.legend(fontsize=6)
    return fig


def psf_views_figure(psf, depths_um=None, phase=None, fig=None):
    """Lateral sensor patterns of an on-axis point at several depths and an xz view through the centre.

    ``psf`` is an ``optics.LightFieldPSF``; ``phase`` the voxel phase (default the centre one).
    The xz view stacks, for each depth, the kernel row through its centre pixel.
    """
    m: Microscope = psf.microscope
    s = psf.voxels_per_lenslet
    a = s // 2 if phase is None else int(phase)
    z = psf.z_um
    idx = list(range(len(z))) if depths_um is None else [int(np.argmin(np.abs(z - d))) for d in depths_um]
    idx = idx[:6]
    side = max(k.shape[2] for k in psf.kernels)
    fig = fig if fig is not None else Figure(figsize=(2.6 * (len(idx) + 1), 2.9), layout="constrained")
    axes = fig.subplots(1, len(idx) + 1, squeeze=False)[0]
    p_obj = m.camera.pixel_um
    for ax, i in zip(axes, idx):
        k = psf.kernels[i][a, a]
        half = k.shape[0] // 2 * p_obj
        ax.imshow(k, cmap="magma", extent=(-half, half, half, -half))
        ax.set_title(f"z = {z[i]:g} µm", fontsize=9)
        ax.set_xlabel("sensor x (µm)")
    xz = np.zeros((len(z), side))
    for i, kern in enumerate(psf.kernels):
        row = kern[a, a][kern.shape[2] // 2]
        off = (side - row.size) // 2
        xz[i, off:off + row.size] = row / max(float(row.max()), 1e-30)
    half = side // 2 * p_obj
    axes[-1].imshow(xz, aspect="auto", cmap="magma", extent=(-half, half, z[-1], z[0]))
    axes[-1].set_title("xz (row through centre, per-depth normalised)", fontsize=8)
    axes[-1].set_xlabel("sensor x (µm)")
    axes[-1].set_ylabel("z (µm)")
    return fig


def image_figure(images: dict, fig=None, cmap: str = "gray"):
    """Show named 2-D images side by side (e.g. a raw light-field frame, projections)."""
    fig = fig if fig is not None else Figure(figsize=(3.2 * len(images), 3.2), layout="constrained")
    axes = fig.subplots(1, len(images), squeeze=False)[0]
    for ax, (name, img) in zip(axes, images.items()):
        ax.imshow(np.asarray(img), cmap=cmap)
        ax.set_title(name, fontsize=9)
        ax.set_axis_off()
    return fig
