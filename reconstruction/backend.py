"""Array backend: the one place that knows about CuPy.

Every numerical function in :mod:`reconstruction` infers its array module from its inputs
(``xp = xp_of(array)``, in the style of scipy's ``array_namespace``) and only calls ``xp.*``
after that, so one algorithm body serves NumPy on the CPU and CuPy on a CUDA GPU.  This module
is the only one that imports cupy, always lazily inside a function, so ``import reconstruction``
works (and stays fast) on machines without it.  Device selection follows DESIGN.md: ``"auto"``
uses a GPU when ``cupy.cuda.is_available()``, ``"gpu"`` without one is an error (never a silent
fallback), and the choice is logged.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from types import ModuleType

import numpy as np

from optics.threads import cpu_threads

__all__ = [
    "DeviceError",
    "get_device",
    "gpu_available",
    "xp_of",
    "xp_for",
    "is_gpu_array",
    "to_device",
    "to_host",
    "fft_module",
    "synchronize",
    "peak_memory_bytes",
    "reset_peak_memory",
    "current_rss_bytes",
    "matmul",
    "channel_sum",
    "channel_outer",
    "blas_single_thread",
    "device_name",
    "DEVICES",
]

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "gpu")


class DeviceError(RuntimeError):
    """The requested compute device is not available."""


def _cupy() -> ModuleType | None:
    """Import cupy lazily; None when it is not installed or cannot load."""
    try:
        import cupy  # noqa: PLC0415  (the only cupy import in lfmsim)
    except Exception:  # ImportError, or a CUDA library that fails to load
        return None
    return cupy


@functools.lru_cache(maxsize=1)
def gpu_available() -> bool:
    """True when cupy is importable and ``cupy.cuda.is_available()`` (a usable CUDA device)."""
    cp = _cupy()
    if cp is None:
        return False
    try:
        return bool(cp.cuda.is_available())
    except Exception:
        return False


def get_device(device: str = "auto") -> str:
    """Resolve ``device`` ("auto" | "cpu" | "gpu") to "cpu" or "gpu" and log the choice.

    Raises
    ------
    ValueError
        ``device`` is not one of the accepted names.
    DeviceError
        ``device="gpu"`` but cupy or a CUDA GPU is not available.
    """
    if device not in DEVICES:
        raise ValueError(f"device = {device!r} is invalid: expected one of 'auto', 'cpu', 'gpu'")
    if device == "cpu":
        chosen = "cpu"
    elif device == "gpu":
        if not gpu_available():
            why = "cupy is not installed" if _cupy() is None else "cupy finds no usable CUDA device"
            raise DeviceError(
                f"device = 'gpu' was requested but {why}; install the 'gpu' extra "
                "(cupy-cuda12x) on a machine with an NVIDIA GPU, or use device='cpu' / 'auto'"
            )
        chosen = "gpu"
    else:
        chosen = "gpu" if gpu_available() else "cpu"
    log.info("reconstruction device: %s (%s; requested %r)", chosen, device_name(chosen), device)
    return chosen


def device_name(device: str) -> str:
    """Human-readable name of the CPU or of the current CUDA device."""
    if device == "gpu":
        cp = _cupy()
        try:
            props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
            name = props["name"]
            return name.decode() if isinstance(name, bytes) else str(name)
        except Exception:
            return "CUDA GPU"
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu} ({os.cpu_count()} logical cores)"


def is_gpu_array(a) -> bool:
    """True for a cupy array (checked without importing cupy)."""
    return type(a).__module__.split(".")[0] == "cupy"


def xp_of(*arrays) -> ModuleType:
    """Array module (numpy or cupy) of the inputs; mixing host and device arrays is an error."""
    kinds = {is_gpu_array(a) for a in arrays if a is not None and not np.isscalar(a)}
    if len(kinds) > 1:
        raise TypeError(
            "inputs mix NumPy (host) and CuPy (device) arrays; move them to one device first "
            "(reconstruction.backend.to_device / to_host)"
        )
    if kinds == {True}:
        return _cupy()
    return np


def xp_for(device: str) -> ModuleType:
    """Array module of a resolved device ("cpu" -> numpy, "gpu" -> cupy)."""
    if device == "gpu":
        cp = _cupy()
        if cp is None:
            raise DeviceError("device 'gpu' needs cupy, which is not installed")
        return cp
    if device != "cpu":
        raise ValueError(f"device = {device!r} is invalid: expected 'cpu' or 'gpu' (resolve 'auto' with get_device)")
    return np


def to_device(a, device: str, dtype=None):
    """Copy (if needed) ``a`` to ``device`` ("cpu" or "gpu"), optionally casting to ``dtype``."""
    xp = xp_for(device)
    if device == "cpu" and is_gpu_array(a):
        a = a.get()
    return xp.asarray(a, dtype=dtype)


def to_host(a) -> np.ndarray:
    """A NumPy array with the values of ``a`` (explicit device -> host copy for cupy arrays)."""
    if is_gpu_array(a):
        return a.get()
    return np.asarray(a)


def _rfft2_pad(f, a, shape, **kw):
    """rfft2 of ``a`` (..., h, w) zero-padded at the end to ``shape`` (P_y, P_x); pruned when
    P_y >= 2 h: the transform along x runs on the h data rows only (the others are zero), then along y."""
    py, px = shape
    h, w = a.shape[-2:]
    if 2 * h > py:  # measured (pocketfft, 2 cores): pruning pays only when most rows are padding
        pad = (_cupy() if is_gpu_array(a) else np).zeros((*a.shape[:-2], py, px), dtype=a.dtype)
        pad[..., :h, :w] = a
        return f.rfft2(pad, **kw)
    return f.fft(f.rfft(a, n=px, axis=-1, **kw), n=py, axis=-2, **kw)


def _irfft2_crop(f, a, shape, keep, **kw):
    """``irfft2(a, s=shape)[..., :h, :w]`` for ``keep`` = (h, w), pruned: after the inverse along y
    only the h kept rows are transformed along x."""
    (py, px), (h, w) = shape, keep
    g = f.ifft(a, n=py, axis=-2, **kw)[..., :h, :]
    return f.irfft(g, n=px, axis=-1, **kw)[..., :w]


class _ScipyFFT:
    """scipy.fft on ``optics.threads.cpu_threads()`` threads for the functions the operator uses."""

    def __init__(self):
        import scipy.fft as sfft

        self._f = sfft

    def rfft2(self, a, s=None, axes=(-2, -1)):
        return self._f.rfft2(a, s=s, axes=axes, workers=cpu_threads())

    def irfft2(self, a, s=None, axes=(-2, -1)):
        return self._f.irfft2(a, s=s, axes=axes, workers=cpu_threads())

    def rfft2_pad(self, a, shape):
        return _rfft2_pad(self._f, a, shape, workers=cpu_threads())

    def irfft2_crop(self, a, shape, keep):
        return _irfft2_crop(self._f, a, shape, keep, workers=cpu_threads())

    def next_fast_len(self, n: int, real: bool = True) -> int:
        return self._f.next_fast_len(n, real=real)


class _CupyFFT:
    """cupyx.scipy.fft (cuFFT; plans cached by cupy's plan cache)."""

    def __init__(self):
        import scipy.fft as sfft
        from cupyx.scipy import fft as cfft  # noqa: PLC0415

        self._f = cfft
        self._s = sfft

    def rfft2(self, a, s=None, axes=(-2, -1)):
        return self._f.rfft2(a, s=s, axes=axes)

    def irfft2(self, a, s=None, axes=(-2, -1)):
        return self._f.irfft2(a, s=s, axes=axes)

    def rfft2_pad(self, a, shape):
        return _rfft2_pad(self._f, a, shape)

    def irfft2_crop(self, a, shape, keep):
        return _irfft2_crop(self._f, a, shape, keep)

    def next_fast_len(self, n: int, real: bool = True) -> int:
        # cuFFT is fastest on 2^a 3^b 5^c 7^d sizes; scipy's 5-smooth lengths are a subset.
        return self._s.next_fast_len(n, real=True)


@functools.lru_cache(maxsize=2)
def fft_module(device: str):
    """FFT functions (``rfft2``, ``irfft2``, ``next_fast_len``) for a resolved device."""
    return _CupyFFT() if device == "gpu" else _ScipyFFT()


def synchronize(device: str) -> None:
    """Wait for queued GPU work (no-op on the CPU); call before reading a timer."""
    if device == "gpu":
        _cupy().cuda.Device().synchronize()


def reset_peak_memory(device: str) -> None:
    """Release cupy's cached blocks so the next ``peak_memory_bytes`` reflects new work (GPU only)."""
    if device == "gpu":
        cp = _cupy()
        cp.get_default_memory_pool().free_all_blocks()


def peak_memory_bytes(device: str) -> int:
    """Memory held: the process's peak resident set (CPU), or cupy's pool total (GPU).

    On the CPU this is ``ru_maxrss`` (the high-water mark of the whole process since start);
    on the GPU it is the bytes the default memory pool holds now (its high-water mark, since
    the pool only grows until ``free_all_blocks``).
    """
    if device == "gpu":
        return int(_cupy().get_default_memory_pool().total_bytes())
    try:
        import resource  # Unix only
    except ImportError:
        return 0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)


