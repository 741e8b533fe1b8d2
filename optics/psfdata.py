"""The light-field PSF data object: kernels per depth and sub-lenslet voxel phase, with their geometry.

This is the contract between optics (which computes it, ``optics.compute_psf``) and
reconstruction (which wraps it in a linear operator).  The model is the periodic shift-variant
light-field PSF of Broxton et al. 2013 and Stefanoiu et al. 2019 (PHYSICS.md section 4):

* The volume (z, y, x) has ``s = voxels_per_lenslet`` voxels per lenslet laterally.  Voxel
  (iy, ix) belongs to lenslet (ly, lx) = (iy // s, ix // s) with phase (a, b) = (iy % s, ix % s);
  its source sits at ((a - (s-1)/2), (b - (s-1)/2)) * d / (M s) (µm, object space, image-oriented)
  from the lenslet's centre, whose image is the lenslet's centre pixel
  (ly * N + N // 2, lx * N + N // 2) with N = pixels per lenslet.
* ``kernels[iz][a, b]`` is the sensor intensity of a unit source at depth ``z_um[iz]`` and phase
  (a, b), on pixels centred on its lenslet's centre pixel: index (K // 2, K // 2) of a kernel of
  side K = (2R + 1) N is that centre pixel.  Values are the fraction of the power reaching the
  native image plane that lands in each pixel; ``discarded[iz, a, b]`` is the fraction lost to the
  crop.  Forward model: image = sum_z sum_ab K_{z,a,b} * (P_ab x_z), where P_ab puts each voxel
  of phase (a, b) on its lenslet's centre pixel.
* Wide-field is the degenerate case N = s = 1: one "lenslet" per camera pixel, one kernel per depth.

Files are ``.npz`` written atomically; ``cache_path`` names the cache entry of a config by its hash
and the model version (``model_version``: a revision number and a digest of the source of every
module that shapes the kernels), so a change in the model code never reuses old kernels.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import ConfigError, Microscope
from .io import atomic_write

__all__ = ["LightFieldPSF", "kernel_radii", "load_psf", "cache_dir", "cache_path", "model_version", "FORMAT_VERSION",
           "MODEL_REVISION"]

FORMAT_VERSION = 1
#: Raised by hand when the kernels change for a reason the source digest cannot see (a new default
#: in a dependency, say).  2: converged pixel integration, band-limited lenslets, ASM (issue 7).
#: 3: windows zero-padded to FFT sizes without primes > 13; cache key without the camera's shape.
#: 4: the Fourier LFM (kind "flfm"); new [mla] keys in the hash.
MODEL_REVISION = 4
#: The modules whose source shapes the kernels (configuration defaults, Debye field, windows, lenslets,
#: propagation, pixel integration, file layout).
MODEL_SOURCES = ("config.py", "debye.py", "lfpsf.py", "mla.py", "propagation.py", "support.py", "psfdata.py",
                 "flfm.py", "lenslets.py", "pupil.py", "debye2d.py")


@functools.lru_cache(maxsize=1)
def model_version() -> str:
    """``"<MODEL_REVISION>-<digest>"``: changes whenever the code that computes the kernels changes.

    The digest is the SHA-256 of the source files ``MODEL_SOURCES`` (a comment edit also changes it:
    a needless recomputation, never a stale kernel).
    """
    h = hashlib.sha256(str(MODEL_REVISION).encode())
    here = Path(__file__).resolve().parent
    for name in MODEL_SOURCES:
        h.update(name.encode())
        h.update((here / name).read_bytes())
    return f"{MODEL_REVISION}-{h.hexdigest()[:12]}"


def kernel_radii(kernels, pixels_per_lenslet: int) -> np.ndarray:
    """R_z of kernels (s, s, K_z, K_z) with K_z = (2 R_z + 1) N, one per depth (for every PSF-like
    object the operator takes: ``LightFieldPSF``, ``optics.scan.PhaseSpacePSF``, per-view PSFs)."""
    n = int(pixels_per_lenslet)
    return np.array([(k.shape[2] // n - 1) // 2 for k in kernels])


@dataclass(frozen=True, eq=False)
class LightFieldPSF:
    """Light-field (or wide-field) PSF kernels with the microscope they belong to.

    Attributes
    ----------
    microscope : Microscope
    z_um : ndarray, (nz,)
        Depths (µm), equal to ``microscope.z_um``.
    kernels : tuple of ndarray
        One float32 array per depth, shape (s, s, K_z, K_z) with K_z = (2 R_z + 1) N (odd).
    discarded : ndarray, (nz, s, s)
        Fraction of each kernel's energy outside its crop.
    meta : dict
        Free-form provenance (timings, method, version).
    """

    microscope: Microscope
    z_um: np.ndarray
    kernels: tuple
    discarded: np.ndarray
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        m = self.microscope
        z = np.asarray(self.z_um, dtype=np.float64)
        object.__setattr__(self, "z_um", z)
        object.__setattr__(self, "kernels", tuple(self.kernels))
        s, n = m.voxels_per_lenslet, m.pixels_per_lenslet
        if len(self.kernels) != len(z):
            raise ValueError(f"kernels has {len(self.kernels)} depths but z_um has {len(z)}")
        for iz, k in enumerate(self.kernels):
            if k.ndim != 4 or k.shape[:2] != (s, s) or k.shape[2] != k.shape[3]:
                raise ValueError(f"kernels[{iz}] has shape {k.shape}; expected ({s}, {s}, K, K)")
            side = k.shape[2]
            if side % n or (side // n) % 2 == 0:
                raise ValueError(f"kernels[{iz}] side {side} is not an odd multiple of {n} pixels per lenslet")
        disc = np.asarray(self.discarded, dtype=np.float64)
        if disc.shape != (len(z), s, s):
            raise ValueError(f"discarded has shape {disc.shape}; expected {(len(z), s, s)}")
        object.__setattr__(self, "discarded", disc)

    # ------------------------------------------------------------------ geometry
    @property
    def pixels_per_lenslet(self) -> int:
        return self.microscope.pixels_per_lenslet

    @property
    def voxels_per_lenslet(self) -> int:
        return self.microscope.voxels_per_lenslet

    @property
    def n_lenslets(self) -> tuple[int, int]:
        return self.microscope.n_lenslets

    @property
    def image_shape(self) -> tuple[int, int]:
        return self.microscope.image_shape

    @property
    def volume_shape(self) -> tuple[int, int, int]:
        return self.microscope.volume_shape

    @property
    def radius_lenslets(self) -> np.ndarray:
        """R_z of each depth: kernel side = (2 R_z + 1) N."""
        return kernel_radii(self.kernels, self.pixels_per_lenslet)

    @property
    def nbytes(self) -> int:
        return int(sum(k.nbytes for k in self.kernels))

    def phase_offset_um(self, a: int) -> float:
        """Object-space offset (µm) of voxel phase ``a`` from its lenslet's centre."""
        s = self.voxels_per_lenslet
        return (a - (s - 1) / 2) * self.microscope.voxel_um

    def kernel(self, iz: int, a: int, b: int) -> np.ndarray:
        """The sensor pattern (K, K) of phase (a, b) at depth index ``iz``."""
        return self.kernels[iz][a, b]

    # ------------------------------------------------------------------ I/O
    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write to ``path`` (.npz) atomically; refuses to replace an existing file unless asked."""
        arrays = {f"kernel_{i:04d}": k for i, k in enumerate(self.kernels)}
        header = {
            "format_version": FORMAT_VERSION,
            "config": self.microscope.to_dict(),
            "hash": self.microscope.hash,
            "model_version": self.meta.get("model_version"),
            "meta": self.meta,
        }

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez(
                    fh,
                    header=np.array(json.dumps(header)),
                    z_um=self.z_um,
                    discarded=self.discarded,
                    **arrays,
                )

        return atomic_write(path, write, overwrite=overwrite)


def load_psf(path: str | os.PathLike) -> LightFieldPSF:
    """Read a ``LightFieldPSF`` written by ``LightFieldPSF.save``."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"PSF file {str(p)!r} does not exist")
    try:
        with np.load(p, allow_pickle=False) as data:
            header = json.loads(str(data["header"]))
            if header.get("format_version") != FORMAT_VERSION:
                raise ConfigError(
                    f"PSF file {str(p)!r} has format_version {header.get('format_version')!r}; "
                    f"this lfmsim reads {FORMAT_VERSION}"
                )
            names = sorted(k for k in data.files if k.startswith("kernel_"))
            kernels = tuple(data[k] for k in names)
            z = data["z_um"]
            disc = data["discarded"]
    except (ConfigError, FileNotFoundError):
        raise
    except Exception as e:
        raise ValueError(f"PSF file {str(p)!r} cannot be read: {e}") from e
    m = Microscope.from_dict(header["config"])
    meta = dict(header.get("meta", {}))
    meta["model_version"] = header.get("model_version")
    return LightFieldPSF(m, z, kernels, disc, meta)


def cache_dir() -> Path:
    """Operator cache folder: ``$LFMSIM_CACHE_DIR``, else ``$XDG_CACHE_HOME/lfmsim`` or ``~/.cache/lfmsim``."""
    env = os.environ.get("LFMSIM_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lfmsim"


def cache_path(m: Microscope) -> Path:
    """Cache file of the PSF kernels of ``m``, keyed by ``m.kernel_hash`` (the config without the
    camera's shape: a crop and the full camera share kernels) and ``model_version()``."""
    return cache_dir() / f"psf-{m.kernel_hash}-{model_version()}.npz"
