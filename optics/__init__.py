"""lfmsim optics: the wave-optics forward model of wide-field and light-field microscopes.

Configuration (``Microscope``, ``load_config``, ``presets``), Debye PSFs (``optics.debye``), the
light-field PSF kernels (``compute_psf`` -> ``LightFieldPSF``), phantoms, the camera model and
``simulate``.  Heavy submodules load lazily so that ``import optics`` stays fast.
"""

from __future__ import annotations

import importlib

from .config import ConfigError, Microscope, load_config, save_config

__all__ = [
    "ConfigError",
    "Microscope",
    "load_config",
    "save_config",
    "presets",
    "compute_psf",
    "LightFieldPSF",
    "load_psf",
    "forward_project",
    "simulate",
    "phantoms",
    "camera",
    "debye",
]

_LAZY = {
    "presets": ("optics.presets", None),
    "debye": ("optics.debye", None),
    "phantoms": ("optics.phantoms", None),
    "camera": ("optics.camera", None),
    "compute_psf": ("optics.lfpsf", "compute_psf"),
    "LightFieldPSF": ("optics.psfdata", "LightFieldPSF"),
    "load_psf": ("optics.psfdata", "load_psf"),
    "forward_project": ("optics.forward", "forward_project"),
    "simulate": ("optics.simulation", "simulate"),
}


def __getattr__(name: str):
    if name in _LAZY:
        mod, attr = _LAZY[name]
        module = importlib.import_module(mod)
        value = module if attr is None else getattr(module, attr)
        # Bind the name for good: importing the submodule ``optics.simulate`` would otherwise
        # shadow the function ``simulate`` of the same name.
        globals()[name] = value
        return value
    raise AttributeError(f"module 'optics' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
