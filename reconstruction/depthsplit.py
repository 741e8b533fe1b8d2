"""Richardson-Lucy of one frame with its depths split over dask workers: how a Fourier LFM scales out.

A Fourier LFM's PSF spans every elemental image, so a tile of its field of view needs the whole
sensor, and halos do not decouple tiles as they do for the periodic LFM (``reconstruction.tiling``;
FAMILIES.md section 5.2).  What does separate is depth: H x = sum_z H_z x_z.  Each worker holds
the kernel spectra and the estimate of one contiguous range of depths G (its share of the memory:
the spectra and RL's volumes are both proportional to the depths it holds), and an iteration moves
images only:

    f = sum_G H_G x_G          (the workers' partial projections, summed by the client)
    r = ratio(y, f)            (``deconvolution.RatioTerms``: the rule of ``richardson_lucy``)
    x_G <- x_G H_Gᵀ r / H_Gᵀ 1 (each worker, ``deconvolution.rl_update``)

In exact arithmetic this is ``richardson_lucy``; in floating point only the order of the sum over
depths differs (the test suite compares them).  Time series scale over frames instead
(``reconstruction.distributed``); the two combine by running one frame's groups per set of workers.
"""

from __future__ import annotations

import logging
import sys
from types import SimpleNamespace

import numpy as np

from . import backend

__all__ = ["depth_groups", "depth_split_rl", "sub_psf"]

log = logging.getLogger(__name__)


def depth_groups(nz: int, groups: int) -> list[tuple[int, int]]:
    """``groups`` contiguous depth ranges [lo, hi) covering 0..nz, as equal as they can be."""
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or not 1 <= groups <= nz:
        raise ValueError(f"groups = {groups!r} is invalid: expected an integer from 1 to the {nz} depths")
    edges = [round(i * nz / groups) for i in range(groups + 1)]
    return [(edges[i], edges[i + 1]) for i in range(groups)]


def sub_psf(psf, lo: int, hi: int):
    """The PSF of depths [lo, hi) of ``psf``: its microscope with that z range, the same kernels."""
    from optics.psfdata import LightFieldPSF

    m = psf.microscope
    z = np.asarray(psf.z_um)
    sub = m.replace(volume={"z_min_um": float(z[lo]), "z_max_um": float(z[hi - 1])})
    if len(sub.z_um) != hi - lo or not np.allclose(sub.z_um, z[lo:hi], rtol=0, atol=1e-9):
        raise ValueError(f"depths {lo}..{hi - 1} of the PSF do not form the grid of a volume section")
    return LightFieldPSF(sub, z[lo:hi], psf.kernels[lo:hi], psf.discarded[lo:hi], dict(psf.meta))


class _Group:
    """One worker's depths: the operator, 1 / H_Gᵀ 1 and sum(H_Gᵀ 1) (built on the worker)."""

    def __init__(self, psf, device: str, dtype):
        from .deconvolution import inverse_ht1
        from .scanned import make_operator

        self.op = make_operator(psf, device, dtype)
        ht1 = self.op.ones_adjoint()
        self.inv_ht1 = inverse_ht1(ht1, self.op)
        self.ht1_sum = float(ht1.sum(dtype=self.op.xp.float64))
        self.nbytes = int(self.op.nbytes)


def _build(psf, device: str, dtype) -> _Group:
    return _Group(psf, device, dtype)


def _summary(group: _Group) -> tuple[float, int]:
    return group.ht1_sum, group.nbytes


def _start(group: _Group, level: float):
    return group.op.xp.full(group.op.volume_shape, level, dtype=group.op.dtype)


def _forward(group: _Group, x) -> np.ndarray:
    return backend.to_host(group.op.forward(x))


def _update(group: _Group, x, ratio: np.ndarray):
    from .deconvolution import rl_update

    return rl_update(group.op, x, backend.to_device(ratio, group.op.device, dtype=group.op.dtype), group.inv_ht1)


def _to_host(x) -> np.ndarray:
    return backend.to_host(x)


