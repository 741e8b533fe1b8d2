"""Scale-out: throughput of a simulated time series vs dask workers, peak memory, out of core.

``python -m benchmarks scale [--frames 200] [--workers 1 2] [--frames-per-task F] [--out DIR]`` simulates a (t, Y, X)
stack of raw camera frames (beads of the 20x/0.5W preset on 15 x 15 lenslets, each frame its own
camera noise), writes it as a TIFF, and reconstructs it with ``reconstruction.reconstruct_series``
into OME-Zarr: serially in this process, and on a LocalCluster of each number of workers (one
thread each), every worker's memory limited (``--worker-memory``, default the operator three
times plus 400 MB).  The stack is read frame by frame by the tasks and the volumes are written as
they finish, so no process holds the stack: the peak memory of the driver and of the workers does
not grow with the number of frames (compare ``--frames 40`` with 200), and a stack larger than
the limit runs (the table says whether this one is).  It prints a table naming the device:
volumes/s, speed-up over the serial run measured in the same run, peak RSS of the driver and of
each worker, and writes ``scale.md`` / ``scale.json``.

``--depth-split`` measures instead one Fourier LFM frame deconvolved with its depths split over the
workers (``reconstruction.depthsplit``, one contiguous depth group per worker) against
``richardson_lucy`` with the whole operator in this process: seconds per frame, each worker's
operator and peak RSS (a worker holds 1/G of the kernel spectra and of RL's volumes), and the
relative difference of the volumes.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np

__all__ = ["main"]


def _microscope(lenslets: int):
    import warnings

    from optics import presets

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return presets.get("lfm-20x-0.5w", camera={"shape": [15 * lenslets, 15 * lenslets]},
                           volume={"z_min_um": -30, "z_max_um": 30, "z_step_um": 6, "voxels_per_lenslet": 5})


def _stack(m, frames: int, path: Path, seed: int = 0) -> int:
    """Simulate ``frames`` noisy raw frames of a few beads (each frame its own noise) into ``path``."""
    import tifffile

    from optics import compute_psf, phantoms
    from optics.camera import apply_camera
    from optics.simulation import photon_image

    rng = np.random.default_rng(seed)
    half = m.fov_um[0] / 2 * 0.7
    beads = [(float(rng.uniform(-half, half)), float(rng.uniform(-half, half)), float(rng.uniform(-25, 25)))
             for _ in range(12)]
    psf = compute_psf(m, progress=False)
    mean = photon_image(m, phantoms.beads(m, beads), psf=psf, photons_per_voxel=2e4)
    with tifffile.TiffWriter(path) as tw:  # one page per frame: the tasks read single pages
        for t in range(frames):
            tw.write(apply_camera(mean, m, rng=seed + 1 + t))
    return path.stat().st_size


def _peak_rss_mb() -> float:
    """This process's own peak RSS (``VmHWM``: a worker's ``ru_maxrss`` starts at the high-water mark of
    the process that started it, here the driver's, so it would report the driver's peak)."""
    from benchmarks.peer_pyolaf import own_peak_rss_bytes

    return own_peak_rss_bytes() / 2**20


def _run(m, stack: Path, out: Path, iterations: int, workers: int | None, worker_memory: str | None,
         frames_per_task: int = 1) -> dict:
    from reconstruction.distributed import reconstruct_series

    if out.exists():
        shutil.rmtree(out)
    client = cluster = None
    if workers is not None:
        import logging

        from distributed import Client, LocalCluster

        logging.getLogger("distributed").setLevel(logging.WARNING)  # the in-process scheduler's INFO lines
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                               memory_limit=worker_memory, silence_logs=logging.WARNING)
        client = Client(cluster)
    try:
        t0 = time.perf_counter()
        res = reconstruct_series(m, stack, out, iterations=iterations, client=client, progress=False,
                                 frames_per_task=frames_per_task)
        wall = time.perf_counter() - t0
        worker_mb = []
        if client is not None:
            worker_mb = sorted(client.run(_peak_rss_mb).values())
    finally:
        if client is not None:
            client.close()
            cluster.close()
    return {"workers": workers or 0, "wall_s": wall, "volumes_per_s": res["frames"] / wall,
            "median_task_s": float(np.median(res["task_seconds"])), "worker_peak_rss_mb": worker_mb}


def small_flfm(side: int):
    """A Fourier LFM of 3 x 3 lenslets (20x/0.5W, f2 = 20 mm) on ``side``^2 pixels, 21 depths (also the
    test suite's small Fourier LFM)."""
    from optics.config import Microscope

    return Microscope.from_dict({
        "microscope": {"kind": "flfm", "wavelength_um": 0.52, "name": f"flfm-20x-0.5w-3x3-{side}px"},
        "objective": {"magnification": 20, "na": 0.5, "immersion_index": 1.33, "tube_lens_focal_um": 200000},
        "mla": {"pitch_um": 333.0, "focal_um": 4000.0, "fourier_lens_focal_um": 20000.0, "lenslets": [3, 3]},
        "camera": {"pixel_um": 6.5, "shape": [side, side]},
        "volume": {"z_min_um": -30, "z_max_um": 30, "z_step_um": 3}})


def _depth_split(args, out: Path) -> int:
    """``--depth-split``: one Fourier LFM frame, serial RL against its depths over 1, 2, ... workers."""
    import logging

    from distributed import Client, LocalCluster

    from optics import compute_psf
    from optics.simulation import point_photon_image
    from reconstruction import backend
    from reconstruction.deconvolution import richardson_lucy
    from reconstruction.depthsplit import depth_split_rl
    from reconstruction.operator import LightFieldOperator

    m = small_flfm(args.flfm_pixels)
    psf = compute_psf(m, progress=False)
    rng = np.random.default_rng(0)
    half = 0.35 * m.fov_um[0]
    beads = [(float(rng.uniform(-half, half)), float(rng.uniform(-half, half)), float(rng.uniform(-25, 25)))
             for _ in range(8)]
    y = rng.poisson(point_photon_image(m, beads, photons_per_point=2e4)).astype(np.float32)
    t0 = time.perf_counter()
    op = LightFieldOperator(psf, "cpu")
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = richardson_lucy(y, op, args.iterations, progress=False)
    serial = time.perf_counter() - t0
    op_mb = op.nbytes / 2**20
    del op
    rows = [{"workers": 0, "seconds": build + serial, "build_s": build, "operator_mb": [op_mb], "worker_peak_rss_mb": [],
             "relative_difference": 0.0}]
    logging.getLogger("distributed").setLevel(logging.WARNING)
    for w in args.workers:
        with LocalCluster(n_workers=w, threads_per_worker=max(1, 2 // w), processes=True, dashboard_address=":0",
                          silence_logs=logging.WARNING) as cluster, Client(cluster) as client:
            info: dict = {}
            t0 = time.perf_counter()
            vol = depth_split_rl(y, psf, args.iterations, client=client, device="cpu", progress=False, info=info)
            wall = time.perf_counter() - t0
            rss = sorted(client.run(_peak_rss_mb).values())
        rows.append({"workers": w, "seconds": wall, "groups": info["groups"],
                     "operator_mb": [b / 2**20 for b in info["operator_bytes"]], "worker_peak_rss_mb": rss,
                     "relative_difference": float(np.linalg.norm(vol - ref) / np.linalg.norm(ref))})
    device = backend.device_name("cpu")
    lines = [f"# Depth split: one Fourier LFM frame ({m.name}), {m.image_shape[0]} x {m.image_shape[1]} px, "
             f"volume {m.volume_shape}, {args.iterations} RL iterations, device {device} ({platform.node()})", "",
             f"Seconds include each run's operator build (serial: {build:.2f} s of {build + serial:.2f} s); the "
             "PSF is computed once before.", "",
             "| run | seconds (build + RL) | operator MB per worker | worker peak RSS MB | volume vs serial (rel. L2) |",
             "|---|---|---|---|---|"]
    for r in rows:
        name = "serial richardson_lucy (this process)" if r["workers"] == 0 else \
            f"depth_split_rl, {r['workers']} worker(s), groups {r['groups']}"
        lines.append(f"| {name} | {r['seconds']:.2f} | {', '.join(f'{v:.0f}' for v in r['operator_mb'])} | "
                     f"{', '.join(f'{v:.0f}' for v in r['worker_peak_rss_mb']) or '-'} | {r['relative_difference']:.1e} |")
    text = "\n".join(lines) + "\n"
    print(text)
    from optics.io import atomic_write_bytes

    atomic_write_bytes(out / "scale.md", text.encode(), overwrite=True)
    atomic_write_bytes(out / "scale.json", json.dumps({"mode": "depth-split", "microscope": m.name, "device": device,
                                                       "iterations": args.iterations, "rows": rows}, indent=1).encode(),
                       overwrite=True)
    return 0


def _parser():
    p = argparse.ArgumentParser(prog="python -m benchmarks scale", description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=200, help="frames in the simulated stack (default 200)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="LocalCluster sizes (default 1 2)")
    p.add_argument("--lenslets", type=int, default=15, help="lenslets per side of the frame (default 15)")
    p.add_argument("--iterations", type=int, default=8, help="RL iterations per frame (default 8)")
    p.add_argument("--frames-per-task", type=int, default=1,
                   help="frames one task deconvolves together (batched RL; default 1)")
    p.add_argument("--worker-memory", default=None,
                   help="memory limit per worker (dask notation, e.g. 400MB); default the operator x 3 + 400 MB")
    p.add_argument("--out", default=None, help="output folder (default a new results/scale-<time>)")
    p.add_argument("--overwrite", action="store_true", help="write into an existing non-empty --out")
    p.add_argument("--quick", action="store_true", help="40 frames, workers 1 2")
    p.add_argument("--depth-split", action="store_true",
                   help="one Fourier LFM frame with its depths over the workers (reconstruction.depthsplit) "
                        "against serial RL, instead of a time series")
    p.add_argument("--flfm-pixels", type=int, default=301, help="--depth-split: camera pixels per side (default 301)")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress messages (INFO)")
    p.add_argument("--no-progress", action="store_true", help="accepted like the other commands (no bars here)")
    return p


def main(argv: list[str] | None = None) -> int:
    import logging

    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    frames = 40 if args.quick else args.frames
    if frames < 1 or args.frames_per_task < 1 or any(w < 1 for w in args.workers):
        print("error: --frames, --frames-per-task and --workers must be >= 1", file=sys.stderr)
        return 2
    out = Path(args.out or f"results/scale-{datetime.now():%Y%m%d-%H%M%S}")
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        print(f"error: --out {str(out)!r} exists and is not empty; pass --overwrite", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    if args.depth_split:
        return _depth_split(args, out)
    from reconstruction import backend
    from reconstruction.scanned import make_operator

    m = _microscope(args.lenslets)
    stack = out / "stack.tif"
    t0 = time.perf_counter()
    size = _stack(m, frames, stack)
    sim_s = time.perf_counter() - t0
    from optics import compute_psf

    op = make_operator(compute_psf(m, progress=False), "cpu", np.float32, progress=False)
    op_mb = op.nbytes / 2**20
    del op
    worker_memory = args.worker_memory or f"{int(3 * op_mb + 400)}MB"
    from dask.utils import parse_bytes

    out_of_core = size > parse_bytes(worker_memory)
    fpt = args.frames_per_task
    rows = [_run(m, stack, out / "serial.ome.zarr", args.iterations, None, None, fpt)]
    for w in args.workers:
        rows.append(_run(m, stack, out / f"w{w}.ome.zarr", args.iterations, w, worker_memory, fpt))
    base = rows[0]["wall_s"]
    device = backend.device_name("cpu")
    lines = [f"# Scale-out: {frames} frames of {m.image_shape[0]} x {m.image_shape[1]} px, volume {m.volume_shape}, "
             f"{args.iterations} RL iterations, {fpt} frame(s) per task, device {device} ({platform.node()})", "",
             f"Stack {size / 2**20:.1f} MiB on disk (simulated in {sim_s:.1f} s); operator {op_mb:.0f} MiB; "
             f"worker memory limit {worker_memory} ({'smaller than the stack: out of core' if out_of_core else 'larger than this stack'}); "
             f"driver peak RSS {_peak_rss_mb():.0f} MB.", "",
             "| run | wall s | volumes/s | speed-up vs serial (same run) | median task s | worker peak RSS MB |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        name = "serial (this process)" if r["workers"] == 0 else f"LocalCluster, {r['workers']} worker(s) x 1 thread"
        lines.append(f"| {name} | {r['wall_s']:.1f} | {r['volumes_per_s']:.2f} | {base / r['wall_s']:.2f} | "
                     f"{r['median_task_s']:.3f} | {', '.join(f'{v:.0f}' for v in r['worker_peak_rss_mb']) or '-'} |")
    text = "\n".join(lines) + "\n"
    print(text)
    from optics.io import atomic_write_bytes

    atomic_write_bytes(out / "scale.md", text.encode(), overwrite=True)
    atomic_write_bytes(out / "scale.json", json.dumps({"frames": frames, "frames_per_task": fpt, "iterations": args.iterations,
                                                       "device": device, "rows": rows,
                                                       "stack_mib": size / 2**20, "operator_mib": op_mb, "out_of_core": out_of_core,
                                                       "driver_peak_rss_mb": _peak_rss_mb(),
                                                       "worker_memory": worker_memory}, indent=1).encode(),
                       overwrite=True)
    for r in rows:  # the volumes are not needed after the measurement
        shutil.rmtree(out / ("serial.ome.zarr" if r["workers"] == 0 else f"w{r['workers']}.ome.zarr"), ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
