"""Quick-look figures for notebooks: PSFs at several depths, light-field images, volume comparisons.

matplotlib is imported inside each function so that ``import optics`` stays fast; every function
returns its ``matplotlib.figure.Figure`` (nothing is shown or saved here).
"""

from __future__ import annotations

import numpy as np

from .psfdata import LightFieldPSF

__all__ = ["show_psf", "show_lightfield", "compare_volumes", "axial_kernels"]


def _figure(**kwargs):
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def axial_kernels(psf: LightFieldPSF) -> np.ndarray:
    """(nz, K, K) stack of the centre-phase kernels (phase s // 2), zero-padded to the largest side.

    For odd s this is the sensor image of a point on the optical axis at each depth.
    """
    s = psf.voxels_per_lenslet
    side = max(k.shape[2] for k in psf.kernels)
    out = np.zeros((len(psf.kernels), side, side), dtype=np.float32)
    for iz, k in enumerate(psf.kernels):
        pad = (side - k.shape[2]) // 2
        out[iz, pad : pad + k.shape[2], pad : pad + k.shape[3]] = k[s // 2, s // 2]
    return out


def show_psf(psf, depths=None, *, z_um=None, pixel_um: float | None = None, log: bool = False):
    """Lateral views of the PSF at several depths and an xz section through its centre.

    Parameters
    ----------
    psf : LightFieldPSF or ndarray (z, y, x)
        A ``LightFieldPSF`` (its on-axis, centre-phase kernels are shown) or a stack such as the
        output of ``python -m optics psf``.
    depths : sequence of float, optional
        Depths (µm) to show laterally; the nearest planes are used.  Default: up to 5 spread
        over the range.
    z_um : array_like, optional
        Depth of each plane when ``psf`` is an array (default: plane indices).
    pixel_um : float, optional
        Object-space pixel for the axis labels (default: camera pixel / M of a LightFieldPSF, else 1).
    log : bool
        Logarithmic colour scale (log10 of intensity over the maximum, floored at 1e-4).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if isinstance(psf, LightFieldPSF):
        stack = axial_kernels(psf)
        z = psf.z_um
        if pixel_um is None:
            pixel_um = psf.microscope.pixel_object_um
    else:
        stack = np.asarray(psf, dtype=np.float64)
        if stack.ndim != 3:
            raise ValueError(f"psf has shape {stack.shape}; expected a LightFieldPSF or a (z, y, x) array")
        z = np.arange(len(stack), dtype=float) if z_um is None else np.asarray(z_um, dtype=float)
        if z.shape != (len(stack),):
            raise ValueError(f"z_um has {z.size} values; expected {len(stack)}, one per plane")
    pixel_um = 1.0 if pixel_um is None else float(pixel_um)
    if depths is None:
        idx = np.unique(np.linspace(0, len(z) - 1, min(5, len(z))).round().astype(int))
    else:
        idx = [int(np.argmin(np.abs(z - d))) for d in np.atleast_1d(depths)]
    peak = float(stack.max()) or 1.0

    def scale(a):
        return np.log10(np.maximum(a / peak, 1e-4)) if log else a

    ny, nx = stack.shape[1:]
    ext = [-(nx // 2 + 0.5) * pixel_um, (nx - nx // 2 - 0.5) * pixel_um,
           (ny - ny // 2 - 0.5) * pixel_um, -(ny // 2 + 0.5) * pixel_um]
    fig = _figure(figsize=(3 * (len(idx) + 1), 3.4), layout="constrained")
    axes = fig.subplots(1, len(idx) + 1, squeeze=False)[0]
    for ax, i in zip(axes, idx):
        ax.imshow(scale(stack[i]), extent=ext, cmap="magma")
        ax.set_title(f"z = {z[i]:g} um")
        ax.set_xlabel("x (um)")
    axes[0].set_ylabel("y (um)")
    xz = stack[:, ny // 2, :]
    dz = float(np.median(np.diff(z))) if len(z) > 1 else 1.0
    axes[-1].imshow(scale(xz), extent=[ext[0], ext[1], z[-1] + dz / 2, z[0] - dz / 2],
                    aspect="auto", cmap="magma")
    axes[-1].set_title("xz (y = 0)")
    axes[-1].set_xlabel("x (um)")
    axes[-1].set_ylabel("z (um)")
    return fig


def show_lightfield(image, n_per_lenslet: int, *, grid: bool = True, zoom: tuple | None = None):
    """A light-field image with its lenslet grid.

    Parameters
    ----------
    image : ndarray (y, x)
        Sensor image (e.g. a simulated frame).
    n_per_lenslet : int
        Pixels per lenslet N; grid lines are drawn every N pixels.
    grid : bool
        Draw the lenslet boundaries.
    zoom : (y0, y1, x0, x1), optional
        Pixel window to show.

    Returns
    -------
    matplotlib.figure.Figure
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"image has shape {img.shape}; expected a 2-D (y, x) array")
    n = int(n_per_lenslet)
    if n < 1:
        raise ValueError(f"n_per_lenslet = {n_per_lenslet!r} is invalid: expected an integer >= 1")
    fig = _figure(figsize=(6, 6), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(img, cmap="gray", interpolation="nearest")
    fig.colorbar(im, ax=ax, shrink=0.8)
    if grid and n > 1:
        for y in np.arange(0, img.shape[0] + 1, n) - 0.5:
            ax.axhline(y, color="tab:blue", lw=0.3, alpha=0.6)
        for x in np.arange(0, img.shape[1] + 1, n) - 0.5:
            ax.axvline(x, color="tab:blue", lw=0.3, alpha=0.6)
    if zoom is not None:
        y0, y1, x0, x1 = zoom
        ax.set_xlim(x0 - 0.5, x1 - 0.5)
        ax.set_ylim(y1 - 0.5, y0 - 0.5)
    ax.set_title(f"light field ({n} px per lenslet)")
    ax.set_xlabel("x (px)")
    ax.set_ylabel("y (px)")
    return fig


def compare_volumes(truth, estimate, *, voxel_um: tuple[float, float] | None = None, titles=("truth", "estimate")):
    """Maximum-intensity projections (xy, xz) of two volumes side by side.

    Parameters
    ----------
    truth, estimate : ndarray (z, y, x)
        Volumes of the same shape.
    voxel_um : (z, xy), optional
        Voxel sizes for the aspect ratio of the xz view (default: isotropic).
    titles : (str, str)

    Returns
    -------
    matplotlib.figure.Figure
    """
    a = np.asarray(truth, dtype=np.float64)
    b = np.asarray(estimate, dtype=np.float64)
    if a.ndim != 3 or a.shape != b.shape:
        raise ValueError(f"truth has shape {a.shape} and estimate {b.shape}; expected two (z, y, x) volumes of the same shape")
    aspect = 1.0 if voxel_um is None else float(voxel_um[0]) / float(voxel_um[1])
    fig = _figure(figsize=(8, 6), layout="constrained")
    axes = fig.subplots(2, 2, height_ratios=[a.shape[1], max(1.0, a.shape[0] * aspect)])
    for col, (vol, title) in enumerate(zip((a, b), titles)):
        axes[0, col].imshow(vol.max(axis=0), cmap="magma")
        axes[0, col].set_title(f"{title}: max over z")
        axes[1, col].imshow(vol.max(axis=1), cmap="magma", aspect=aspect)
        axes[1, col].set_title("max over y (xz)")
        axes[1, col].set_xlabel("x (voxels)")
    axes[0, 0].set_ylabel("y (voxels)")
    axes[1, 0].set_ylabel("z (planes)")
    return fig
