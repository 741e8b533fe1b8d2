"""lfmsim reconstruction: light-field operators (forward/adjoint) and deconvolution on GPU or CPU.

``LightFieldOperator`` wraps an ``optics.LightFieldPSF`` as the linear map H (volume -> image) and
its exact transpose, evaluated as a multi-channel convolution on the lenslet grid in Fourier space
(NumPy/SciPy on the CPU, CuPy on a GPU, one code path; ``reconstruction.backend``).
``richardson_lucy`` deconvolves (with the optional depth-adaptive anti-aliasing filter of
Stefanoiu et al. 2019, ``reconstruction.filters``), and ``reconstruct`` runs the whole chain from
a config; ``reconstruct_recorded`` does it for a real microscope's frame (white-frame
``calibrate``, correction, rectification), ``reconstruct_series`` for a long time series on
dask.distributed into OME-Zarr, ``depth_split_rl`` for one frame with its depths over dask workers
(the Fourier LFM's scale-out); ``reconstruction.metrics`` measures the results.  ``python -m reconstruction`` is the
command line.  Submodules load lazily.
"""

from __future__ import annotations

import importlib

__all__ = [
    "LightFieldOperator",
    "projection_cost",
    "richardson_lucy",
    "lanczos_widths",
    "LanczosFilter",
    "reconstruct",
    "validate_image",
    "reconstruct_recorded",
    "calibrate",
    "reconstruct_series",
    "depth_split_rl",
    "get_device",
    "backend",
    "filters",
    "metrics",
]

_LAZY = {
    "LightFieldOperator": ("reconstruction.operator", "LightFieldOperator"),
    "projection_cost": ("reconstruction.operator", "projection_cost"),
    "richardson_lucy": ("reconstruction.deconvolution", "richardson_lucy"),
    "lanczos_widths": ("reconstruction.filters", "lanczos_widths"),
    "LanczosFilter": ("reconstruction.filters", "LanczosFilter"),
    "reconstruct": ("reconstruction.api", "reconstruct"),
    "validate_image": ("reconstruction.api", "validate_image"),
    "reconstruct_recorded": ("reconstruction.recorded", "reconstruct_recorded"),
    "calibrate": ("reconstruction.calibration", "calibrate"),
    "reconstruct_series": ("reconstruction.distributed", "reconstruct_series"),
    "depth_split_rl": ("reconstruction.depthsplit", "depth_split_rl"),
    "get_device": ("reconstruction.backend", "get_device"),
    "backend": ("reconstruction.backend", None),
    "filters": ("reconstruction.filters", None),
    "metrics": ("reconstruction.metrics", None),
}


def __getattr__(name: str):
    if name in _LAZY:
        mod, attr = _LAZY[name]
        module = importlib.import_module(mod)
        return module if attr is None else getattr(module, attr)
    raise AttributeError(f"module 'reconstruction' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
