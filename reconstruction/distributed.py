"""Time series beyond one process: Richardson-Lucy of a (t, Y, X) stack on dask.distributed.

``reconstruct_series(config, STACK, OUT.ome.zarr, workers=2)`` (``python -m reconstruction CONFIG
STACK.tif --out VOLS.ome.zarr --workers 2``) reconstructs every frame of a stack into an OME-Zarr
volume series (``reconstruction.omezarr``), one task per batch of frames:

* The PSF kernels are computed (or loaded from the cache) once, on the driver, and scattered to
  the workers once (``Client.scatter(..., broadcast=True)``); each worker builds its
  ``LightFieldOperator`` from them once and keeps it for its next tasks (a per-process cache keyed
  by the microscope's hash, the device and the dtype).  Nothing operator-sized travels per task.
* A task reads its frames itself from the input file (TIFF pages or OME-Zarr chunks: the stack is
  never loaded whole), deconvolves them, writes chunk t of the output (one chunk per time point:
  one writer per chunk) and then sets its "done" flag (its own chunk of the ``done`` array).
* Resumable: the output records the run (config hash, input, iterations, data model); the same
  command on an existing output skips the volumes whose flag is set and gives the same result.  A
  worker killed mid-task loses only its unfinished tasks, which the scheduler runs again elsewhere
  (``retries``); a task rewrites its whole chunk, so nothing is written twice or half.
* The client: an existing one (``client=``), a scheduler's address (``scheduler=``), or a
  ``LocalCluster`` of ``workers`` processes with one thread each (the FFTs and products of one
  task then use one core; several tasks run side by side), closed at the end.  Without any of the
  three the tasks run in this process, one after the other (the serial reference: a distributed
  run equals it exactly).  Several GPUs: a dask-cuda cluster gives each worker one GPU
  (``CUDA_VISIBLE_DEVICES``), and a task's ``device="auto"`` builds its operator there.

dask and distributed are an optional extra (``pip install 'lfmsim[distributed]'``): a single
machine reconstructs without them, and they pull in a scheduler, a dashboard and their own
dependencies that most notebook users never need.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .omezarr import DONE, create_image, is_zarr_path, open_image, read_stack_lazily

__all__ = ["reconstruct_series", "SeriesTask", "run_task", "RunMismatch"]

log = logging.getLogger(__name__)


class RunMismatch(ValueError):
    """The output exists and belongs to another run (config, input, iterations or data model)."""


@dataclass(frozen=True)
class SeriesTask:
    """What one task needs besides the PSF: where to read, what to do, where to write."""

    input_path: str
    output_path: str
    t0: int
    t1: int
    iterations: int
    raw: bool
    read_noise: float | None
    background: float | None
    device: str


_OPERATORS: dict = {}


def _operator(psf, device: str):
    """This process's operator of ``psf`` (built at the first task, kept for the next ones)."""
    from .scanned import make_operator

    key = (psf.microscope.hash, device)
    op = _OPERATORS.get(key)
    if op is None:
        _OPERATORS.clear()  # one microscope at a time per worker
        op = make_operator(psf, device, np.float32, progress=False)
        _OPERATORS[key] = op
    return op


_STACKS: dict = {}


def _stack(path: str):
    """This process's lazy view of the input (``read_stack_lazily`` reads a TIFF's page layout
    once per worker, not once per task: a 10,000-page stack would be scanned 10,000 times)."""
    st = os.stat(path)
    key = (path, st.st_mtime_ns, st.st_size)
    view = _STACKS.get(key)
    if view is None:
        _STACKS.clear()
        view = _STACKS[key] = read_stack_lazily(path)
    return view


def run_task(psf, task: SeriesTask) -> dict:
    """Deconvolve frames [t0, t1) of the input and write them (and their flags) to the output."""
    from .api import validate_image
    from .deconvolution import richardson_lucy

    start = time.perf_counter()
    m = psf.microscope
    frames = np.asarray(_stack(task.input_path)[task.t0: task.t1])
    y, _ = validate_image(m, frames, raw=task.raw, expect="stack", clip=not task.read_noise)
    op = _operator(psf, task.device)
    vol = richardson_lucy(y, op, task.iterations, progress=False, read_noise=task.read_noise,
                          background=task.background)
    group, arr, _, _ = open_image(task.output_path, mode="r+")
    arr[task.t0: task.t1] = np.asarray(vol, dtype=np.float32)
    group[DONE][task.t0: task.t1] = 1  # after the volume: a set flag means a whole chunk
    return {"t0": task.t0, "t1": task.t1, "seconds": time.perf_counter() - start, "pid": os.getpid()}


