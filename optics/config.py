"""The validated, frozen description of a microscope (the ``Microscope`` model).

One object holds everything the physics needs: emission wavelength, objective, microlens
array, camera, the reconstruction volume grid and simulation settings.  It is built from a
TOML/JSON file (``load_config``), from a preset (``optics.presets``) or from Python keyword
dictionaries, validated once (every error names the key, the value and what is accepted,
before any computation) and then frozen.  ``Microscope.hash`` keys the operator cache.

Geometry follows Levoy et al. 2006 and Broxton et al. 2013 (LFM 1.0: the microlens array at
the native image plane, the sensor one lenslet focal length behind it); the derived quantities
are listed in ../shared/PHYSICS.md section 1.  Lengths are micrometres throughout.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "rectified_pixels",
    "Objective",
    "MLA",
    "Camera",
    "VolumeGrid",
    "Simulation",
    "Aberrations",
    "Scan",
    "Microscope",
    "ConfigError",
    "load_config",
    "save_config",
    "KINDS",
    "KEY_KINDS",
]

#: Microscope kinds the model knows: wide-field, the standard LFM (MLA at the native image plane),
#: the defocused LFM (LFM 2.0: MLA ``mla.offset_um`` behind it, sensor ``mla.sensor_distance_um``
#: behind the MLA) and the Fourier LFM (FLFM / XLFM: MLA at the pupil relayed by a Fourier lens
#: ``mla.fourier_lens_focal_um``; regular square or hexagonal arrays or lenslets at ``mla.centres_um``)
#: and the scanning LFM (sLFM: the optics of "lfm", the image stepped across the lenslets in
#: ``scan.steps`` x ``scan.steps`` positions of d / steps, one camera frame each; ``optics.scan``).
KINDS = ("widefield", "lfm", "lfm-defocused", "flfm", "slfm")
#: Kinds whose operator is shift-invariant per depth (one kernel per depth, one voxel per camera pixel).
SHIFT_INVARIANT_KINDS = ("widefield", "flfm")
_PLANNED_KINDS: tuple[str, ...] = ()
#: Kinds whose optics are those of the standard LFM (MLA at the native image plane).
NATIVE_PLANE_KINDS = ("lfm", "slfm")
#: Field samples per camera pixel by kind (``simulation.oversampling = 0``).  The Fourier LFM's
#: lenslets are slow (f/20 and beyond at the pupil: the field's band is ~NA_sub / lambda0), and its
#: band-limited apertures keep the elemental images within 0.2% (L2) of a 12-sample computation at 2.
DEFAULT_OVERSAMPLING = {"widefield": 4, "lfm": 4, "lfm-defocused": 4, "flfm": 2, "slfm": 4}
_LIGHT_FIELD_KINDS = ", ".join(repr(k) for k in KINDS if k != "widefield")

#: Largest operator (PSF kernels) we agree to build, in bytes; override with LFMSIM_MAX_OPERATOR_GB.
_DEFAULT_MAX_OPERATOR_GB = 8.0


def rectified_pixels(ratio: float) -> int:
    """The odd number of pixels per lenslet nearest ``ratio`` (pitch / pixel) of a calibrated sensor."""
    return max(1, 2 * math.floor(float(ratio) / 2) + 1)


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key, the value and what is accepted."""


def _err(key: str, value: Any, accepted: str) -> ConfigError:
    return ConfigError(f"{key} = {value!r} is invalid: {accepted}")


def _check_number(key: str, value: Any, *, positive: bool = True, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise _err(key, value, "expected a number")
    v = float(value)
    if not math.isfinite(v):
        raise _err(key, value, "expected a finite number")
    if positive and (v < 0 or (v == 0 and not allow_zero)):
        raise _err(key, value, "expected a number > 0" if not allow_zero else "expected a number >= 0")
    return v


def _check_int(key: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise _err(key, value, "expected an integer")
    v = int(value)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise _err(key, value, f"expected an integer in {lo}..{hi}" if hi is not None else f"expected an integer >= {lo}")
    return v


def _check_choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise _err(key, value, "expected one of " + ", ".join(repr(c) for c in choices))
    return value


@dataclass(frozen=True)
class Objective:
    """Microscope objective and tube lens (object side immersed in ``immersion_index``)."""

    magnification: float = 20.0
    na: float = 0.5
    immersion_index: float = 1.33
    tube_lens_focal_um: float = 200000.0

    def __post_init__(self):
        m = _check_number("objective.magnification", self.magnification)
        na = _check_number("objective.na", self.na)
        n = _check_number("objective.immersion_index", self.immersion_index)
        if n < 1.0 or n > 2.0:
            raise _err("objective.immersion_index", self.immersion_index, "expected 1.0 <= n <= 2.0")
        if na >= n:
            raise _err(
                "objective.na", self.na, f"the NA must be smaller than the immersion index ({n})"
            )
        ftl = _check_number("objective.tube_lens_focal_um", self.tube_lens_focal_um)
        for k, v in (("magnification", m), ("na", na), ("immersion_index", n), ("tube_lens_focal_um", ftl)):
            object.__setattr__(self, k, v)

    @property
    def focal_um(self) -> float:
        """Objective focal length f_tl / M (µm)."""
        return self.tube_lens_focal_um / self.magnification

    @property
    def half_angle(self) -> float:
        """Object-side half aperture angle alpha = asin(NA/n) (radians)."""
        return math.asin(self.na / self.immersion_index)


@dataclass(frozen=True)
class MLA:
    """Microlens array: ``pitch_um`` and ``focal_um`` on the image side (in air).

    ``aperture`` "" takes the kind's default (square lenslets for "lfm"/"lfm-defocused", circular
    for "flfm").  "flfm" only: ``lenslets`` = [rows, cols] of a regular array centred on the axis
    ([0, 0]: every lenslet the pupil reaches), ``grid`` "hex" (rows d sqrt(3)/2 apart, every other
    row shifted by d/2), ``centres_um`` = [[x, y], ...] lenslet centres in the MLA plane (an
    irregular array, XLFM; ``pitch_um`` is then the lenslets' diameter), ``focal_um`` one value
    per centre, and ``field_stop_um`` the diameter of a circular field stop at the native image
    plane (image side; 0: none).
    """

    pitch_um: float = 150.0
    focal_um: float | tuple = 3000.0
    aperture: str = ""
    grid: str = "square"
    offset_um: float = 0.0
    sensor_distance_um: float = 0.0
    fourier_lens_focal_um: float = 0.0
    lenslets: tuple = (0, 0)
    centres_um: tuple = ()
    field_stop_um: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "pitch_um", _check_number("mla.pitch_um", self.pitch_um))
        f = self.focal_um
        if isinstance(f, (list, tuple, np.ndarray)):
            if len(f) == 0:
                raise _err("mla.focal_um", f, "expected a number or one number per lenslet of mla.centres_um")
            fs = tuple(_check_number(f"mla.focal_um[{i}]", v) for i, v in enumerate(f))
            object.__setattr__(self, "focal_um", fs[0] if len(fs) == 1 else fs)
        else:
            object.__setattr__(self, "focal_um", _check_number("mla.focal_um", f))
        _check_choice("mla.aperture", self.aperture, ("", "square", "circle"))
        _check_choice("mla.grid", self.grid, ("square", "hex"))
        shape = self.lenslets
        if (not isinstance(shape, (list, tuple)) or len(shape) != 2
                or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0 for v in shape)
                or (0 in shape and tuple(shape) != (0, 0))):
            raise _err("mla.lenslets", shape, "expected [rows, cols], two integers >= 1 ([0, 0]: as many as the pupil reaches)")
        object.__setattr__(self, "lenslets", (int(shape[0]), int(shape[1])))
        cen = self.centres_um
        try:
            arr = np.asarray(cen, dtype=np.float64).reshape(len(cen), -1) if len(cen) else np.zeros((0, 2))
            ok = arr.shape[1] == 2 and bool(np.all(np.isfinite(arr)))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise _err("mla.centres_um", cen, "expected a list of [x, y] lenslet centres (µm, MLA plane)")
        object.__setattr__(self, "centres_um", tuple((float(x), float(y)) for x, y in arr))
        if isinstance(self.focal_um, tuple) and len(self.focal_um) != max(1, len(arr)):
            raise _err("mla.focal_um", list(self.focal_um),
                       f"expected one value, or one per lenslet of mla.centres_um ({len(arr)})")
        object.__setattr__(self, "offset_um", _check_number("mla.offset_um", self.offset_um, positive=False))
        b = _check_number("mla.sensor_distance_um", self.sensor_distance_um, allow_zero=True)
        object.__setattr__(self, "sensor_distance_um", b)
        f2 = _check_number("mla.fourier_lens_focal_um", self.fourier_lens_focal_um, allow_zero=True)
        object.__setattr__(self, "fourier_lens_focal_um", f2)
        stop = _check_number("mla.field_stop_um", self.field_stop_um, allow_zero=True)
        object.__setattr__(self, "field_stop_um", stop)


