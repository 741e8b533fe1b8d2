"""Summary figures of a white-frame calibration (``reconstruction.calibration``).

``plot_calibration(cal, white, dark)`` draws, in one figure: a corner and the centre of the white
frame with the fitted lenslet centres, the per-lenslet residual map (arrows x 200 on the lattice;
colour = |residual|: dust, distortion or a tilted array show as structure), the vignetting map
(``Calibration.flat_field``) and the histogram of the residuals.  ``save_calibration_figure``
writes it atomically (PNG), refusing to overwrite unless asked.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .calibration import Calibration

__all__ = ["plot_calibration", "save_calibration_figure"]


def plot_calibration(cal: Calibration, white=None, dark=None, *, zoom_lenslets: int = 6):
    """A 2 x 3 matplotlib figure of the calibration (see the module docstring); returns the figure."""
    from matplotlib.figure import Figure  # no pyplot: nothing global, works without a display

    fig = Figure(figsize=(13, 8), constrained_layout=True)
    axes = fig.subplots(2, 3)
    h, w = cal.frame_shape
    pitch = cal.mean_pitch_px
    img = None
    if white is not None:
        img = np.asarray(white, dtype=np.float64) - (0 if dark is None else np.asarray(dark, dtype=np.float64))
    jj, ii = np.meshgrid(np.arange(-int(h / pitch) - 2, int(h / pitch) + 3),
                         np.arange(-int(w / pitch) - 2, int(w / pitch) + 3), indexing="ij")
    cy, cx = cal.centre_of(jj, ii)
    inside = (cy >= 0) & (cy <= h - 1) & (cx >= 0) & (cx <= w - 1)
    half = zoom_lenslets * pitch / 2
    for ax, (y0, x0), title in ((axes[0, 0], (half, half), "corner"), (axes[0, 1], (h / 2, w / 2), "centre")):
        ys, ye = int(max(0, y0 - half)), int(min(h, y0 + half))
        xs, xe = int(max(0, x0 - half)), int(min(w, x0 + half))
        if img is not None:
            ax.imshow(img[ys:ye, xs:xe], cmap="gray", extent=(xs - 0.5, xe - 0.5, ye - 0.5, ys - 0.5))
        sel = inside & (cy >= ys) & (cy < ye) & (cx >= xs) & (cx < xe)
        ax.plot(cx[sel], cy[sel], "r+", ms=8)
        ax.set_xlim(xs - 0.5, xe - 0.5)
        ax.set_ylim(ye - 0.5, ys - 0.5)
        ax.set_title(f"white frame, {title}: fitted lenslet centres")
        ax.set_xlabel("x (px)")
        ax.set_ylabel("y (px)")
    ax = axes[0, 2]
    if cal.residuals is not None and len(cal.residuals):
        rj, ri, dy, dx = cal.residuals.T
        py, px = cal.centre_of(rj, ri)
        mag = np.hypot(dy, dx)
        sc = ax.scatter(px, py, c=mag, s=8, cmap="viridis")
        ax.quiver(px, py, dx, -dy, angles="xy", scale_units="xy", scale=1 / 200, width=0.002, color="k")
        fig.colorbar(sc, ax=ax, label="|residual| (px)")
        ax.set_xlim(-0.5, w - 0.5)
        ax.set_ylim(h - 0.5, -0.5)
        ax.set_aspect("equal")
        axes[1, 2].hist(mag, bins=40)
        axes[1, 2].set_xlabel("|residual| (px), every centred lenslet (rejected ones too)")
        axes[1, 2].set_ylabel("lenslets")
        axes[1, 2].set_title(f"residuals: rms {cal.residual_rms_px:.3f} px, max {cal.residual_max_px:.3f} px")
    else:
        ax.text(0.5, 0.5, "no residual map\n(a saved calibration)", ha="center", va="center", transform=ax.transAxes)
        axes[1, 2].axis("off")
    ax.set_title("per-lenslet residuals (arrows x 200)")
    ax = axes[1, 0]
    flat = cal.flat_field()
    im = ax.imshow(flat, cmap="magma", vmin=float(flat.min()), vmax=1)
    fig.colorbar(im, ax=ax, label="relative light")
    ax.set_title("vignetting (flat field)")
    ax = axes[1, 1]
    ax.axis("off")
    py_, px_ = cal.pitch_px
    text = (f"grid: {cal.grid}\npitch: {py_:.4f} x {px_:.4f} px\nrotation: {cal.rotation_deg:+.4f} deg\n"
            f"angle u-v: {cal.angle_uv_deg:.3f} deg\noffset from centre: ({cal.offset_px[0]:+.3f}, "
            f"{cal.offset_px[1]:+.3f}) px\nlenslets fitted: {cal.lenslets_fitted} ({cal.outliers} rejected)\n"
            f"frame: {h} x {w} px")
    ax.text(0.02, 0.98, text, va="top", family="monospace", transform=ax.transAxes)
    return fig


def save_calibration_figure(path, cal: Calibration, white=None, dark=None, *, overwrite: bool = False) -> Path:
    """Draw ``plot_calibration`` and write it as PNG, atomically."""
    from optics.io import atomic_write

    fig = plot_calibration(cal, white, dark)
    return atomic_write(Path(path), lambda t: fig.savefig(t, format="png", dpi=90), overwrite=overwrite)