def current_rss_bytes() -> int:
    """Current resident set size of this process (bytes; Linux /proc, else the peak)."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return peak_memory_bytes("cpu")


# ----------------------------------------------------------------------------- batched matmul
@functools.lru_cache(maxsize=1)
def _blas_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


class blas_single_thread:
    """Context manager: the BLAS library (OpenBLAS, MKL...) runs single-threaded inside.

    The operator's per-frequency matrix products are many small GEMMs; OpenBLAS threads each
    one and, on a busy machine, its spinning threads can slow a projection tenfold.  We thread
    over frequencies ourselves instead (``matmul``).  Uses threadpoolctl, which finds the BLAS
    libraries loaded in the process on every platform; the limit is restored on exit.
    """

    def __enter__(self):
        self._ctx = _blas_controller().limit(limits=1, user_api="blas")
        self._ctx.__enter__()
        return self

    def __exit__(self, *exc):
        self._ctx.__exit__(*exc)
        return False


@functools.lru_cache(maxsize=1)
def _pool():
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=cpu_threads(), thread_name_prefix="lfmsim-matmul")


def matmul(a, b):
    """Batched ``a @ b`` over the leading axis: cupy's matmul on the GPU; on the CPU the batch
    is split across a thread pool with single-threaded BLAS inside (same result as np.matmul)."""
    if is_gpu_array(a):
        return _cupy().matmul(a, b)
    n = a.shape[0]
    workers = min(cpu_threads(), n)
    if workers <= 1:
        return np.matmul(a, b)
    out = np.empty((n, a.shape[1], b.shape[2]), dtype=np.result_type(a, b))
    edges = np.linspace(0, n, workers + 1).astype(int)
    with blas_single_thread():
        jobs = [_pool().submit(np.matmul, a[i:j], b[i:j], out=out[i:j]) for i, j in zip(edges[:-1], edges[1:])]
        for job in jobs:
            job.result()
    return out


def _in_parts(n: int, work) -> None:
    """``work(i, j)`` over [0, n) split into one part per thread (parts of >= 64), on the thread pool."""
    workers = min(cpu_threads(), max(1, n // 64))
    if workers == 1:
        work(0, n)
        return
    edges = np.linspace(0, n, workers + 1).astype(int)
    jobs = [_pool().submit(work, int(i), int(j)) for i, j in zip(edges[:-1], edges[1:])]
    for job in jobs:
        job.result()


def channel_sum(x, k):
    """``y[b, f] = sum_c x[b, c, f] k[c, f]``: the projection of one-output kernels (N = 1), per
    frequency f a dot product over the channels c.  On the CPU split over f across the thread pool
    (numpy's einsum releases the GIL); cupy's einsum on the GPU."""
    if is_gpu_array(x):
        return _cupy().einsum("bcf,cf->bf", x, k)
    b, _, f = x.shape
    out = np.empty((b, f), dtype=np.result_type(x, k))
    _in_parts(f, lambda i, j: np.einsum("bcf,cf->bf", x[:, :, i:j], k[:, i:j], out=out[:, i:j]))
    return out


def channel_outer(y, k):
    """``x[b, c, f] = y[b, f] k[c, f]``: the adjoint of ``channel_sum`` with ``k`` conjugated by the
    caller; split over f across the thread pool on the CPU."""
    if is_gpu_array(y):
        return y[:, None, :] * k[None, :, :]
    b, f = y.shape
    out = np.empty((b, k.shape[0], f), dtype=np.result_type(y, k))
    _in_parts(f, lambda i, j: np.multiply(y[:, None, i:j], k[None, :, i:j], out=out[:, :, i:j]))
    return out
