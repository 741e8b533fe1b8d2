"""pyolaf (the Python port of oLaF, Stefanoiu et al. 2019) on the same optics as a perf case.

``run_pyolaf(case_config, iterations)`` builds pyolaf's light-field operator (its forward patterns
``H`` and backward patterns ``Ht``) for the same objective, lenslet array, pixel, lenslet count,
depths and voxels per lenslet (pyolaf's ``superResFactor``), and times its Richardson-Lucy
iteration (``LFM_forwardProject`` + ``LFM_backwardProject`` + the multiplicative update, as in
pyolaf's ``examples/deconvolve_image.py``) on a frame of the case's size.  pyolaf is called, not
copied: this module only writes its camera file and drives its public functions.

It runs in a child process (this file run as a script, importing nothing of lfmsim), so that its
peak memory is its own, and on the CPU only: ``cupy`` is hidden from the child, pyolaf then falls
back to numpy/scipy.  The peak is the child's ``VmHWM`` (``own_peak_rss_bytes``): on Linux a
child's ``ru_maxrss`` starts at its parent's high-water mark (the kernel carries it across
``exec``), so it is kept only as ``maxrss_bytes``, for reference.

The lenslet grid comes from pyolaf's own simulation path (an empty white image and the image
size: a perfect square grid aligned to the pixels, lenslet spacing = pitch / pixel), so no white
(calibration) image is needed and no image resampling takes place.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Pinned version this driver was written against (the ``peers`` extra).
PYOLAF_VERSION = "0.2.1"


def pyolaf_available() -> bool:
    """Whether ``pyolaf`` can be imported (without importing it)."""
    return importlib.util.find_spec("pyolaf") is not None


def case_config_from_microscope(m) -> dict:
    """The plain-data description of an lfmsim ``Microscope`` that ``run_pyolaf`` needs."""
    import numpy as np

    z = np.asarray(m.z_um, dtype=float)
    step = float(z[1] - z[0]) if z.size > 1 else float(m.volume.z_step_um)
    if z.size > 1 and not np.allclose(np.diff(z), step):
        raise ValueError(f"z planes = {z.tolist()} are invalid for pyolaf: expected a uniform step")
    if m.mla is None:
        raise ValueError("microscope has no lenslet array: pyolaf models a light-field microscope")
    if m.mla.grid != "square":
        raise ValueError(f"mla.grid = {m.mla.grid!r} is invalid for pyolaf 0.2.1: expected 'square'")
    return {
        "magnification": float(m.objective.magnification),
        "na": float(m.objective.na),
        "immersion_index": float(m.objective.immersion_index),
        "tube_lens_focal_um": float(m.objective.tube_lens_focal_um),
        "mla_pitch_um": float(m.mla.pitch_um),
        "mla_focal_um": float(m.mla.focal_um),
        "mla_aperture": str(m.mla.aperture),
        "pixel_um": float(m.camera.pixel_um),
        "wavelength_um": float(m.wavelength_um),
        "image_shape": [int(v) for v in m.image_shape],
        "z_min_um": float(z[0]),
        "z_max_um": float(z[-1]),
        "z_step_um": step,
        "voxels_per_lenslet": int(m.voxels_per_lenslet),
    }


def run_pyolaf(case_config: dict, iterations: int = 2, *, antialias: bool = False, timeout: float | None = None,
               seed: int = 0) -> dict:
    """Build pyolaf's operator for ``case_config`` and time its RL iterations, in a child process.

    Returns a dict: ``build_s`` (geometry + ``H``/``Ht`` patterns), ``rl_setup_s`` (the forward of
    ones and its back projection, RL's normaliser), ``forward_s``, ``backward_s`` and ``rl_iter_s``
    (best of ``iterations``; every timed iteration runs a forward and a backward projection),
    ``peak_bytes`` (the child's own peak resident set), sizes and pyolaf's own parameters.  On failure the
    dict holds ``error`` (and the tail of the child's output) instead.
    """
    if iterations < 1:
        raise ValueError(f"iterations = {iterations} is invalid: expected >= 1")
    if not pyolaf_available():
        return {"peer": "pyolaf", "error": "pyolaf is not installed (pip install 'lfmsim[peers]')"}
    with tempfile.TemporaryDirectory(prefix="peer-pyolaf-") as tmp:
        cfg = Path(tmp) / "case.json"
        out = Path(tmp) / "result.json"
        cfg.write_text(json.dumps({"case": case_config, "iterations": int(iterations), "antialias": bool(antialias),
                                   "seed": int(seed), "workdir": tmp}))
        env = dict(os.environ, TQDM_DISABLE="1", MPLBACKEND="Agg")
        t = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), str(cfg), str(out)], env=env,
                                  capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return {"peer": "pyolaf", "error": f"timed out after {timeout} s"}
        wall = time.perf_counter() - t
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr or proc.stdout or "")[-2000:]
            last = tail.strip().splitlines()[-1] if tail.strip() else ""
            return {"peer": "pyolaf", "error": f"child exited with {proc.returncode}: {last}", "output_tail": tail}
        result = json.loads(out.read_text())
    result["child_wall_s"] = wall
    return result


# ----------------------------------------------------------------------------- child process
def _camera_yaml(c: dict) -> str:
    """pyolaf's camera/MLA description (oLaF's config.yaml keys; lengths in µm)."""
    return "\n".join([
        "gridType: reg",  # square lenslet grid
        "focus: single",  # one lenslet focal length
        "plenoptic: 1",  # original LFM: MLA at the native image plane, sensor at its focal plane
        f"uLensMask: {1 if c['mla_aperture'] == 'square' else 0}",  # 1: square lenslets filling the pitch
        f"M: {c['magnification']!r}",
        f"NA: {c['na']!r}",
        f"ftl: {c['tube_lens_focal_um']!r}",
        f"fm: {c['mla_focal_um']!r}",
        f"lensPitch: {c['mla_pitch_um']!r}",
        f"pixelPitch: {c['pixel_um']!r}",
        f"WaveLength: {c['wavelength_um']!r}",
        f"n: {c['immersion_index']!r}",
        "tube2mla: 0",  # 0: = ftl (plenoptic 1)
        "mla2sensor: 0",  # 0: = fm (plenoptic 1)
        "",
    ])


def _sparse_bytes(patterns) -> int:
    total = 0
    for mat in patterns.ravel():
        if mat is not None and hasattr(mat, "data"):
            total += mat.data.nbytes + mat.indices.nbytes + mat.indptr.nbytes
    return int(total)


def _maxrss_bytes() -> int:
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)


def own_peak_rss_bytes() -> int:
    """This process's own peak resident set: ``VmHWM`` on Linux, else ``ru_maxrss``.

    Unlike ``ru_maxrss``, ``VmHWM`` belongs to the process's current address space, so a child
    started by a large parent (fork/vfork + exec) does not report the parent's peak.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return _maxrss_bytes()


def _num(v: float):
    """An integral float as int (pyolaf builds its depth list with ``np.arange``)."""
    return int(v) if float(v).is_integer() else float(v)


def _child(cfg_path: str, out_path: str) -> None:
    spec = json.loads(Path(cfg_path).read_text())
    c, iterations = spec["case"], spec["iterations"]
    sys.modules["cupy"] = None  # CPU only: pyolaf falls back to numpy/scipy when cupy does not import
    import contextlib
    import io

    import numpy as np

    baseline = own_peak_rss_bytes()
    import pyolaf
    from pyolaf.geometry import LFM_computeGeometryParameters, LFM_setCameraParams
    from pyolaf.lf import LFM_computeLFMatrixOperators
    from pyolaf.project import LFM_backwardProject, LFM_forwardProject

    log = io.StringIO()  # pyolaf prints its progress; keep it off our stdout
    res: dict = {"peer": "pyolaf", "pyolaf_version": getattr(pyolaf, "__version__", "?"),
                 "iterations": iterations, "antialias": bool(spec["antialias"]), "device": "cpu"}
    cam_file = Path(spec["workdir"]) / "camera.yaml"
    cam_file.write_text(_camera_yaml(c))
    spacing = c["mla_pitch_um"] / c["pixel_um"]
    if abs(spacing - round(spacing)) > 1e-6:
        raise ValueError(f"pitch / pixel = {spacing} is invalid here: expected a whole number of pixels per lenslet")
    spacing = int(round(spacing))
    img_size = np.array(c["image_shape"], dtype=int)
    img_size = img_size + (1 - img_size % 2)  # pyolaf works on odd image sizes (as its example does)
    depth_range = [_num(c["z_min_um"]), _num(c["z_max_um"])]
    depth_step = _num(c["z_step_um"])
    s = int(c["voxels_per_lenslet"])

    with contextlib.redirect_stdout(log):
        t0 = time.perf_counter()
        camera = LFM_setCameraParams(str(cam_file), spacing)
        centers, resolution, _grid, _new_grid = LFM_computeGeometryParameters(
            camera, np.array([]), depth_range, depth_step, s, False, img_size)
        t1 = time.perf_counter()
        H, Ht = LFM_computeLFMatrixOperators(camera, resolution, centers)
        t2 = time.perf_counter()
    res["geometry_s"] = t1 - t0
    res["operator_s"] = t2 - t1
    res["build_s"] = t2 - t0
    res["peak_after_build_bytes"] = own_peak_rss_bytes()
    res["operator_bytes"] = _sparse_bytes(H) + _sparse_bytes(Ht)
    res["patterns"] = {"H": list(H.shape), "Ht": list(Ht.shape), "kernel_shape": list(H[0, 0, 0].shape)}
    res["tex_nnum"] = [int(v) for v in resolution["TexNnum"]]
    res["nnum"] = [int(v) for v in resolution["Nnum"]]
    res["depths_um"] = [float(v) for v in resolution["depths"]]
    res["vox_um"] = [float(v) for v in resolution["texRes"]]

    tex_size = np.ceil(img_size * resolution["texScaleFactor"]).astype("int32")
    tex_size = tex_size + (1 - tex_size % 2)
    volume_size = np.append(tex_size, len(resolution["depths"])).astype("int32")
    res["image_shape"] = [int(v) for v in img_size]
    res["volume_shape"] = [int(volume_size[2]), int(volume_size[0]), int(volume_size[1])]  # (z, y, x) as lfmsim
    res["planes"] = int(volume_size[2])
    crange = camera["range"]

    rng = np.random.default_rng(spec["seed"])
    frame = rng.random(tuple(img_size), dtype=np.float32) + np.float32(0.5)
    kernel_fft = None
    if spec["antialias"]:
        from numpy.fft import fft2, fftshift, ifft2
        from pyolaf.aliasing import LFM_computeDepthAdaptiveWidth, lanczosfft

        kernel_fft = lanczosfft(volume_size, LFM_computeDepthAdaptiveWidth(camera, resolution), 4)

    with contextlib.redirect_stdout(log), np.errstate(divide="ignore", invalid="ignore"):
        t = time.perf_counter()
        volume = np.ones(volume_size, dtype=np.float32)
        ones_fwd = LFM_forwardProject(H, volume, centers, resolution, img_size, crange, step=8)
        ones_back = LFM_backwardProject(Ht, ones_fwd, centers, resolution, tex_size, crange, step=8)
        res["rl_setup_s"] = time.perf_counter() - t
        fwd, bwd, steps = [], [], []
        for _ in range(iterations):
            ta = time.perf_counter()
            guess = LFM_forwardProject(H, volume, centers, resolution, img_size, crange, step=10)
            tb = time.perf_counter()
            err = frame / guess * ones_fwd
            err[~np.isfinite(err)] = 0
            back = LFM_backwardProject(Ht, err, centers, resolution, tex_size, crange, step=10)
            tc = time.perf_counter()
            back = back / ones_back
            back[~np.isfinite(back)] = 0
            volume = volume * back
            if kernel_fft is not None:
                for j in range(volume.shape[2]):
                    volume[:, :, j] = np.abs(fftshift(ifft2(kernel_fft[:, :, j] * fft2(volume[:, :, j]))))
            volume[~np.isfinite(volume)] = 0
            td = time.perf_counter()
            fwd.append(tb - ta)
            bwd.append(tc - tb)
            steps.append(td - ta)
    res["forward_s"] = float(min(fwd))
    res["backward_s"] = float(min(bwd))
    res["rl_iter_s"] = float(min(steps))  # best of the iterations, as perf.py does (shared machine)
    res["rl_iter_all_s"] = [float(v) for v in steps]
    res["volume_finite"] = bool(np.isfinite(volume).all())
    res["volume_mean"] = float(np.mean(volume))
    res["baseline_rss_bytes"] = baseline
    res["peak_bytes"] = own_peak_rss_bytes()
    res["maxrss_bytes"] = _maxrss_bytes()  # includes the parent's high-water mark (see the module doc)
    res["load_average"] = list(os.getloadavg())
    Path(out_path).write_text(json.dumps(res))


if __name__ == "__main__":
    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        del sys.path[0]  # run as a script: keep benchmarks/*.py from shadowing top-level modules
    _child(sys.argv[1], sys.argv[2])
