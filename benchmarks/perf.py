"""Speed and peak memory of the reconstruction core: ``python -m benchmarks perf [options]``.

Cases (from the forward-model and reconstruction-core issues):

* ``operator``: build the PSF kernels of the 20x/0.5W preset (15 voxels per lenslet, z = -50..50 µm
  step 2, 51 depths) from scratch: seconds, peak memory, size in memory and on disk (target < 60 s
  on 2 cores).
* ``P``: 20x/0.5 water, 100 µm f/20 lenslets, 15 px per lenslet (6.667 µm pixels), 25 x 25
  lenslets (375 x 375 px), z = -50..50 µm step 10, s = 5 and 15.
* ``W``: 40x/0.95 air, 150 µm f/20 lenslets, 15 px per lenslet, 45 x 30 lenslets (675 x 450 px),
  z = -24..0 µm step 3, s = 15.
* ``F``: the Fourier LFM preset flfm-10x-0.4-yangyanb, full frame 2048 x 2048 px, z = -100..100 µm
  step 4 (51 planes): one kernel per depth (~1650 px square), a 2-D convolution per depth; its PSF
  is built (``--quick``: 1024 x 1024 px, 13 planes).
* ``full-frame``: 2048 x 2048 px, 15 px per lenslet, s = 15, 51 planes (the 20x/0.5 water preset).
  On a CPU it runs a lateral crop and reports the FLOP/byte count of the full projection and the
  H100 time floor it implies; on a GPU it runs the full size.

Each case runs in a fresh subprocess so its peak memory is its own.  Per case: PSF build time
(``optics.compute_psf`` without cache, in a temporary ``LFMSIM_CACHE_DIR``), operator setup (kernel
FFTs), forward, adjoint and RL iteration times, peak memory, FLOPs and bytes of the direct and
Fourier routes, and the device.  A Markdown table goes to stdout and, with JSON, into ``--out``.
Times are the best of a few repetitions (the machine may be shared; the load average is recorded).
Reference numbers for pyolaf are those measured by the issue's author on the development machine.

``--peer pyolaf`` (optional extra ``peers``) also runs pyolaf on the same configuration, on the CPU
and in its own subprocess, after each P case (``benchmarks.peer_pyolaf``), and prints ours and
pyolaf's operator build time, seconds per RL iteration and peak memory side by side with ratios.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import multiprocessing as mp
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from optics.io import atomic_write_bytes

#: pyolaf on the development machine (issue text): seconds per RL iteration, operator build, memory.
PYOLAF_REFERENCE = {
    "P-s5": {"rl_s": 5.8, "build_s": 32.0},
    "P-s15": {"rl_s": 60.0, "build_s": 240.0},
    "W-s15": {"rl_s": 5.2, "mem_gb": 6.1},
}
#: Cases the ``--peer`` run covers (the issue's side-by-side claim is about P).
PEER_CASES = ("P",)
#: H100 SXM: HBM3 bandwidth and FP32 (non-tensor) peak, for the implied floor of a projection.
H100_BW = 3.35e12
#: The preset whose operator build the issue times (15 voxels per lenslet, 51 depths).
OPERATOR_PRESET = "lfm-20x-0.5w"
H100_FP32 = 67e12


def _microscope(case: str, s: int, crop_lenslets: int | None = None):
    from optics import presets

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # f-number mismatch warnings of the 40x/0.95 case
        if case == "P":
            return presets.get("lfm-20x-0.5w", mla={"pitch_um": 100.0, "focal_um": 2000.0},
                               camera={"pixel_um": 100.0 / 15, "shape": [375, 375]},
                               volume={"z_min_um": -50, "z_max_um": 50, "z_step_um": 10, "voxels_per_lenslet": s})
        if case == "W":
            return presets.get("lfm-40x-0.95", camera={"pixel_um": 10.0, "shape": [450, 675]},
                               volume={"z_min_um": -24, "z_max_um": 0, "z_step_um": 3, "voxels_per_lenslet": s})
        if case == "F":
            side = 2048 if crop_lenslets is None else crop_lenslets
            zs = {"z_min_um": -100, "z_max_um": 100, "z_step_um": 4 if side == 2048 else 16}
            return presets.get("flfm-10x-0.4-yangyanb", camera={"shape": [side, side]}, volume=zs)
        if case == "full-frame":
            side = 2048 if crop_lenslets is None else crop_lenslets * 15
            return presets.get("lfm-20x-0.5w", camera={"shape": [side, side]},
                               volume={"z_min_um": -50, "z_max_um": 50, "z_step_um": 2, "voxels_per_lenslet": s})
    raise ValueError(f"case = {case!r} is invalid: expected 'P', 'W', 'F' or 'full-frame'")


def _synthetic_psf(m, seed: int = 0):
    """Random positive kernels of the sizes ``kernel_side_pixels`` gives, with the PSF's mirror symmetry."""
    from optics.config import kernel_side_pixels
    from optics.psfdata import LightFieldPSF

    rng = np.random.default_rng(seed)
    s = m.voxels_per_lenslet
    kernels = []
    for z in m.z_um:
        side = kernel_side_pixels(m, float(z))
        k = rng.random((s, s, side, side), dtype=np.float32)
        k = k + k[::-1, :, ::-1, :]  # mirror-symmetric like the real kernels (optics.lfpsf)
        k = k + k[:, ::-1, :, ::-1]
        k = k + k.transpose(1, 0, 3, 2)  # and transpose-symmetric on a square lenslet grid
        k /= k[0, 0].sum()
        kernels.append(k)
    return LightFieldPSF(m, m.z_um, kernels, np.zeros((len(kernels), s, s)), {"method": "synthetic"})