def depth_split_rl(image, psf, iterations: int = 8, *, client=None, workers: int | None = None,
                   scheduler: str | None = None, groups: int | None = None, device: str = "auto",
                   dtype=np.float32, background=None, read_noise: float | None = None, eps: float | None = None,
                   progress: bool = True, info: dict | None = None) -> np.ndarray:
    """Richardson-Lucy of one frame ``image`` (``psf.microscope.image_shape``) with its depths split
    into ``groups`` contiguous ranges, one per dask worker (module docstring).

    The cluster: a ``client``, a ``scheduler`` address, or a LocalCluster of ``workers`` processes
    (closed at the end), as in ``reconstruction.distributed.reconstruct_series``; one is required.

    ``groups``: default the number of workers (at most the depths).  Each group's operator is built
    on its worker from its own kernels (only they are sent) and stays there with its estimate;
    ``device`` is each worker's ("auto": its GPU when it has one).  ``background``, ``read_noise`` and
    ``eps`` as in ``richardson_lucy`` (the same validation and ratio).  Returns the volume (nz, Y', X')
    as a NumPy array of ``dtype``.  ``info``, a dict, receives the groups' depth ranges, their
    workers and their operators' bytes.  A worker lost mid-frame loses its group's estimate, and
    the frame fails (run it again); resilience to lost workers is the time series' (its tasks are
    whole frames, ``reconstruction.distributed``).
    """
    from .deconvolution import _check_background, _check_read_noise, check_image_values

    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < 0:
        raise ValueError(f"iterations = {iterations!r} is invalid: expected an integer >= 0")
    host = SimpleNamespace(xp=np, dtype=np.dtype(dtype), device="cpu")
    y = np.asarray(image, dtype=host.dtype)
    if y.shape != tuple(psf.image_shape):
        raise ValueError(f"image has shape {y.shape}; expected one frame of {tuple(psf.image_shape)}")
    sigma = _check_read_noise(read_noise)
    y = check_image_values(y, sigma)
    b = _check_background(background, host, y.shape)
    if psf.microscope.kind == "slfm":
        raise ValueError("microscope.kind = 'slfm' is invalid here: depth_split_rl deconvolves one frame; a "
                         "scanning LFM's K^2 frames go through richardson_lucy or reconstruct()")
    if groups is not None:
        depth_groups(len(psf.z_um), groups)  # refused before the cluster starts
    if client is None and workers is None and scheduler is None:
        raise ValueError("depth_split_rl needs a cluster: pass client, workers or scheduler")
    from .distributed import _client, _release

    c, close = _client(client, workers, scheduler, progress)
    try:
        return _run(c, y, b, sigma, eps, psf, int(iterations), groups, device, host.dtype, progress,
                    {} if info is None else info)
    finally:
        if close:
            _release(c)


def _run(client, y, b, sigma, eps, psf, iterations, groups, device, dtype, progress, info: dict) -> np.ndarray:
    from .deconvolution import RatioTerms

    dt = np.dtype(dtype)
    workers = sorted(client.scheduler_info()["workers"])
    nz = len(psf.z_um)
    ranges = depth_groups(nz, min(len(workers), nz) if groups is None else groups)
    log.info("depth_split_rl: %d depths in %d groups on %d workers (%s)", nz, len(ranges), len(workers),
             ", ".join(f"{lo}..{hi - 1}" for lo, hi in ranges))
    where = [[workers[i % len(workers)]] for i in range(len(ranges))]

    def on(i, fn, *args):
        # a task for group i's worker, where its operator and estimate live (data locality keeps it
        # there; the restriction is loose so that a lost worker fails the frame instead of hanging)
        return client.submit(fn, *args, workers=where[i], allow_other_workers=True, pure=False)

    grp = [on(i, _build, client.scatter(sub_psf(psf, lo, hi), workers=where[i], direct=True), device, dtype)
           for i, (lo, hi) in enumerate(ranges)]
    sums = client.gather([on(i, _summary, g) for i, g in enumerate(grp)])
    total = sum(v for v, _ in sums)
    log.info("depth_split_rl: operators of %s MB on the workers", ", ".join(f"{nb / 2**20:.0f}" for _, nb in sums))
    info.update({"groups": [list(r) for r in ranges], "workers": [w[0] for w in where],
                 "operator_bytes": [int(nb) for _, nb in sums]})
    # richardson_lucy's uniform start: sum(H x0) = max(sum(y - b), 0) (the background is not the volume's)
    signal = y if b is None else y - b
    flux = max(float(signal.sum(dtype=np.float64)), 0.0)
    level = flux / total if total > 0 else 0.0
    x = [on(i, _start, g, level) for i, g in enumerate(grp)]
    terms = RatioTerms(y, b, sigma, eps, np, dt)
    bar = None
    if progress and iterations:
        from tqdm.auto import tqdm

        bar = tqdm(total=iterations, desc="Richardson-Lucy (depth groups)", unit="it",
                   disable=None if sys.stderr.isatty() else True)
    try:
        for k in range(iterations):
            parts = client.gather([on(i, _forward, g, xi) for i, (g, xi) in enumerate(zip(grp, x))])
            hx = parts[0].astype(dt, copy=True)
            for p in parts[1:]:
                hx += p
            ratio = client.scatter(terms.ratio(hx), broadcast=True)
            x = [on(i, _update, g, xi, ratio) for i, (g, xi) in enumerate(zip(grp, x))]
            if bar is not None:
                bar.update(1)
            log.debug("depth_split_rl: iteration %d/%d", k + 1, iterations)
        vols = client.gather([on(i, _to_host, xi) for i, xi in enumerate(x)])
    finally:
        if bar is not None:
            bar.close()
    return np.concatenate(vols, axis=0).astype(dt, copy=False)