@dataclass(frozen=True)
class Camera:
    """Sensor: pixel pitch, shape (rows, cols) and the noise model of ``optics.camera``."""

    pixel_um: float = 10.0
    shape: tuple[int, int] = (2048, 2048)
    quantum_efficiency: float = 0.8
    read_noise_e: float = 1.5
    gain_adu_per_e: float = 0.5
    offset_adu: float = 100.0
    bit_depth: int = 16
    #: The sensor is read through a white-frame calibration (``reconstruction.calibration``): the
    #: lenslet pitch in pixels may be non-integer and the grid rotated or offset; the reconstruction
    #: runs on the rectified frame (``Microscope.rectified``), not on this sensor directly.
    calibrated: bool = False

    def __post_init__(self):
        object.__setattr__(self, "pixel_um", _check_number("camera.pixel_um", self.pixel_um))
        if not isinstance(self.calibrated, bool):
            raise _err("camera.calibrated", self.calibrated, "expected true or false")
        shape = self.shape
        if not isinstance(shape, (list, tuple)) or len(shape) != 2:
            raise _err("camera.shape", shape, "expected [rows, cols], two positive integers")
        shape = tuple(_check_int(f"camera.shape[{i}]", s, 1) for i, s in enumerate(shape))
        object.__setattr__(self, "shape", shape)
        qe = _check_number("camera.quantum_efficiency", self.quantum_efficiency)
        if qe > 1:
            raise _err("camera.quantum_efficiency", self.quantum_efficiency, "expected 0 < QE <= 1")
        object.__setattr__(self, "quantum_efficiency", qe)
        object.__setattr__(
            self, "read_noise_e", _check_number("camera.read_noise_e", self.read_noise_e, allow_zero=True)
        )
        object.__setattr__(self, "gain_adu_per_e", _check_number("camera.gain_adu_per_e", self.gain_adu_per_e))
        object.__setattr__(
            self, "offset_adu", _check_number("camera.offset_adu", self.offset_adu, allow_zero=True)
        )
        object.__setattr__(self, "bit_depth", _check_int("camera.bit_depth", self.bit_depth, 1, 32))


@dataclass(frozen=True)
class VolumeGrid:
    """Reconstruction grid: depths z_min..z_max (inclusive) in steps of z_step (µm, object space).

    ``voxels_per_lenslet`` defaults by kind (``Microscope`` resolves None): 1 for wide-field (one
    voxel per camera pixel), the pixels per lenslet for a light field (sensor resolution).
    """

    z_min_um: float = -50.0
    z_max_um: float = 50.0
    z_step_um: float = 2.0
    voxels_per_lenslet: int | None = None

    def __post_init__(self):
        zmin = _check_number("volume.z_min_um", self.z_min_um, positive=False)
        zmax = _check_number("volume.z_max_um", self.z_max_um, positive=False)
        step = _check_number("volume.z_step_um", self.z_step_um, positive=False)
        if step <= 0:
            raise _err("volume.z_step_um", self.z_step_um, "expected a step > 0")
        if zmax < zmin:
            raise _err(
                "volume.z_max_um", self.z_max_um, f"expected z_max_um >= z_min_um ({zmin}); the range is inverted"
            )
        s = None if self.voxels_per_lenslet is None else _check_int("volume.voxels_per_lenslet", self.voxels_per_lenslet, 1)
        for k, v in (("z_min_um", zmin), ("z_max_um", zmax), ("z_step_um", step), ("voxels_per_lenslet", s)):
            object.__setattr__(self, k, v)

    @property
    def z_um(self) -> np.ndarray:
        """Depths of the grid (µm), z_min..z_max inclusive."""
        n = int(math.floor((self.z_max_um - self.z_min_um) / self.z_step_um + 1e-9)) + 1
        return self.z_min_um + self.z_step_um * np.arange(n, dtype=np.float64)


@dataclass(frozen=True)
class Simulation:
    """Numerical settings of the PSF computation.

    ``oversampling``: field samples per camera pixel (raised to the sampling rule's minimum,
    ``optics.lfpsf.field_oversampling``); 0 (the default) takes the kind's: 4 for wide-field and the
    LFMs, 2 for the Fourier LFM (``DEFAULT_OVERSAMPLING``).  4 keeps light-field kernels within 0.3% (L2)
    of a 9-sample computation; 2 keeps the Fourier LFM's elemental images within 0.2% of 12 samples (the pixel is integrated exactly by Gauss-Legendre nodes and the
    lenslet array is band-limited to the grid: ``optics.lfpsf``, ``optics.mla``).
    ``propagation``: "auto" (band-limited angular spectrum, exact for scalar waves), "asm" (the same)
    or "fresnel" (paraxial transfer function, ~0.3% away at f/20); light field only.
    """

    oversampling: int = 0
    apodization: str = "sqrtcos"
    vectorial: bool = False
    propagation: str = "auto"

    def __post_init__(self):
        object.__setattr__(self, "oversampling", _check_int("simulation.oversampling", self.oversampling, 0, 15))
        _check_choice("simulation.apodization", self.apodization, ("sqrtcos", "uniform", "sqrtcos-1pluscos"))
        if not isinstance(self.vectorial, bool):
            raise _err("simulation.vectorial", self.vectorial, "expected true or false")
        _check_choice("simulation.propagation", self.propagation, ("auto", "fresnel", "asm"))