def _input_identity(path: Path, shape, dtype) -> dict:
    st = path.stat() if path.is_file() else None
    return {"path": str(path.resolve()), "shape": list(shape), "dtype": str(dtype),
            "size": st.st_size if st else None, "mtime_ns": st.st_mtime_ns if st else None}


def _run_id(record: dict) -> str:
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


def _prepare_output(out: Path, m, shape_t: int, record: dict, overwrite: bool):
    """Create the output, or open it to resume; returns the indices already done."""
    run = _run_id(record)
    if out.exists() and not overwrite:
        try:
            group, arr, _, _ = open_image(out, mode="r")
            prev = dict(group.attrs).get("lfmsim", {})
        except ValueError:
            raise RunMismatch(f"--out {str(out)!r} exists and is not an lfmsim volume series; pass overwrite to replace it") from None
        if prev.get("run_id") != run:
            raise RunMismatch(
                f"--out {str(out)!r} exists and belongs to another run (its config, input, iterations or data "
                f"model differ: run {prev.get('run_id')!r}, this one {run!r}); pass overwrite to replace it, or "
                "another output")
        done = np.nonzero(np.asarray(group[DONE][:]) == 1)[0]
        return set(int(i) for i in done)
    nz, vy, vx = m.volume_shape
    attrs = {"config": m.to_dict(), "run_id": run, "run": record, "content": "Richardson-Lucy volumes (t, z, y, x), "
             "float32, in the input's units (photons for raw frames)"}
    create_image(out, (shape_t, nz, vy, vx), axes="tzyx", scale=[1.0, m.volume.z_step_um, m.voxel_um, m.voxel_um],
                 chunks=(1, nz, vy, vx), attrs=attrs, name=m.name or "lfmsim", done_flags=True, overwrite=True)
    return set()


def _client(client, workers, scheduler, progress: bool = False):
    """(client, close?) from the three ways to name one; (None, False) for the serial path.  The
    dashboard's address is logged, and printed to stderr with ``progress``."""
    if client is not None:
        return client, False
    if scheduler is None and workers is None:
        return None, False
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ImportError("--workers / --scheduler need dask.distributed: pip install 'lfmsim[distributed]'") from None
    if scheduler is not None:
        c = Client(scheduler)
    else:
        if not log.isEnabledFor(logging.INFO):
            logging.getLogger("distributed").setLevel(logging.WARNING)  # the in-process scheduler's chatter
        cluster = LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=logging.WARNING)
        c = Client(cluster)
    log.info("dask dashboard: %s", c.dashboard_link)
    if progress:
        print(f"dask dashboard: {c.dashboard_link}", file=sys.stderr)
    return c, True


def _release(c) -> None:
    """Close a client ``_client`` opened, and its LocalCluster if it started one."""
    cluster = getattr(c, "cluster", None)
    c.close()
    if cluster is not None:
        cluster.close()