def _timeit(fn, sync, reps: int) -> float:
    fn()
    sync()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return float(np.min(times))  # best of reps: the machine may be shared


def run_case(spec: dict) -> dict:
    """Run one case (in the current process) and return its measurements."""
    from reconstruction import backend
    from reconstruction.deconvolution import richardson_lucy
    from reconstruction.operator import LightFieldOperator

    case, s = spec["case"], spec["s"]
    m = _microscope(case, s, spec.get("crop_lenslets"))
    device = backend.get_device(spec["device"])
    sync = lambda: backend.synchronize(device)  # noqa: E731
    out = {"case": case, "s": s, "label": spec["label"], "device": device, "device_name": backend.device_name(device),
           "image_shape": list(m.image_shape), "volume_shape": list(m.volume_shape), "planes": len(m.z_um),
           "synthetic_kernels": bool(spec["synthetic"])}
    # imported before the clock starts: builds are timed, imports are not
    from optics.lfpsf import compute_psf

    t = time.perf_counter()
    if spec["synthetic"]:
        psf = _synthetic_psf(m)
        out["build_s"] = None
    else:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["LFMSIM_CACHE_DIR"] = tmp
            psf = compute_psf(m, cache=False, progress=False)
        out["build_s"] = time.perf_counter() - t
    out["kernel_radii"] = [int(r) for r in psf.radius_lenslets]
    out["psf_bytes"] = psf.nbytes
    backend.reset_peak_memory(device)
    t = time.perf_counter()
    op = LightFieldOperator(psf, device)
    sync()
    out["setup_s"] = time.perf_counter() - t
    out["operator_bytes"] = op.nbytes
    out["symmetry"] = op.symmetry
    out["storage"] = getattr(op, "storage", op.symmetry)
    out["storage_reason"] = getattr(op, "storage_reason", "")
    out["max_kernel_bytes"] = int(op.max_kernel_bytes)
    out["tiles"] = [op.ntiles_y, op.ntiles_x]
    out["fft_shape"] = [op.fft_y, op.fft_x]
    xp = op.xp
    rng = np.random.default_rng(1)
    x = backend.to_device(rng.random(op.volume_shape, dtype=np.float32), device)
    y = op.forward(x)
    reps = spec["reps"]
    out["forward_s"] = _timeit(lambda: op.forward(x), sync, reps)
    out["adjoint_s"] = _timeit(lambda: op.adjoint(y), sync, reps)
    tb = 4  # a time series of frames rides along as extra matmul columns: kernel spectra read once
    xb = xp.stack([x] * tb)
    out["forward_batch_per_frame_s"] = _timeit(lambda: op.forward(xb), sync, max(1, reps // 2)) / tb
    xb = None  # noqa: F841  (release the batch)
    stamps = []
    del psf  # the operator holds only its kernel spectra
    held = [backend.current_rss_bytes()]

    def cb(k, xk):
        sync()
        stamps.append(time.perf_counter())
        held.append(backend.current_rss_bytes())

    y = xp.maximum(y, 0)
    sync()
    t0 = time.perf_counter()
    richardson_lucy(y, op, spec["iterations"], progress=False, callback=cb)
    steps = np.diff([t0, *stamps])
    out["rl_first_s"] = float(steps[0])  # includes Hᵀ1
    out["rl_iter_s"] = float(np.min(steps[1:])) if len(steps) > 1 else float(steps[0])
    out["load_average"] = list(os.getloadavg())
    cost = op.cost().as_dict()
    out["cost"] = cost
    out["forward_gflops"] = cost["fourier_flops"] / out["forward_s"] / 1e9
    out["forward_gbps"] = cost["fourier_bytes"] / out["forward_s"] / 1e9
    out["host_rss_during_rl_bytes"] = max(held)
    if device == "gpu":
        out["peak_bytes"] = backend.peak_memory_bytes("gpu")
        out["host_peak_bytes"] = backend.peak_memory_bytes("cpu")
    else:
        out["peak_bytes"] = backend.peak_memory_bytes("cpu")
    if spec.get("own_peak"):  # --peer: this process's own peak (ru_maxrss starts at the parent's peak)
        from benchmarks.peer_pyolaf import own_peak_rss_bytes

        out["own_peak_bytes"] = own_peak_rss_bytes()
    return out


def _child(fn, arg, queue):
    try:
        queue.put(("ok", fn(arg)))
    except BaseException as e:  # report, don't hang the parent
        queue.put(("error", f"{type(e).__name__}: {e}"))


def _isolated(fn, arg):
    """Run ``fn(arg)`` in a fresh (spawned) process, so that its peak memory is its own."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(fn, arg, q))
    p.start()
    status, payload = q.get()
    p.join()
    return status, payload


def _operator_report(name: str) -> dict:
    from optics import presets
    from optics.lfpsf import build_report

    return build_report(presets.get(name))


def operator_build() -> dict:
    """Build the light-field operator of the 20x/0.5W preset (s = 15, z -50..50 step 2, 51 depths)
    from scratch in its own process, so that the peak memory is the build's own."""
    status, payload = _isolated(_operator_report, OPERATOR_PRESET)
    return payload if status == "ok" else {"error": payload}


def operator_markdown(r: dict) -> str:
    if "error" in r:
        return f"Operator build ({OPERATOR_PRESET}): error: {r['error']}"
    return "\n".join([
        f"Operator build, preset {OPERATOR_PRESET} (15 voxels per lenslet, z -50..50 um step 2, {r['depths']} depths), "
        "optics.compute_psf without cache:",
        "",
        "| seconds | peak RSS GB | kernels in memory GB | on disk GB | distinct kernels per depth | kernel sides px |",
        "|---|---|---|---|---|---|",
        f"| {r['seconds']:.3g} | {r['peak_rss_mb'] / 1e3:.3g} | {r['nbytes'] / 1e9:.3g} | {r['disk_bytes'] / 1e9:.3g} "
        f"| {r['distinct_kernels_per_depth']} | {min(r['kernel_sides'])}..{max(r['kernel_sides'])} |",
    ])


def _run_isolated(spec: dict) -> dict:
    status, payload = _isolated(run_case, spec)
    if status != "ok":
        return {"case": spec["case"], "s": spec["s"], "label": spec["label"], "error": payload}
    return payload


def full_frame_projection(s: int = 15, planes_um=(-50, 50, 2)) -> dict:
    """FLOPs/bytes of one full-frame (2048 x 2048 px) projection and its H100 floor (no arrays built)."""
    from optics.config import kernel_side_pixels
    from reconstruction.operator import projection_cost

    m = _microscope("full-frame", s)
    radii = [(kernel_side_pixels(m, float(z)) // 15 - 1) // 2 for z in m.z_um]
    ly, lx = m.n_lenslets
    rmax = max(radii)
    rows = {}
    routes = [("one FFT over the field", None, "none"), ("one FFT over the field, D4 symmetry", None, "d4"),
              ("tiles P=48, D4 symmetry", 48, "d4"), ("tiles P=32, D4 symmetry", 32, "d4")]
    for label, p, sym in routes:
        if p is None:
            c = projection_cost(len(radii), s, 15, (ly, lx), radii, symmetry=sym)
        else:
            t = p - 2 * rmax
            c = projection_cost(len(radii), s, 15, (ly, lx), radii, (math.ceil(ly / t), math.ceil(lx / t)), (p, p),
                                symmetry=sym)
        d = c.as_dict()
        d["h100_floor_s"] = max(d["fourier_bytes"] / H100_BW, d["fourier_flops"] / H100_FP32)
        d["h100_direct_floor_s"] = max(d["direct_bytes"] / H100_BW, d["direct_flops"] / H100_FP32)
        rows[label] = d
    return {"lenslets": [ly, lx], "radii": radii, "routes": rows}


def machine_peaks(device: str) -> dict:
    """What this device sustains at its simplest, measured here, to put a projection's rates in
    proportion: float32 matrix product (GFLOP/s, 2048^3, best of 3) and array copy (GB/s read +
    written, 256 MiB float32, best of 3)."""
    from reconstruction import backend

    xp = backend.xp_for(device)
    rng = np.random.default_rng(0)
    a = backend.to_device(rng.random((2048, 2048), dtype=np.float32), device)
    src = backend.to_device(np.ones(2**26, dtype=np.float32), device)
    dst = xp.empty_like(src)
    sync = lambda: backend.synchronize(device)  # noqa: E731
    gemm = _timeit(lambda: a @ a, sync, 3)
    copy = _timeit(lambda: xp.copyto(dst, src), sync, 3)
    return {"device": device, "sgemm_gflops": 2 * 2048**3 / gemm / 1e9, "copy_gbps": 2 * src.nbytes / copy / 1e9}


def _fmt(v, unit=""):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}{unit}"
    return f"{v}{unit}"


def markdown(results: list[dict], peaks: dict | None = None) -> str:
    head = ("| case | device | image | volume | tiles | PSF build s | setup s | forward s | fwd/frame (t=4) s | adjoint s | RL s/iter "
            "| peak GB | RSS in RL GB | operator GB | storage | Fourier GFLOP | Fourier GB | direct GFLOP | fwd GFLOP/s "
            "| fwd GB/s |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['label']} | error: {r['error']} |")
            continue
        c = r["cost"]
        storage = r.get("storage", r.get("symmetry", "-"))
        if r.get("storage_reason"):
            storage += f" ({r['storage_reason']})"
        lines.append(
            f"| {r['label']} | {r['device']} | {r['image_shape'][0]}x{r['image_shape'][1]} "
            f"| {'x'.join(map(str, r['volume_shape']))} | {r['tiles'][0]}x{r['tiles'][1]} "
            f"| {_fmt(r['build_s'])}{' (synthetic)' if r['synthetic_kernels'] else ''} | {_fmt(r['setup_s'])} "
            f"| {_fmt(r['forward_s'])} | {_fmt(r['forward_batch_per_frame_s'])} | {_fmt(r['adjoint_s'])} | {_fmt(r['rl_iter_s'])} "
            f"| {_fmt(r['peak_bytes'] / 1e9)} | {_fmt(r['host_rss_during_rl_bytes'] / 1e9)} | {_fmt(r['operator_bytes'] / 1e9)} "
            f"| {storage} | {_fmt(c['fourier_flops'] / 1e9)} "
            f"| {_fmt(c['fourier_bytes'] / 1e9)} | {_fmt(c['direct_flops'] / 1e9)} | {_rate(r['forward_gflops'], peaks, 'sgemm_gflops')} "
            f"| {_rate(r['forward_gbps'], peaks, 'copy_gbps')} |"
        )
    quoted = ", ".join(f"{k}: " + ", ".join(f"{n} {v:g}" for n, v in d.items()) for k, d in PYOLAF_REFERENCE.items())
    if peaks:
        lines += ["", f"Peaks measured on {peaks['device']} in this run: float32 matrix product "
                  f"{peaks['sgemm_gflops']:.3g} GFLOP/s, array copy {peaks['copy_gbps']:.3g} GB/s (read + written); "
                  "the rate columns give each forward projection's share of them in parentheses."]
    lines += ["", "Storage: the kernel spectra held (full, or mirror/d4 symmetry-reduced) and why (memory budget). "
              f"pyolaf, quoted from the issue (its author's machine, not measured here, never divided into a ratio): {quoted}. "
              "Measured side-by-side ratios: --peer pyolaf."]
    return "\n".join(lines)


def _rate(value, peaks, key) -> str:
    if value is None or not peaks:
        return _fmt(value)
    return f"{_fmt(value)} ({100 * value / peaks[key]:.0f}%)"


def _ratio(theirs, ours) -> str:
    if theirs is None or ours is None or not ours > 0:
        return "-"
    return f"{theirs / ours:.3g}x"


def peer_comparison(results: list[dict], peer_results: list[dict]) -> list[dict]:
    """Ours vs the peer per case: build (ours: PSF build + operator setup), RL s/iter, peak bytes."""
    ours = {r["label"]: r for r in results}
    rows = []
    for p in peer_results:
        r = ours.get(p["label"], {})
        row = {"label": p["label"], "peer": p.get("peer", "pyolaf")}
        if "error" in p or "error" in r or not r:
            row["error"] = p.get("error") or r.get("error") or "our case did not run"
            rows.append(row)
            continue
        build = None if r["build_s"] is None else r["build_s"] + r["setup_s"]
        peak = r.get("own_peak_bytes", r["peak_bytes"]) if r["device"] == "cpu" else r["peak_bytes"]
        row.update({
            "device": r["device"], "peer_device": p["device"],
            "image_shape": r["image_shape"], "volume_shape": r["volume_shape"], "peer_volume_shape": p["volume_shape"],
            "build_s": build, "peer_build_s": p["build_s"],
            "rl_iter_s": r["rl_iter_s"], "peer_rl_iter_s": p["rl_iter_s"], "peer_iterations": p["iterations"],
            "peak_bytes": peak, "peer_peak_bytes": p["peak_bytes"],
        })
        for key in ("build_s", "rl_iter_s", "peak_bytes"):
            ok = row[key] is not None and row[key] > 0 and row["peer_" + key] is not None
            row[key.rsplit("_", 1)[0] + "_ratio"] = row["peer_" + key] / row[key] if ok else None
        rows.append(row)
    return rows


def peer_markdown(rows: list[dict]) -> str:
    name = rows[0]["peer"] if rows else "pyolaf"
    head = (f"| case | image | volume (ours / {name}) | build s (ours) | build s ({name}) | {name}/ours "
            f"| RL s/iter (ours) | RL s/iter ({name}) | {name}/ours | peak GB (ours) | peak GB ({name}) | {name}/ours |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for w in rows:
        if "error" in w:
            lines.append(f"| {w['label']} | error: {w['error']} |")
            continue
        vol = "x".join(map(str, w["volume_shape"]))
        pvol = "x".join(map(str, w["peer_volume_shape"]))
        lines.append(
            f"| {w['label']} | {w['image_shape'][0]}x{w['image_shape'][1]} | {vol if vol == pvol else vol + ' / ' + pvol} "
            f"| {_fmt(w['build_s'])} | {_fmt(w['peer_build_s'])} | {_ratio(w['peer_build_s'], w['build_s'])} "
            f"| {_fmt(w['rl_iter_s'])} | {_fmt(w['peer_rl_iter_s'])} ({w['peer_iterations']} it) "
            f"| {_ratio(w['peer_rl_iter_s'], w['rl_iter_s'])} "
            f"| {_fmt(w['peak_bytes'] / 1e9)} | {_fmt(w['peer_peak_bytes'] / 1e9)} | {_ratio(w['peer_peak_bytes'], w['peak_bytes'])} |")
    devices = sorted({w.get("device") for w in rows if "error" not in w} - {None})
    lines.append("")
    lines.append(f"Build: ours = PSF build + operator setup (kernel FFTs), {name} = geometry + H/Ht patterns. "
                 f"RL s/iter: best iteration, forward + back projection + update ({name}: its projections as in its "
                 "example, no anti-aliasing filter). Peak: each run's own process, resident set high-water mark "
                 "(VmHWM; on a GPU, ours is the device pool). "
                 f"{name} ran on the CPU; ours on {', '.join(devices) or '-'}.")
    return "\n".join(lines)


def _run_peer(spec: dict, args) -> dict:
    from benchmarks.peer_pyolaf import case_config_from_microscope, run_pyolaf

    iters = args.peer_iterations or (1 if spec["s"] >= 15 else 2)
    print(f"running pyolaf on {spec['label']} ({iters} RL iteration{'s' if iters > 1 else ''}, CPU) ...", flush=True)
    cfg = case_config_from_microscope(_microscope(spec["case"], spec["s"], spec.get("crop_lenslets")))
    p = run_pyolaf(cfg, iters, timeout=args.peer_timeout)
    p["label"] = spec["label"]
    if "error" in p:
        print(f"  pyolaf error: {p['error']}")
    else:
        print(f"  pyolaf: build {p['build_s']:.3g} s, RL {p['rl_iter_s']:.3g} s/iter, peak {p['peak_bytes'] / 1e9:.3g} GB",
              flush=True)
    return p


def _parser():
    p = argparse.ArgumentParser(prog="python -m benchmarks perf", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes, a few minutes on 2 cores")
    p.add_argument("--out", metavar="DIR",
                   help="output folder (default a new results/perf-<time>); an existing non-empty folder is "
                   "refused unless --overwrite")
    p.add_argument("--overwrite", action="store_true",
                   help="write into an existing non-empty --out (replacing its perf.md and perf.json)")
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto",
                   help="auto (a GPU if cupy sees one, else the CPU), cpu or gpu (default auto)")
    p.add_argument("--case", nargs="+", choices=("operator", "P", "W", "F", "full-frame"), default=None,
                   help="default: all; 'operator' builds the 20x/0.5W preset's PSF kernels (issue target < 60 s)")
    p.add_argument("--s", type=int, nargs="+", help="voxels per lenslet (default: P 5 15, W 15, full-frame 15)")
    p.add_argument("--synthetic-kernels", action="store_true",
                   help="random kernels of the right sizes instead of optics.compute_psf (always for full-frame)")
    p.add_argument("--iterations", type=int, default=None, help="RL iterations timed (default 4, quick 3)")
    p.add_argument("--crop-lenslets", type=int, default=None, help="full-frame crop on the CPU (default 12, quick 6)")
    p.add_argument("--peer", choices=("pyolaf",), help="run a peer code side by side (P cases, CPU)")
    p.add_argument("--peer-iterations", type=int, default=None,
                   help="RL iterations the peer times (default 2, 1 for s >= 15)")
    p.add_argument("--peer-timeout", type=float, default=None, help="seconds before a peer run is abandoned")
    p.add_argument("--in-process", action="store_true", help="do not isolate cases in subprocesses")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars (perf shows none; accepted like the other commands)")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress messages (INFO)")
    return p


def _out_dir(out: str | None, overwrite: bool) -> Path:
    """The --out folder: a new timestamped one by default; an existing one must be an empty folder
    unless ``overwrite``.  Checked before any work; created here."""
    if out is None:
        base = Path("results") / f"perf-{_dt.datetime.now():%Y%m%d-%H%M%S}"
        p, k = base, 1
        while p.exists():
            k += 1
            p = base.with_name(f"{base.name}-{k}")
    else:
        p = Path(out)
        if p.exists() and not p.is_dir():
            raise FileExistsError(f"--out = {out!r} is invalid: it is an existing file; expected a folder")
        if p.is_dir() and any(p.iterdir()) and not overwrite:
            raise FileExistsError(f"--out = {out!r} exists and is not empty; choose a new folder or pass "
                                  "--overwrite to replace its perf.md and perf.json")
    p.mkdir(parents=True, exist_ok=True)
    return p


def _specs(args, device: str) -> list[dict]:
    cases = [c for c in (args.case or ["P", "W", "F", "full-frame"]) if c != "operator"]
    iters = args.iterations or (3 if args.quick else 4)
    reps = 2 if args.quick else 5
    specs = []
    for case in cases:
        if case == "F":
            svals = [1]  # shift-invariant: one voxel per pixel
        elif args.s:
            svals = args.s
        elif case == "P":
            svals = [5] if args.quick else [5, 15]
        else:
            svals = [5] if (args.quick and case == "W") else [15]
        for s in svals:
            spec = {"case": case, "s": s, "device": device, "iterations": iters, "reps": reps,
                    "synthetic": bool(args.synthetic_kernels or case == "full-frame"), "label": f"{case}-s{s}"}
            if case == "full-frame" and device == "cpu":
                crop = args.crop_lenslets or (6 if args.quick else 12)
                spec["crop_lenslets"] = crop
                spec["label"] += f" (crop {crop}x{crop} lenslets)"
            if case == "F":
                spec["label"] = "F (flfm-10x-0.4)"
                if args.quick:
                    spec["crop_lenslets"] = 1024
                    spec["label"] += " 1024 px"
            if case == "full-frame" and args.quick and device == "cpu":
                spec["iterations"] = 2
            specs.append(spec)
    return specs


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    import logging

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from reconstruction import backend

    try:
        device = backend.get_device(args.device)
        out = _out_dir(args.out, args.overwrite)
    except (backend.DeviceError, FileExistsError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"device: {device} ({backend.device_name(device)}); results -> {out}")
    peer = None
    if args.peer == "pyolaf":
        from benchmarks.peer_pyolaf import pyolaf_available

        if pyolaf_available():  # not imported here: the parent's memory stays ours (--in-process)
            peer = "pyolaf"
            print("pyolaf is installed: it runs on the same configuration after each "
                  f"{'/'.join(PEER_CASES)} case (CPU, own subprocess), side by side below")
        else:
            print("pyolaf is not installed (optional extra: pip install 'lfmsim[peers]'); comparing with the "
                  "pyolaf numbers quoted in the issue instead")
    op = None
    if args.case is None or "operator" in args.case:
        print(f"building the operator of {OPERATOR_PRESET} ...", flush=True)
        op = operator_build()
    results = []
    peer_results = []
    for spec in _specs(args, device):
        if peer and spec["case"] in PEER_CASES:
            spec["own_peak"] = True
        print(f"running {spec['label']} ...", flush=True)
        r = run_case(spec) if args.in_process else _run_isolated(spec)
        results.append(r)
        if "error" in r:
            print(f"  error: {r['error']}")
        else:
            print(f"  forward {r['forward_s']:.3g} s, adjoint {r['adjoint_s']:.3g} s, RL {r['rl_iter_s']:.3g} s/iter, "
                  f"peak {r['peak_bytes'] / 1e9:.3g} GB", flush=True)
        if peer and spec["case"] in PEER_CASES:
            peer_results.append(_run_peer(spec, args))
    if peer and not peer_results:
        print(f"note: --peer {peer} runs on the {'/'.join(PEER_CASES)} cases only; none was selected")
    peaks = machine_peaks(device)
    table = markdown(results, peaks)
    ff = full_frame_projection() if (args.case is None or "full-frame" in args.case) else None
    text = [table, ""]
    if op is not None:
        text += [operator_markdown(op), ""]
    comparison = peer_comparison(results, peer_results) if peer_results else None
    if comparison:
        text += [f"Side by side with {peer} (same configuration, same run):", "", peer_markdown(comparison), ""]
    if ff:
        text.append(f"Full frame 2048x2048 px ({ff['lenslets'][0]}x{ff['lenslets'][1]} lenslets), s=15, 51 planes, "
                    f"kernel radii up to {max(ff['radii'])} lenslets; one projection:")
        text.append("")
        text.append("| route | Fourier GFLOP | Fourier GB read | kernel spectra GB | H100 floor s | direct GFLOP | H100 direct floor s |")
        text.append("|---|---|---|---|---|---|---|")
        for label, d in ff["routes"].items():
            text.append(f"| {label} | {d['fourier_flops'] / 1e9:.4g} | {d['fourier_bytes'] / 1e9:.4g} "
                        f"| {d['kernel_spectra_bytes'] / 1e9:.4g} | {d['h100_floor_s']:.3g} "
                        f"| {d['direct_flops'] / 1e9:.4g} | {d['h100_direct_floor_s']:.3g} |")
        text.append(f"(H100 SXM: {H100_BW / 1e12:.2f} TB/s, {H100_FP32 / 1e12:.0f} TFLOP/s FP32; an RL iteration is "
                    "one forward + one adjoint.)")
    report = "\n".join(text)
    print()
    print(report)
    atomic_write_bytes(out / "perf.md", (report + "\n").encode(), overwrite=True)
    doc = {"results": results, "operator_build": op, "full_frame": ff, "pyolaf_reference": PYOLAF_REFERENCE,
           "machine_peaks": peaks}
    if peer:
        doc["peer"] = {"name": peer, "results": peer_results, "comparison": comparison}
    atomic_write_bytes(out / "perf.json", json.dumps(doc, indent=1, default=float).encode(), overwrite=True)
    return 0 if all("error" not in r for r in results + peer_results + ([op] if op else [])) else 1


if __name__ == "__main__":
    sys.exit(main())