@dataclass(frozen=True)
class Aberrations:
    """Aberrations of the objective's pupil (``optics.pupil``).

    ``zernike_waves`` = {Noll index: waves rms}: every kind takes any term (the radially symmetric
    ones, Noll 4, 11, 22, ..., through the radial Debye integral; the others through the Fourier
    LFM's pupil field or, for the other kinds, the 2-D pupil integral of ``optics.debye2d``, scalar
    fields only).  Stored as sorted (index, waves) pairs.

    Gibson-Lanni index mismatch (Gibson & Lanni 1991; conventions in ``optics.pupil``), every kind:

    * ``sample_index``: refractive index n_s of the sample; "none" (default) = the immersion index,
      no mismatch.
    * ``focus_depth_um``: depth (µm) below the sample surface at which the design (matched) focus
      would lie, i.e. the stage setting; the source at z lies at depth focus_depth_um + z (>= 0).
      Default 0: the nominal focal plane on the surface.  Acts only with ``sample_index``.
    * ``coverslip_index``, ``coverslip_um``: the coverslip in use (index, thickness µm); default
      "none" = no coverslip term (a water-dipping objective has none).  Both are needed together.
    * ``coverslip_design_index``, ``coverslip_design_um``: the coverslip the objective is corrected
      for; default "none" = the same as in use.  Some value must differ from the one in use.
    """

    zernike_waves: Any = ()
    sample_index: Any = "none"
    focus_depth_um: float = 0.0
    coverslip_index: Any = "none"
    coverslip_um: Any = "none"
    coverslip_design_index: Any = "none"
    coverslip_design_um: Any = "none"

    def __post_init__(self):
        z = self.zernike_waves
        try:
            items = list(z.items()) if isinstance(z, dict) else [tuple(v) for v in z]
        except (TypeError, ValueError):
            raise _err("aberrations.zernike_waves", z, "expected a table {Noll index = waves rms}") from None
        out = {}
        for key, val in items:
            try:
                j = int(str(key).strip())
            except ValueError:
                j = 0
            if j < 1 or str(key).strip().lstrip("+") != str(j):
                raise _err("aberrations.zernike_waves", z, f"the key {key!r} is not a Noll index (an integer >= 1)")
            out[j] = _check_number(f"aberrations.zernike_waves[{j}]", val, positive=False)
        object.__setattr__(self, "zernike_waves", tuple(sorted((j, c) for j, c in out.items() if c != 0)))
        for name in ("sample_index", "coverslip_index", "coverslip_design_index"):
            object.__setattr__(self, name, _optional_index(f"aberrations.{name}", getattr(self, name)))
        for name in ("coverslip_um", "coverslip_design_um"):
            v = getattr(self, name)
            if not _is_none(v):
                v = _check_number(f"aberrations.{name}", v, allow_zero=True)
            object.__setattr__(self, name, "none" if _is_none(v) else v)
        object.__setattr__(self, "focus_depth_um",
                           _check_number("aberrations.focus_depth_um", self.focus_depth_um, allow_zero=True))
        self._check_coverslip()

    def _check_coverslip(self) -> None:
        given = [k for k in _COVERSLIP_KEYS if getattr(self, k) != "none"]
        if not given:
            return
        for k in ("coverslip_um", "coverslip_index"):
            if getattr(self, k) == "none":
                raise _err(f"aberrations.{k}", "none", f"aberrations.{given[0]} = {getattr(self, given[0])!r} "
                           "needs the coverslip in use: give coverslip_um (µm, 0 if there is none) and "
                           "coverslip_index (e.g. 1.515)")
        if self.coverslip[:2] == self.coverslip[2:]:
            raise _err(f"aberrations.{given[0]}", getattr(self, given[0]),
                       "the coverslip equals its design (coverslip_design_um / coverslip_design_index, default "
                       "the coverslip's own), so the coverslip keys do nothing: give the design values where "
                       "they differ, or remove the coverslip keys")

    @property
    def coefficients(self) -> dict[int, float]:
        """{Noll index: waves rms} of the non-zero terms."""
        return dict(self.zernike_waves)

    @property
    def coverslip(self) -> tuple[float, float, float, float] | None:
        """(n_g, t_g, n_g0, t_g0): the coverslip in use and its design (µm), or None without coverslip keys."""
        if self.coverslip_um == "none" or self.coverslip_index == "none":
            return None
        n_g, t_g = self.coverslip_index, self.coverslip_um
        n_g0 = n_g if self.coverslip_design_index == "none" else self.coverslip_design_index
        t_g0 = t_g if self.coverslip_design_um == "none" else self.coverslip_design_um
        return n_g, t_g, n_g0, t_g0

    @property
    def gibson_lanni(self) -> bool:
        """Whether a Gibson-Lanni term is present (a sample index or a coverslip other than the design)."""
        return self.sample_index != "none" or self.coverslip is not None

    @property
    def active(self) -> bool:
        """Whether the pupil has any aberration (then U(r, -z) != conj U(r, z))."""
        return bool(self.zernike_waves) or self.gibson_lanni

    def to_dict(self) -> dict:
        """The keys that differ from their defaults (an empty section is not written)."""
        out: dict[str, Any] = {}
        if self.zernike_waves:
            out["zernike_waves"] = {str(j): c for j, c in self.zernike_waves}
        default = Aberrations()
        for f in dataclasses.fields(self):
            if f.name != "zernike_waves" and getattr(self, f.name) != getattr(default, f.name):
                out[f.name] = getattr(self, f.name)
        return out


_COVERSLIP_KEYS = ("coverslip_index", "coverslip_um", "coverslip_design_index", "coverslip_design_um")


def _is_none(v: Any) -> bool:
    return isinstance(v, str) and v.strip().lower() == "none"


def _optional_index(key: str, v: Any) -> Any:
    """"none" or a refractive index 1.0 <= n <= 2.0."""
    if _is_none(v):
        return "none"
    if isinstance(v, str):
        raise _err(key, v, 'expected a refractive index 1.0 <= n <= 2.0 or "none"')
    n = _check_number(key, v)
    if not 1.0 <= n <= 2.0:
        raise _err(key, v, 'expected a refractive index 1.0 <= n <= 2.0 or "none"')
    return n


@dataclass(frozen=True)
class Scan:
    """The scanning LFM's acquisition (kind "slfm"; Wu et al., Cell 184:3318, 2021; ``optics.scan``).

    ``steps`` = K: the image is stepped across the lenslet array in K x K positions d / K apart (K
    odd, centred on the unshifted position), one camera frame each.  ``order``: "raster" (row by
    row) or "ring" (the published system's: the outer ring first, the centre last).
    """

    steps: int = 3
    order: str = "raster"

    def __post_init__(self):
        k = _check_int("scan.steps", self.steps, 1, 15)
        if k % 2 == 0:
            raise _err("scan.steps", self.steps, "expected an odd integer (the scan is centred on the unshifted position)")
        object.__setattr__(self, "steps", k)
        _check_choice("scan.order", self.order, ("raster", "ring"))