def reconstruct_series(config, stack, out, *, iterations: int = 8, workers: int | None = None,
                       scheduler: str | None = None, client=None, device: str = "auto", raw: bool | None = None,
                       read_noise: float | None = None, background: float | None = None,
                       frames_per_task: int = 1, overwrite: bool = False, progress: bool = True, psf=None,
                       retries: int = 3) -> dict:
    """Reconstruct a (t, Y, X) stack into an OME-Zarr volume series (module docstring).

    Parameters
    ----------
    config : Microscope, path or preset name
    stack : path
        A (t, Y, X) TIFF or OME-Zarr stack (read lazily, by the tasks).
    out : path ending in ``.zarr``
        The OME-Zarr output (t, z, y, x); an existing one of the same run is resumed.
    iterations, device, raw, read_noise, background
        As ``reconstruct`` (joint Richardson-Lucy; ``read_noise`` defaults to the camera's for raw frames).
    workers : int, optional
        Start a LocalCluster of this many worker processes.
    scheduler : str, optional
        Address of a running dask scheduler (``tcp://host:8786``).
    client : distributed.Client, optional
        Use this client (its cluster is not closed).
    frames_per_task : int
        Frames deconvolved together in one task (batched through the operator).
    overwrite : bool
        Replace an existing output that belongs to another run (or start an existing one afresh).
    retries : int
        Times the scheduler runs a task again after a failure (a lost worker is rescheduled anyway).

    Returns
    -------
    dict: frames, done_before (skipped), written, seconds, per-task seconds, workers used.
    """
    from .api import is_raw, load_microscope, raw_read_noise, validate_image

    m = load_microscope(config)
    if m.kind == "slfm":
        raise ValueError("reconstruct_series takes one camera frame per time point; a scanning LFM's scan stacks "
                         "go through reconstruct()")
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < 0:
        raise ValueError(f"iterations = {iterations!r} is invalid: expected an integer >= 0")
    if isinstance(frames_per_task, bool) or not isinstance(frames_per_task, (int, np.integer)) or frames_per_task < 1:
        raise ValueError(f"frames_per_task = {frames_per_task!r} is invalid: expected an integer >= 1")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1):
        raise ValueError(f"workers = {workers!r} is invalid: expected an integer >= 1")
    if sum(v is not None for v in (workers, scheduler, client)) > 1:
        raise ValueError("workers, scheduler and client are exclusive: name one cluster")
    out = Path(out)
    if not is_zarr_path(out):
        raise ValueError(f"out = {str(out)!r} is invalid: a volume series is written as OME-Zarr (a path ending in .zarr)")
    src = Path(stack)
    frames = read_stack_lazily(src)
    shape = tuple(frames.shape)
    if len(shape) != 3:
        raise ValueError(f"stack has shape {shape}; expected (t, Y, X)")
    first = np.asarray(frames[0:1])
    rawflag = is_raw(first, raw)
    if read_noise is None and rawflag:
        read_noise = raw_read_noise(m)
    validate_image(m, first, raw=rawflag, expect="stack", clip=not read_noise)  # shape and units, before any work
    record = {"config_hash": m.hash, "input": _input_identity(src, shape, frames.dtype), "iterations": int(iterations),
              "raw": rawflag, "read_noise": read_noise, "background": background, "frames_per_task": int(frames_per_task)}
    done = _prepare_output(out, m, shape[0], record, overwrite)
    todo = [(t0, min(shape[0], t0 + frames_per_task)) for t0 in range(0, shape[0], frames_per_task)]
    todo = [(a, b) for a, b in todo if not all(t in done for t in range(a, b))]
    log.info("reconstruct_series: %d frames, %d already written, %d tasks", shape[0], len(done), len(todo))
    t_start = time.perf_counter()
    if psf is None:
        from optics import compute_psf

        psf = compute_psf(m, progress=progress)
    elif psf.microscope.hash != m.hash:
        raise ValueError(f"psf belongs to another microscope (hash {psf.microscope.hash}, expected {m.hash})")
    from . import backend

    dev = backend.get_device(device)
    tasks = [SeriesTask(str(src.resolve()), str(out.resolve()), a, b, int(iterations), rawflag, read_noise,
                        background, dev) for a, b in todo]
    bar = None
    if progress and tasks:
        from tqdm.auto import tqdm

        bar = tqdm(total=sum(t.t1 - t.t0 for t in tasks), desc="volumes", unit="vol",
                   disable=None if sys.stderr.isatty() else True)
    results = []
    c, close = _client(client, workers, scheduler, progress)
    try:
        if c is None:
            for task in tasks:
                results.append(run_task(psf, task))
                if bar is not None:
                    bar.update(task.t1 - task.t0)
        else:
            import uuid

            from distributed import as_completed

            psf_f = c.scatter(psf, broadcast=True, hash=False)
            tag = f"lfmsim-{_run_id(record)[:8]}-{uuid.uuid4().hex[:6]}"  # unique per run: never a cached result
            futures = [c.submit(run_task, psf_f, task, key=f"{tag}-{task.t0}", pure=False, retries=retries)
                       for task in tasks]
            for fut in as_completed(futures):
                res = fut.result()
                results.append(res)
                if bar is not None:
                    bar.update(res["t1"] - res["t0"])
    finally:
        if bar is not None:
            bar.close()
        if close:
            _release(c)
    return {"frames": shape[0], "done_before": len(done), "written": sum(r["t1"] - r["t0"] for r in results),
            "seconds": time.perf_counter() - t_start, "task_seconds": [r["seconds"] for r in results],
            "workers": sorted(set(r["pid"] for r in results))}