#: Keys that act only for some kinds: a value other than the default is refused for the others
#: (DESIGN.md: every key either acts for the kind or is refused).  Kinds not implemented yet
#: are listed so the message says where the key belongs.
KEY_KINDS = {
    "mla.offset_um": ("lfm-defocused",),
    "mla.sensor_distance_um": ("lfm-defocused", "flfm"),
    "mla.fourier_lens_focal_um": ("flfm",),
    "mla.lenslets": ("flfm",),
    "mla.centres_um": ("flfm",),
    "mla.field_stop_um": ("flfm",),
    "simulation.propagation": ("lfm", "lfm-defocused", "flfm", "slfm"),
    "scan.steps": ("slfm",),
    "scan.order": ("slfm",),
    "camera.calibrated": ("lfm", "lfm-defocused"),
}

_SECTIONS = {
    "objective": Objective,
    "mla": MLA,
    "camera": Camera,
    "volume": VolumeGrid,
    "simulation": Simulation,
    "aberrations": Aberrations,
    "scan": Scan,
}
_MICROSCOPE_KEYS = ("kind", "wavelength_um", "name")


@dataclass(frozen=True)
class Microscope:
    """A complete, validated, immutable light-field (or wide-field) microscope description.

    Build it with keyword sections, ``Microscope.from_dict(d)``, ``load_config(path)`` or
    ``optics.presets.get(name)``.  Sections follow ../shared/DESIGN.md.  For ``kind="widefield"``
    ``mla`` is None, one "lenslet" is one camera pixel and ``voxels_per_lenslet`` must be 1.

    Lateral coordinates are image-oriented: a source at object position (y, x) forms its
    in-focus image at sensor position (M*y, M*x) from the optical axis, which passes through the
    centre of the middle lenslet (index ``n_lenslets // 2``).  z is the source's offset from the
    focal plane, positive away from the objective.
    """

    kind: str = "lfm"
    wavelength_um: float = 0.52
    objective: Objective = field(default_factory=Objective)
    mla: MLA | None = field(default_factory=MLA)
    camera: Camera = field(default_factory=Camera)
    volume: VolumeGrid = field(default_factory=VolumeGrid)
    simulation: Simulation = field(default_factory=Simulation)
    name: str = ""
    aberrations: Aberrations = field(default_factory=Aberrations)
    scan: Scan = field(default_factory=Scan)

    def __post_init__(self):
        if self.kind in _PLANNED_KINDS:
            raise _err("microscope.kind", self.kind, f"not implemented yet; implemented kinds: {', '.join(KINDS)}")
        _check_choice("microscope.kind", self.kind, KINDS)
        lam = _check_number("microscope.wavelength_um", self.wavelength_um)
        if not 0.2 <= lam <= 2.0:
            raise _err(
                "microscope.wavelength_um", self.wavelength_um, "expected 0.2..2.0 µm (micrometres, e.g. 0.52 not 520)"
            )
        object.__setattr__(self, "wavelength_um", lam)
        for key, cls in _SECTIONS.items():
            if not isinstance(getattr(self, key), (cls, type(None))):
                raise _err(key, getattr(self, key), f"expected a {cls.__name__}")
        self._check_keys_act()
        self._check_gibson_lanni()
        if self.mla is not None and self.kind != "widefield" and self.mla.aperture == "":
            # the kind's default aperture: circular lenslets for the Fourier LFM, square otherwise
            aperture = "circle" if self.kind == "flfm" else "square"
            object.__setattr__(self, "mla", dataclasses.replace(self.mla, aperture=aperture))
        if self.simulation.oversampling == 0:  # the default follows the kind
            q = DEFAULT_OVERSAMPLING.get(self.kind, 4)
            object.__setattr__(self, "simulation", dataclasses.replace(self.simulation, oversampling=q))
        if self.volume.voxels_per_lenslet is None:  # the default follows the kind
            # light field: the pixels per lenslet (a non-integer ratio is refused just below)
            s_default = 1 if self.mla is None or self.kind in SHIFT_INVARIANT_KINDS else max(1, round(self.mla.pitch_um / self.camera.pixel_um))
            if self.camera.calibrated and self.mla is not None:
                s_default = rectified_pixels(self.mla.pitch_um / self.camera.pixel_um)
            if self.kind == "slfm":  # whole scan steps of voxels: the odd multiple of K nearest Nnum from above
                k = self.scan.steps
                mult = -(-s_default // k)
                s_default = k * (mult + (mult % 2 == 0))
            object.__setattr__(self, "volume", dataclasses.replace(self.volume, voxels_per_lenslet=s_default))
        if self.kind == "flfm":
            self._check_flfm()
        elif self.kind == "widefield":
            if self.mla is not None:
                object.__setattr__(self, "mla", None)
            if self.volume.voxels_per_lenslet != 1:
                raise _err("volume.voxels_per_lenslet", self.volume.voxels_per_lenslet,
                           "a wide-field microscope samples one voxel per camera pixel: use 1")
        else:
            if self.mla is None:
                raise _err("mla", None, f"a [mla] section is required for kind {self.kind!r}")
            if self.mla.grid != "square":
                raise _err("mla.grid", self.mla.grid,
                           f"kind {self.kind!r} needs a square lenslet grid: its periodic operator shifts each "
                           "kernel by whole lenslets of whole pixels, and a hexagonal lattice's rows (d sqrt(3)/2 "
                           "apart, every other one shifted by d/2) are not whole pixels apart; hexagonal arrays "
                           "are modelled for kind 'flfm'")
            if isinstance(self.mla.focal_um, tuple):
                raise _err("mla.focal_um", list(self.mla.focal_um),
                           f"kind {self.kind!r} takes one focal length (per-lenslet values are for 'flfm' with mla.centres_um)")
            ratio = self.mla.pitch_um / self.camera.pixel_um
            nnum = round(ratio)
            if self.camera.calibrated:  # the rectified frame has the odd number of pixels nearest the ratio
                nnum = rectified_pixels(ratio)
                if ratio < 3:
                    raise _err("mla.pitch_um / camera.pixel_um", f"{self.mla.pitch_um}/{self.camera.pixel_um} = {ratio:.4g}",
                               "a calibrated sensor needs at least 3 pixels per lenslet")
            elif abs(ratio - nnum) > 1e-6 * ratio or nnum % 2 == 0:
                raise _err(
                    "mla.pitch_um / camera.pixel_um", f"{self.mla.pitch_um}/{self.camera.pixel_um} = {ratio:.4g}",
                    "the number of pixels per lenslet must be an odd integer (so each lenslet has a centre pixel); "
                    "a recorded frame with another ratio is read through a white-frame calibration (camera.calibrated "
                    "= true, reconstruction.calibration)",
                )
            s = self.volume.voxels_per_lenslet
            if self.kind == "slfm":
                self._check_scan(nnum)
            elif s > nnum:
                raise _err("volume.voxels_per_lenslet", s, f"expected 1..{nnum} (the pixels per lenslet)")
            rows, cols = self.camera.shape
            if rows < nnum or cols < nnum:
                raise _err("camera.shape", list(self.camera.shape), f"the sensor must hold at least one lenslet ({nnum} x {nnum} pixels)")
            matched = self.matched_f_number
            fnum = self.mla.focal_um / self.mla.pitch_um
            if abs(fnum / matched - 1) > 0.15:
                warnings.warn(
                    f"mla f-number {fnum:.3g} is far from the matched value M/(2 NA) = {matched:.3g}: "
                    f"sub-images will {'overlap' if fnum > matched else 'leave pixels unused'}",
                    stacklevel=3,
                )

    def _check_scan(self, nnum: int) -> None:
        """The scanning LFM: K <= Nnum steps, each a whole number of voxels (s a multiple of K), s <= K Nnum."""
        k, s = self.scan.steps, self.volume.voxels_per_lenslet
        if k > nnum:
            raise _err("scan.steps", k, f"expected an odd integer 1..{nnum}: a step of d / K below the pixel "
                       f"(d / {nnum}) samples nothing new")
        if s % k or s % 2 == 0 or s > k * nnum:
            near = sorted((k * j for j in range(1, nnum + 1, 2)), key=lambda v: (abs(v - s), v))[:2]
            raise _err("volume.voxels_per_lenslet", s,
                       f"kind 'slfm' steps the image by d / {k}, so each step must be a whole number of voxels: "
                       f"expected an odd multiple of scan.steps = {k} up to {k * nnum} (nearest: "
                       f"{' or '.join(map(str, sorted(near)))}; more voxels than the {nnum} pixels per lenslet "
                       f"are allowed, since the scan samples each lenslet {k} times per view)")

    def _check_flfm(self) -> None:
        """Validation of the Fourier LFM (kind "flfm"): pupil relay, array, sampling of the volume."""
        mla = self.mla
        if mla is None:
            raise _err("mla", None, "a [mla] section is required for kind 'flfm'")
        if mla.fourier_lens_focal_um <= 0:
            raise _err("mla.fourier_lens_focal_um", mla.fourier_lens_focal_um,
                       "kind 'flfm' needs the Fourier lens focal length f2 > 0 (µm): the relay tube lens "
                       "(f1 = objective.tube_lens_focal_um) -> Fourier lens images the pupil onto the MLA")
        if mla.centres_um and (mla.lenslets != (0, 0) or mla.grid != "square"):
            raise _err("mla.centres_um", [list(c) for c in mla.centres_um],
                       "give either mla.centres_um (an irregular array) or mla.lenslets / mla.grid (a regular one), not both")
        if isinstance(mla.focal_um, tuple) and not mla.centres_um:
            raise _err("mla.focal_um", list(mla.focal_um), "one focal length per lenslet needs mla.centres_um")
        if isinstance(mla.focal_um, tuple) and len(set(mla.focal_um)) > 1 and mla.sensor_distance_um <= 0:
            raise _err("mla.sensor_distance_um", mla.sensor_distance_um,
                       "lenslets of several focal lengths (XLFM) need the MLA-to-sensor distance b > 0 (µm)")
        if mla.grid == "hex" and mla.aperture == "square":
            raise _err("mla.aperture", mla.aperture, "square lenslets do not tile a hexagonal grid: use 'circle'")
        if self.volume.voxels_per_lenslet != 1:
            raise _err("volume.voxels_per_lenslet", self.volume.voxels_per_lenslet,
                       "a Fourier LFM is shift-invariant per depth: one voxel per camera pixel (camera pixel / M_T); use 1")
        if self.simulation.vectorial:
            raise _err("simulation.vectorial", True,
                       "kind 'flfm' uses the scalar pupil field (each lenslet is a low-NA sub-aperture, where "
                       "the polarisation terms of Richards-Wolf do not change the elemental images); use false")

    def _check_gibson_lanni(self) -> None:
        """Validation of the Gibson-Lanni keys of [aberrations] against the objective and the volume."""
        ab, o = self.aberrations, self.objective
        if ab.sample_index == o.immersion_index:  # no mismatch: the default (same kernels, same hash)
            ab = dataclasses.replace(ab, sample_index="none")
            object.__setattr__(self, "aberrations", ab)
        if ab.focus_depth_um != 0 and ab.sample_index == "none":
            raise _err("aberrations.focus_depth_um", ab.focus_depth_um,
                       "it acts only with aberrations.sample_index other than objective.immersion_index "
                       f"({o.immersion_index:g}): the source's depth in the sample matters only there; remove it")
        for key in ("sample_index", "coverslip_index", "coverslip_design_index"):
            n = getattr(ab, key)
            if n != "none" and n <= o.na and (key == "sample_index" or ab.coverslip is not None):
                raise _err(f"aberrations.{key}", n,
                           f"it must exceed objective.na = {o.na:g}: rays beyond NA = n are supercritical (total "
                           "internal reflection), their light the evanescent near field, which this scalar "
                           "Gibson-Lanni model does not carry")
        if ab.sample_index != "none":
            z_min = float(np.min(self.volume.z_um))
            if ab.focus_depth_um + z_min < -1e-9:
                raise _err("volume.z_min_um", self.volume.z_min_um,
                           f"with aberrations.sample_index the source at z lies at depth aberrations.focus_depth_um"
                           f" + z = {ab.focus_depth_um:g} + z below the sample surface, which must be >= 0: the "
                           f"volume reaches {-(ab.focus_depth_um + z_min):.4g} µm above the surface; raise "
                           f"aberrations.focus_depth_um to at least {-z_min:g} or volume.z_min_um to at least "
                           f"{0.0 - ab.focus_depth_um:g}")

    def _check_keys_act(self) -> None:
        """Refuse keys that do nothing for this kind (set to a value other than their default)."""
        if self.kind == "widefield" and self.mla is not None and self.mla != MLA():
            raise ConfigError(
                "mla: a [mla] section was given but microscope.kind = 'widefield' has no microlens array; "
                f"remove it, or use a light-field kind (implemented: {_LIGHT_FIELD_KINDS})"
            )
        for key, kinds in KEY_KINDS.items():
            sec, name = key.split(".")
            obj = getattr(self, sec)
            if obj is None or self.kind in kinds:
                continue
            default = getattr(type(obj)(), name)
            value = getattr(obj, name)
            if value != default:
                planned = [k for k in kinds if k not in KINDS]
                note = f" ({', '.join(planned)} not implemented yet)" if planned else ""
                raise ConfigError(
                    f"{key} = {value!r} does nothing for microscope.kind = {self.kind!r}: it is used by kind "
                    f"{' / '.join(repr(k) for k in kinds)}{note}; remove it or change the kind"
                )

    # ----------------------------------------------------------------- derived quantities
    @property
    def shift_invariant(self) -> bool:
        """True for the kinds whose operator is one 2-D convolution per depth (wide-field, Fourier LFM)."""
        return self.kind in SHIFT_INVARIANT_KINDS

    @property
    def pixels_per_lenslet(self) -> int:
        """Nnum = pitch / pixel; 1 for the shift-invariant kinds (the operator's cell is one pixel)."""
        if self.mla is None or self.shift_invariant:
            return 1
        if self.camera.calibrated:
            raise ConfigError(
                f"camera.calibrated = true: this sensor ({self.mla.pitch_um / self.camera.pixel_um:.4g} px per lenslet) "
                "is read through a white-frame calibration; model and reconstruct its rectified frame instead "
                "(Microscope.rectified, reconstruction.rectification.rectify)")
        return round(self.mla.pitch_um / self.camera.pixel_um)

    def nominal_rectified(self) -> Microscope:
        """``rectified`` for the whole lenslets the nominal pitch / pixel fits on the sensor (what a
        calibration of an ideally aligned camera would give): for descriptions of a calibrated camera."""
        ratio = self.mla.pitch_um / self.camera.pixel_um
        return self.rectified((max(1, int(self.camera.shape[0] // ratio)), max(1, int(self.camera.shape[1] // ratio))))

    def rectified(self, n_lenslets: tuple[int, int], pixels_per_lenslet: int | None = None) -> Microscope:
        """The microscope of a rectified frame of ``n_lenslets`` (rows, cols) lenslets with an odd
        number of pixels per lenslet (default: the odd integer nearest pitch / pixel): the same
        optics, pixels of pitch / N at the MLA's focal plane, ``camera.calibrated`` false.

        The lenslet pitch in µm is trusted (it is made to tolerance) and the pixel is what the
        calibration measures: a relay that magnifies slightly changes the pixels per lenslet, not
        the optics."""
        if self.mla is None or self.kind not in KEY_KINDS["camera.calibrated"]:
            raise ConfigError(f"Microscope.rectified is for kinds {KEY_KINDS['camera.calibrated']}, not {self.kind!r}")
        ratio = self.mla.pitch_um / self.camera.pixel_um
        n = rectified_pixels(ratio) if pixels_per_lenslet is None else pixels_per_lenslet
        if isinstance(n, bool) or int(n) != n or n < 1 or n % 2 == 0:
            raise _err("pixels_per_lenslet", pixels_per_lenslet, "expected an odd integer >= 1")
        n = int(n)
        ly, lx = (int(v) for v in n_lenslets)
        if ly < 1 or lx < 1:
            raise _err("n_lenslets", n_lenslets, "expected two positive integers")
        cam = dataclasses.replace(self.camera, pixel_um=self.mla.pitch_um / n, shape=(ly * n, lx * n), calibrated=False)
        vol = self.volume
        if vol.voxels_per_lenslet > n:
            vol = dataclasses.replace(vol, voxels_per_lenslet=n)
        return dataclasses.replace(self, camera=cam, volume=vol)

    @property
    def fourier_focal_um(self) -> float:
        """F = f_obj f2 / f1 (µm): a ray leaving the focus at angle theta meets the MLA at n sin(theta) F
        (Fourier LFM; PHYSICS.md sections 1 and 4)."""
        if self.kind != "flfm":
            raise ValueError(f"microscope.kind = {self.kind!r} has no Fourier lens")
        o = self.objective
        return o.focal_um * self.mla.fourier_lens_focal_um / o.tube_lens_focal_um

    @property
    def lateral_magnification(self) -> float:
        """Object-to-sensor lateral magnification: M, or M_T = b / F = M b / f2 for the Fourier LFM
        (b = ``mla_to_sensor_um``; PHYSICS.md section 1, oLaF ``FLFM_setCameraParams``)."""
        if self.kind == "flfm":
            return self.mla_to_sensor_um / self.fourier_focal_um
        return self.objective.magnification

    @property
    def voxels_per_lenslet(self) -> int:
        return self.volume.voxels_per_lenslet

    @property
    def scan_steps(self) -> int:
        """K: scan positions per axis (K^2 camera frames per volume); 1 for the kinds that do not scan."""
        return self.scan.steps if self.kind == "slfm" else 1

    @property
    def mla_offset_um(self) -> float:
        """a: the MLA's distance behind the native image plane (0 for "lfm"; image side, µm)."""
        return 0.0 if self.mla is None or self.kind != "lfm-defocused" else self.mla.offset_um

    @property
    def mla_to_sensor_um(self) -> float:
        """b: the MLA-to-sensor distance: ``mla.sensor_distance_um``, default the lenslets' focal length.

        Image space is telecentric here (the objective's pupil images to infinity behind the tube
        lens), so a lenslet at any distance a from the native image plane images the pupil at its
        focal plane: b = f_ml keeps the sub-images the size of a lenslet (the f-number match of
        LFM 1.0) for every a.  (pyOLaF's lens-law tube model gives b within 0.2% of f_ml for
        |a| <= 5 mm; FAMILIES.md section 2.4.)
        """
        if self.mla is None:
            raise ValueError(f"microscope.kind = {self.kind!r} has no microlens array")
        b = self.mla.sensor_distance_um if self.kind in ("lfm-defocused", "flfm") else 0.0
        if b > 0:
            return b
        f = self.mla.focal_um
        return f[0] if isinstance(f, tuple) else f  # several values: validation requires b

    @property
    def lenslet_pitch_um(self) -> float:
        """Image-side pitch of the operator's cell (µm): the lenslet pitch d, or the camera pixel for the
        shift-invariant kinds (wide-field, Fourier LFM)."""
        return self.mla.pitch_um if self.mla is not None and not self.shift_invariant else self.camera.pixel_um

    @property
    def lenslet_pitch_object_um(self) -> float:
        """Object-space pitch of the operator's cell: d / M, or the object-space pixel (shift-invariant kinds)."""
        return self.lenslet_pitch_um / self.lateral_magnification

    @property
    def voxel_um(self) -> float:
        """Lateral voxel size d / (M s) in object space (µm)."""
        return self.lenslet_pitch_object_um / self.voxels_per_lenslet

    @property
    def pixel_object_um(self) -> float:
        """Camera pixel referred to object space, p / M (p / M_T for the Fourier LFM) (µm)."""
        return self.camera.pixel_um / self.lateral_magnification

    @property
    def matched_f_number(self) -> float:
        """Lenslet f-number whose cone matches the objective's image-side NA: M / (2 NA)."""
        return self.objective.magnification / (2 * self.objective.na)

    @property
    def pupil_radius_um(self) -> float:
        """Radius of the pupil image behind one lenslet, f_ml NA / M (µm, sensor plane)."""
        if self.mla is None or self.kind == "flfm":
            return 0.0
        return self.mla.focal_um * self.objective.na / self.objective.magnification

    @property
    def n_lenslets(self) -> tuple[int, int]:
        """Whole lenslets on the sensor (rows, cols); the image is the central crop they cover."""
        n = self.pixels_per_lenslet
        return (self.camera.shape[0] // n, self.camera.shape[1] // n)

    @property
    def image_shape(self) -> tuple[int, int]:
        """Shape of the light-field image used: whole lenslets only (rows, cols)."""
        n = self.pixels_per_lenslet
        ly, lx = self.n_lenslets
        return (ly * n, lx * n)

    @property
    def z_um(self) -> np.ndarray:
        return self.volume.z_um

    @property
    def volume_shape(self) -> tuple[int, int, int]:
        """Reconstruction volume (z, y, x)."""
        ly, lx = self.n_lenslets
        s = self.voxels_per_lenslet
        return (len(self.z_um), ly * s, lx * s)

    @property
    def fov_um(self) -> tuple[float, float]:
        """Object-space field of view (rows, cols) covered by the image (µm)."""
        ny, nx = self.image_shape
        return (ny * self.pixel_object_um, nx * self.pixel_object_um)

    @property
    def wavenumber(self) -> float:
        """Object-space wavenumber k = 2 pi n / lambda0 (1/µm)."""
        return 2 * math.pi * self.objective.immersion_index / self.wavelength_um

    # ----------------------------------------------------------------- serialisation
    def to_dict(self) -> dict:
        """Plain nested dict with the file layout of DESIGN.md (``[microscope]``, ``[objective]``...)."""
        out: dict[str, Any] = {"microscope": {"kind": self.kind, "wavelength_um": self.wavelength_um}}
        if self.name:
            out["microscope"]["name"] = self.name
        for key in _SECTIONS:
            sec = getattr(self, key)
            if sec is None:
                continue
            if key == "aberrations":  # non-default keys only (older configs keep their hash)
                if sec.to_dict():
                    out[key] = sec.to_dict()
                continue
            if key == "scan" and self.kind != "slfm":  # the other kinds refuse it (older configs keep their hash)
                continue
            d = dataclasses.asdict(sec)
            out[key] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Microscope:
        """Build from the nested-dict layout of a config file; unknown keys are errors."""
        if not isinstance(data, dict):
            raise _err("config", type(data).__name__, "expected a table/dict of sections")
        allowed = ("microscope", *_SECTIONS)
        for key in data:
            if key not in allowed:
                raise _unknown(key, allowed, "section")
        top = dict(data.get("microscope", {}))
        for key in top:
            if key not in _MICROSCOPE_KEYS:
                raise _unknown(f"microscope.{key}", [f"microscope.{k}" for k in _MICROSCOPE_KEYS], "key")
        kwargs: dict[str, Any] = dict(top)
        kind = top.get("kind", "lfm")
        if kind == "widefield" and "mla" in data:
            raise ConfigError(
                "mla: a [mla] section was given but microscope.kind = 'widefield' has no microlens array; "
                f"remove it, or use a light-field kind (implemented: {_LIGHT_FIELD_KINDS})"
            )
        for key, sec_cls in _SECTIONS.items():
            if key not in data:
                if key == "mla" and kind == "widefield":
                    kwargs["mla"] = None
                continue
            sec = data[key]
            if not isinstance(sec, dict):
                raise _err(key, sec, "expected a table of keys")
            names = [f.name for f in dataclasses.fields(sec_cls)]
            for k in sec:
                if k not in names:
                    raise _unknown(f"{key}.{k}", [f"{key}.{n}" for n in names], "key")
            kwargs[key] = sec_cls(**sec)
        return cls(**kwargs)

    def replace(self, **sections) -> Microscope:
        """A copy with whole sections or top-level fields replaced; nested keys via ``section={...}``.

        ``m.replace(volume={"z_step_um": 5})`` changes one key of a section.
        """
        d = self.to_dict()
        for key, val in sections.items():
            if key in _SECTIONS and isinstance(val, dict):
                d.setdefault(key, {}).update(val)
            elif key in _SECTIONS:
                d[key] = dataclasses.asdict(val) if val is not None else None
                if d[key] is None:
                    d.pop(key)
            elif key in _MICROSCOPE_KEYS:
                d["microscope"][key] = val
            else:
                raise _unknown(key, (*_SECTIONS, *_MICROSCOPE_KEYS), "field")
        if d["microscope"].get("kind") == "widefield":
            d.pop("mla", None)
        return Microscope.from_dict(d)

    @property
    def hash(self) -> str:
        """SHA-256 (first 16 hex digits) of the canonical JSON of everything that shapes the PSF.

        The camera's noise parameters and the display name do not change the operator and are
        left out, so that changing them keeps the cached operator.
        """
        return self._digest(with_shape=True)

    @property
    def kernel_hash(self) -> str:
        """``hash`` without the camera's shape: what the PSF kernels depend on.

        A kernel is the pattern of one voxel phase at one depth in its own window (set by the
        optics and the depth, ``optics.support``), not by how many lenslets the sensor has, so a
        crop and the full camera share cached kernels (``optics.psfdata.cache_path``).
        """
        return self._digest(with_shape=False)

    def _digest(self, with_shape: bool) -> str:
        d = self.to_dict()
        d["microscope"].pop("name", None)
        cam = d["camera"]
        d["camera"] = {"pixel_um": cam["pixel_um"]} | ({"shape": cam["shape"]} if with_shape else {})
        text = json.dumps(d, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def estimate_operator_bytes(self) -> int:
        """Upper estimate of the PSF kernels' size in memory (float32), before computing them.

        Each depth keeps s^2 kernels of at most ``optics.support.kernel_side_pixels`` pixels square
        (the computation window: geometric blur plus guard band for the light field, the
        encircled-energy radius for wide-field).
        """
        s = self.voxels_per_lenslet
        total = 0
        for z in self.z_um:
            side = kernel_side_pixels(self, float(z))
            total += s * s * side * side * 4
        return int(total)

    def check_operator_fits(self, max_gb: float | None = None) -> None:
        """Raise ConfigError if the operator would exceed ``max_gb`` (default env LFMSIM_MAX_OPERATOR_GB or 8)."""
        if max_gb is None:
            max_gb = float(os.environ.get("LFMSIM_MAX_OPERATOR_GB", _DEFAULT_MAX_OPERATOR_GB))
        need = self.estimate_operator_bytes() / 1e9
        if need > max_gb:
            raise ConfigError(
                f"volume = {len(self.z_um)} depths x {self.voxels_per_lenslet}^2 voxel phases is too large: "
                f"its operator needs about {need:.1f} GB, more than the {max_gb:.1f} GB allowed "
                "(reduce the z range, increase volume.z_step_um, lower volume.voxels_per_lenslet, "
                "or raise LFMSIM_MAX_OPERATOR_GB)"
            )

    def describe(self) -> str:
        """Human-readable summary of the derived quantities."""
        if self.camera.calibrated and self.mla is not None:
            r = self.nominal_rectified()
            ratio = self.mla.pitch_um / self.camera.pixel_um
            head = (f"{self.name or 'microscope'}: a calibrated camera, {ratio:.4g} px per lenslet nominally, "
                    f"{self.camera.shape[0]} x {self.camera.shape[1]} px; rectified to {r.pixels_per_lenslet} px "
                    "per lenslet (the numbers below; a calibration measures the real ones):")
            return head + "\n" + r.describe()
        lines = [f"{self.name or 'microscope'} ({self.kind}), lambda0 = {self.wavelength_um} um",
                 f"  objective {self.objective.magnification:g}x / NA {self.objective.na:g}, n = {self.objective.immersion_index:g}"]
        if self.kind == "flfm":
            from .lenslets import lenslet_centres
            from .theory import flfm_lenslets_across_pupil

            mla, o = self.mla, self.objective
            f = mla.focal_um
            fs = f"f = {f:g} um" if not isinstance(f, tuple) else f"f = {', '.join(f'{v:g}' for v in sorted(set(f)))} um"
            layout = (f"{len(mla.centres_um)} lenslets at mla.centres_um" if mla.centres_um else
                      f"{mla.grid} grid of {len(lenslet_centres(self))} lenslets"
                      + (f" ({mla.lenslets[0]} x {mla.lenslets[1]})" if mla.lenslets != (0, 0) else " (all the pupil reaches)"))
            nac = flfm_lenslets_across_pupil(o.na, o.magnification, mla.fourier_lens_focal_um, mla.pitch_um)
            lines += [
                f"  Fourier lens f2 = {mla.fourier_lens_focal_um:g} um after the tube lens f1 = {o.tube_lens_focal_um:g} um: "
                f"pupil diameter {2 * o.na * self.fourier_focal_um:.4g} um at the MLA ({nac:.3g} lenslets across)",
                f"  MLA: {layout}, {'circular' if mla.aperture == 'circle' else 'square'} lenslets of {mla.pitch_um:g} um, {fs}; sensor {self.mla_to_sensor_um:g} um behind it",
                f"  total magnification M_T = {self.lateral_magnification:.4g}, voxel {self.voxel_um:.4g} um "
                f"(camera pixel / M_T), elemental field of view d / M_T = {mla.pitch_um / self.lateral_magnification:.4g} um",
            ]
            if mla.field_stop_um > 0:
                lines.append(f"  field stop of {mla.field_stop_um:g} um at the native image plane: a field of "
                             f"{mla.field_stop_um / o.magnification:.4g} um in the sample (the volume outside is not reconstructed)")
        elif self.mla is not None:
            lines += [
                f"  MLA pitch {self.mla.pitch_um:g} um, f = {self.mla.focal_um:g} um (f/{self.mla.focal_um / self.mla.pitch_um:.3g}; matched f/{self.matched_f_number:.3g})",
                f"  {self.pixels_per_lenslet} px per lenslet, {self.n_lenslets[0]} x {self.n_lenslets[1]} lenslets, pupil radius {self.pupil_radius_um:.4g} um",
                f"  object-space lenslet pitch {self.lenslet_pitch_object_um:.4g} um, voxel {self.voxel_um:.4g} um ({self.voxels_per_lenslet} per lenslet)",
            ]
            if self.kind == "slfm":
                k = self.scan.steps
                lines.append(f"  scan: {k} x {k} positions ({self.scan.order} order), steps of d / {k} = "
                             f"{self.lenslet_pitch_object_um / k:.4g} um in the sample ({self.voxels_per_lenslet // k} voxel{'s' if self.voxels_per_lenslet > k else ''}); "
                             f"{k * k} camera frames per volume")
            if self.kind == "lfm-defocused":
                a, b = self.mla_offset_um, self.mla_to_sensor_um
                from .theory import lfm2_conjugate_shift_um

                conj = lfm2_conjugate_shift_um(a, self.objective.immersion_index, self.objective.magnification) + 0.0
                lines.append(
                    f"  MLA {a:g} um behind the native image plane (conjugate, paraxially, to z = -n a / M^2 = {conj:.4g} um), "
                    f"sensor {b:g} um behind the MLA" + (" (default f_ml: f-number matched)" if self.mla.sensor_distance_um == 0 else ""))
        else:
            lines.append(f"  voxel {self.voxel_um:.4g} um (camera pixel / M)")
        fy, fx = self.fov_um
        z = self.z_um
        lines += [f"  field of view {fy:.4g} x {fx:.4g} um, z {z[0]:g}..{z[-1]:g} um ({len(z)} planes)",
                  f"  volume {self.volume_shape}, image {self.image_shape}"]
        return "\n".join(lines)


def kernel_side_pixels(m: Microscope, z_um: float) -> int:
    """Upper bound of the side (pixels) of the PSF kernel of depth ``z_um``: ``optics.support.kernel_side_pixels``.

    Kept here for the memory estimate; the rule itself lives in ``optics.support`` (one home for the
    windows of the estimate and of the computation).
    """
    from .support import kernel_side_pixels as rule

    return rule(m, z_um)


def _unknown(key: str, allowed, what: str) -> ConfigError:
    short = key.split(".")[-1]
    cands = [a.split(".")[-1] for a in allowed]
    close = difflib.get_close_matches(short, cands, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(f"unknown {what} {key!r}{hint}; accepted: {', '.join(str(a) for a in allowed)}")


def load_config(path: str | os.PathLike) -> Microscope:
    """Read a Microscope from a TOML (``.toml``) or JSON (``.json``) file.

    Raises ConfigError naming the file if it cannot be read or parsed.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ConfigError(f"config file {str(p)!r} cannot be read: {e.strerror or e}") from e
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(raw.decode())
        elif p.suffix.lower() == ".toml":
            try:
                import tomllib
            except ImportError:  # Python 3.10
                import tomli as tomllib
            data = tomllib.loads(raw.decode())
        else:
            raise ConfigError(f"config file {str(p)!r}: unknown extension {p.suffix!r}; accepted: .toml, .json")
    except ConfigError:
        raise
    except Exception as e:
        raise ConfigError(f"config file {str(p)!r} cannot be parsed: {e}") from e
    try:
        return Microscope.from_dict(data)
    except ConfigError as e:
        raise ConfigError(f"{p.name}: {e}") from None


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):  # an inline table with bare keys (Noll indices)
        return "{" + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return repr(v)


def save_config(m: Microscope, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``m`` as TOML or JSON (by extension), atomically; refuses to overwrite unless asked."""
    from .io import atomic_write_bytes

    p = Path(path)
    d = m.to_dict()
    if p.suffix.lower() == ".json":
        text = json.dumps(d, indent=2)
    elif p.suffix.lower() == ".toml":
        parts = []
        for sec, keys in d.items():
            parts.append(f"[{sec}]")
            parts += [f"{k} = {_toml_value(v)}" for k, v in keys.items()]
            parts.append("")
        text = "\n".join(parts)
    else:
        raise ConfigError(f"path = {str(p)!r}: unknown extension {p.suffix!r}; accepted: .toml, .json")
    atomic_write_bytes(p, text.encode(), overwrite=overwrite)
    return p
