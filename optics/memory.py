"""Memory a command will allocate, estimated before any heavy work, and the check against the machine.

One home for the rule of DESIGN.md's conventions ("bad input raises an exception ... before any
heavy allocation") applied to size: each ``estimate_*`` function adds up the arrays a command
of ``python -m optics`` holds at its peak, from the config alone, and ``check_memory`` compares
the sum with the memory available and raises ``optics.config.ConfigError`` naming the GiB needed,
the GiB available and what to change.  ``Microscope.check_operator_fits`` (a fixed cap on the
operator kernels alone) stays as it is; this module covers everything else a command allocates.

Memory available: ``$LFMSIM_MAX_MEMORY_GB`` (GiB, 2**30 bytes) when set, else ``MemAvailable``
of ``/proc/meminfo`` (Linux), else the physical memory from ``os.sysconf``; if none of them can
be read the check passes.

The estimates are upper bounds of the arrays numpy allocates (the test suite compares them with
``tracemalloc`` peaks on small configs), not of the interpreter or the FFT library's scratch.
"""

from __future__ import annotations

import math
import os

from .config import ConfigError, Microscope

__all__ = [
    "GIB",
    "ENV_MAX_MEMORY",
    "ADVICE",
    "SIZE_ADVICE",
    "window_pixels",
    "propagation_work_bytes",
    "psf_stack_bytes",
    "estimate_psf_bytes",
    "estimate_point_bytes",
    "operator_bytes",
    "estimate_simulate_bytes",
    "available_bytes",
    "check_memory",
]

GIB = 2**30
#: Environment variable overriding the memory available (GiB).
ENV_MAX_MEMORY = "LFMSIM_MAX_MEMORY_GB"
#: What to change when a command does not fit (the knobs that size its arrays).
SIZE_ADVICE = ("reduce camera.shape, the z range (or raise volume.z_step_um), volume.voxels_per_lenslet "
               "or --upsample")
#: ``SIZE_ADVICE`` and the override, the default advice of ``check_memory``.
ADVICE = f"{SIZE_ADVICE}, or set {ENV_MAX_MEMORY} (GiB) to allow more"


# Bytes per field sample of one propagation window, from what optics.lfpsf allocates (measured
# with tracemalloc).  Evaluating the radial tables (peak): the radius (float64), the complex128
# components and the spline's temporaries, with, for the vectorial model, the angle arrays
# (inverse radius, cos/sin phi, cos/sin 2 phi) and the five outputs; what stays referenced after
# (the complex128 components of the last source).  Propagating: building the MLA transmittance
# and transfer function (float64 temporaries; complex64 each kept), and per component the
# complex64 field, the two FFT outputs (complex64; scipy.fft does not work in place here) and the
# float32 intensity temporaries.
_EVAL_SCALAR, _KEPT_SCALAR = 40, 16
_EVAL_VECTORIAL, _KEPT_VECTORIAL = 184, 80
_TF_BUILD, _TF_KEPT = 112, 40
_FIELD = 8
_PROPAGATE = 48
#: Headroom on the work arrays (the exact arrays, images and stacks, are counted as they are):
#: the propagation code is tuned now and then, and the FFT library's scratch is not counted.
_WORK_MARGIN = 1.2


# ----------------------------------------------------------------------------- geometry
def window_pixels(m: Microscope, z_um: float) -> int:
    """Side (pixels) of the window in which the PSF of depth ``z_um`` is computed and written:
    ``optics.support.kernel_side_pixels`` (the one home of the window rules)."""
    from .support import kernel_side_pixels

    return kernel_side_pixels(m, z_um)


def _components(m: Microscope) -> int:
    return 5 if m.simulation.vectorial else 1


def _eval_bytes(m: Microscope) -> int:
    return _EVAL_VECTORIAL if m.simulation.vectorial else _EVAL_SCALAR


def _kept_bytes(m: Microscope) -> int:
    return _KEPT_VECTORIAL if m.simulation.vectorial else _KEPT_SCALAR


def _propagate_bytes(nc: int, grid: int, batch: int, defocused: bool = False) -> int:
    """Bytes while propagating ``batch`` fields of ``nc`` components on a window of ``grid``
    samples: the fields, and the larger of building the window's transmittance and transfer
    function and the FFTs (with those two kept).  Defocused LFM: a second transfer function
    (NIP -> MLA) and the transmittance on the whole padded grid (complex64 each), and one more
    FFT pass over the batch (complex64)."""
    extra = (grid * 2 * _FIELD + batch * nc * 2 * _FIELD) if defocused else 0
    return batch * nc * _FIELD + max(grid * _TF_BUILD, grid * _TF_KEPT + batch * nc * _PROPAGATE) + extra


def _table_bytes(m: Microscope, z_um: float, r_max_obj_um: float, cached: int = 0) -> int:
    """Radial table of ``optics.lfpsf._RadialTable``: the Bessel matrices (radii x nodes, float64)
    being built with their argument matrix and its temporaries, plus ``cached`` sets kept by its
    cache from earlier depths (``debye.bessel_matrices`` keeps 2: at most 1 besides the new one)."""
    from .lfpsf import _RadialTable

    h, r_max, need = _RadialTable.grid(m, z_um, r_max_obj_um)
    count = 128 * math.ceil(need / 128)
    radii = int(r_max / h) + 5
    mats = 3 if m.simulation.vectorial else 1
    return ((1 + min(cached, 1)) * mats + 2) * radii * count * 8


def propagation_work_bytes(m: Microscope, z_um: float, offset_um: tuple[float, float] = (0.0, 0.0), *,
                           cached_tables: int = 0, reach_pixels: int | None = None) -> int:
    """Work arrays of ``optics.lfpsf.sensor_pattern`` for one source at depth ``z_um`` whose image
    is ``offset_um`` (y, x; µm, image space) from its lenslet's centre (wide-field: the object-space
    offset from its pixel's centre; (0, 0) evaluates one octant of the patch).

    The larger of the field evaluation and the propagation, plus the radial table
    (``cached_tables`` more Bessel matrix sets kept from earlier depths).
    """
    from .lfpsf import field_oversampling, pixel_nodes

    q = field_oversampling(m)
    nc = _components(m)
    if m.kind == "flfm":  # one window on the axis; the pupil field evaluated in row blocks
        from .flfm import sensor_window
        from .lfpsf import fast_pixels

        side = sensor_window(m, z_um, max(abs(float(o)) for o in offset_um))
        n = side * q
        grid = (fast_pixels(side, q) * q) ** 2
        evaluate = n * n * _FIELD + min(n * n, 4_000_000) * _eval_bytes(m)
        # the window's transmittance and aperture (kept), its padded field, and the FFTs
        propagate = n * n * (_FIELD + 4) + _propagate_bytes(1, grid, grid)
        return int(_WORK_MARGIN * (max(evaluate, propagate) + side * side * 8))
    if m.mla is None:
        k = window_pixels(m, z_um)
        g = len(pixel_nodes(q)[0])
        ky, kx = min(k, m.image_shape[0]), min(k, m.image_shape[1])  # the window's part on the image
        if offset_um[0] == 0 and offset_um[1] == 0 and (ky, kx) == (k, k):  # one octant of the nodes
            h = k // 2
            samples = (h + 1) * (h + 2) // 2 * g * g
        else:
            samples = ky * kx * g * g  # the Gauss-Legendre nodes of the patch's pixels on the image
        p = m.pixel_object_um
        # farthest pixel evaluated from the source's: half the image for the on-axis stack (offset 0),
        # the whole image for a point anywhere on it
        centred = offset_um[0] == 0 and offset_um[1] == 0
        if reach_pixels is None:
            reach_pixels = max(m.image_shape) // 2 + 1 if centred else max(m.image_shape)
        reach = min(k // 2, int(reach_pixels))
        table = _table_bytes(m, z_um, (reach * p + p) * math.sqrt(2) + math.hypot(*offset_um), cached_tables)
        # the nodes' radii, the intensity interpolated from the fine radial profile and its
        # weighted product (float64 each); the profile itself is a few thousand radii
        return int(_WORK_MARGIN * (samples * (8 + 8 + 8) + table))
    w = window_pixels(m, z_um) // m.pixels_per_lenslet
    n = w * m.pixels_per_lenslet * q
    dx = m.camera.pixel_um / q
    off = [abs(float(o)) / dx for o in offset_um]
    from .lfpsf import fast_pixels

    grid = (fast_pixels(w * m.pixels_per_lenslet, q) * q) ** 2  # the zero-padded FFT grid
    if all(abs(o - round(o)) < 1e-9 for o in off):  # one evaluation on an enlarged grid, kept (complex64)
        big = (n + 2 * int(round(max(off)))) ** 2
        evaluate = big * (_eval_bytes(m) + _FIELD * nc)
        propagate = big * _FIELD * nc + _propagate_bytes(nc, grid, grid, m.kind == "lfm-defocused")
    else:  # evaluated per source into the field grid
        evaluate = grid * (_eval_bytes(m) + _FIELD * nc)
        propagate = grid * _kept_bytes(m) + _propagate_bytes(nc, grid, grid, m.kind == "lfm-defocused")
    from .lfpsf import _table_radius, pattern_table_reach_um

    table = _table_bytes(m, z_um, _table_radius(m, w, pattern_table_reach_um(m)), cached_tables)
    return int(_WORK_MARGIN * (max(evaluate, propagate) + table))


# ----------------------------------------------------------------------------- psf command
def psf_stack_bytes(m: Microscope) -> int:
    """The (z, y, x) float32 stack of ``python -m optics psf``: nz x side^2 x 4, side the largest window."""
    side = max(window_pixels(m, float(z)) for z in m.z_um)
    return len(m.z_um) * side * side * 4


def estimate_psf_bytes(m: Microscope) -> int:
    """Peak bytes of the on-axis PSF stack (``optics.__main__.axial_psf_stack``).

    The float32 stack, plus, for the plane being built, one float64 sensor image
    (``m.image_shape``), its float64 crop (side^2) and the propagation work of that depth.
    """
    side = max(window_pixels(m, float(z)) for z in m.z_um)
    image = int(math.prod(m.image_shape)) * 8
    work = max(propagation_work_bytes(m, float(z), cached_tables=1) for z in m.z_um)
    return psf_stack_bytes(m) + image + side * side * 8 + work


def estimate_point_bytes(m: Microscope, point_um: tuple[float, float, float]) -> int:
    """Peak bytes of ``python -m optics psf --point X Y Z``: the float64 sensor image, its float32
    copy written out, and the propagation work of the point's window."""
    x, y, z = (float(v) for v in point_um)
    if m.kind == "flfm":  # image-space shift of the elemental images (y, x)
        offset = (m.lateral_magnification * y, m.lateral_magnification * x)
        reach = None
    elif m.mla is not None:
        d, mag = m.mla.pitch_um, m.objective.magnification
        offset = (mag * y - round(mag * y / d) * d, mag * x - round(mag * x / d) * d)
        reach = None
    else:  # wide-field: off a pixel centre the patch is evaluated where it lands on the image
        p = m.pixel_object_um
        offset = (y - round(y / p) * p, x - round(x / p) * p)
        (ny, nx), (ly, lx) = m.image_shape, m.n_lenslets
        cy, cx = ly // 2 + round(y / p), lx // 2 + round(x / p)
        reach = max(abs(cy), abs(ny - 1 - cy), abs(cx), abs(nx - 1 - cx))
    pixels = int(math.prod(m.image_shape))
    return pixels * (8 + 4) + propagation_work_bytes(m, z, offset, reach_pixels=reach)


def operator_bytes(m: Microscope, *, build: bool | None = None) -> int:
    """Peak bytes of ``optics.compute_psf(m)``: the float32 kernels (``m.estimate_operator_bytes()``)
    and, unless they come from the cache (``build=None``: when no cache file exists), the work
    of building one depth: its window patterns (float64, one per distinct phase), a batch of
    field grids (at most ``optics.lfpsf._BATCH_SAMPLES`` samples) and the field evaluation."""
    kernels = m.estimate_operator_bytes()
    if build is None:
        from .psfdata import cache_path

        build = not cache_path(m).is_file()
    if not build:
        return kernels
    if m.kind == "flfm":  # depths side by side (optics.flfm.flfm_kernels), each on the largest window
        from .flfm import kernel_threads

        return kernels + kernel_threads(m) * max(propagation_work_bytes(m, float(z)) for z in m.z_um)
    if m.mla is None:
        return kernels + max(propagation_work_bytes(m, float(z)) for z in m.z_um)
    from .lfpsf import (
        _BATCH_SAMPLES,
        _fundamental_phases,
        _table_radius,
        fast_pixels,
        field_oversampling,
        pattern_table_reach_um,
        worker_threads,
    )

    q, npx, s = field_oversampling(m), m.pixels_per_lenslet, m.voxels_per_lenslet
    nc = _components(m)
    npos = len(_fundamental_phases(s))
    threads = min(worker_threads(), npos)
    # one radial table for all depths: the largest window's radius and the largest node count
    w_max = max(window_pixels(m, float(z)) for z in m.z_um) // npx
    z_far = max(abs(float(z)) for z in m.z_um)
    table = _table_bytes(m, z_far, _table_radius(m, w_max, pattern_table_reach_um(m)))  # offsets <= d / 2
    work = 0
    for z in m.z_um:
        w = window_pixels(m, float(z)) // npx
        n = w * npx * q
        npad = fast_pixels(w * npx, q) * q  # the zero-padded FFT grid
        big = (n + npx * q) ** 2  # the enlarged grid: offsets up to half a lenslet
        per_thread = min(-(-npos // threads), max(1, _BATCH_SAMPLES // (threads * nc * n * n)))
        batch = threads * per_thread * npad * npad
        patterns = npos * (w * npx) ** 2 * 8 * 2  # patterns and their crop
        evaluate = big * (_eval_bytes(m) + _FIELD * nc)
        propagate = big * _FIELD * nc + _propagate_bytes(nc, npad * npad, batch, m.kind == "lfm-defocused")
        work = max(work, int(_WORK_MARGIN * (max(evaluate, propagate) + patterns + table)))
    return kernels + work


# ----------------------------------------------------------------------------- simulate command
def estimate_simulate_bytes(m: Microscope, upsample: int = 1, *, phantom_from_file: bool = False) -> int:
    """Peak bytes of ``python -m optics simulate`` with an ``upsample``-times finer model.

    The phantom on the fine grid (``optics.phantoms.grid_shape(m, k)``, float32, plus the float64
    accumulators of ``phantoms._deposit`` while it is built, or with ``phantom_from_file`` the
    TIFF's array while it is converted), the operator of the fine model
    (``operator_bytes``), the reference forward projection's image and its per-phase source image
    (float32) and FFT temporaries (``scipy.signal.fftconvolve`` on the image padded by the largest
    kernel), the float64 photon image and its scaled copy, the camera model's float64 and int64
    temporaries, and the uint16/uint32 frame.
    """
    from . import phantoms

    k = int(upsample)
    fine = phantoms.fine_microscope(m, k)
    voxels = int(math.prod(phantoms.grid_shape(m, k)))
    volume = voxels * 4
    # _deposit's float64 volume and bincount; or a TIFF's own array (up to float64) being copied
    build = voxels * (8 + 8) if not phantom_from_file else voxels * 8
    check = voxels  # the boolean isfinite mask of check_volume
    ny, nx = m.image_shape
    pixels = ny * nx
    side = max(window_pixels(fine, float(z)) for z in fine.z_um)
    padded = (ny + side - 1) * (nx + side - 1)
    forward = pixels * (4 + 4 + 4) + padded * (8 + 8 + 8 + 4)  # image, source, crop; rfft x2, product, irfft
    photons = pixels * 8 * 2
    camera = pixels * 8 * 5 + pixels * 4  # poisson, float64, normal, scaled, rint/clip; the frame
    transient = max(build, operator_bytes(fine) + max(check, forward + photons, photons + camera))
    return volume + transient


# ----------------------------------------------------------------------------- the check
def available_bytes() -> tuple[int | None, str]:
    """Memory this process may use (bytes) and where the number comes from.

    ``$LFMSIM_MAX_MEMORY_GB`` (GiB) if set, else ``MemAvailable`` of /proc/meminfo, else the
    physical memory from ``os.sysconf``; ``(None, ...)`` when none can be read.
    """
    env = os.environ.get(ENV_MAX_MEMORY)
    if env not in (None, ""):
        try:
            gb = float(env)
        except ValueError:
            gb = float("nan")
        if not math.isfinite(gb) or gb <= 0:
            raise ConfigError(f"{ENV_MAX_MEMORY} = {env!r} is invalid: expected a number of GiB > 0")
        return int(gb * GIB), ENV_MAX_MEMORY
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "MemAvailable in /proc/meminfo"
    except (OSError, ValueError, IndexError):
        pass
    for name in ("SC_AVPHYS_PAGES", "SC_PHYS_PAGES"):
        try:
            pages, size = os.sysconf(name), os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            continue
        if pages > 0 and size > 0:
            return int(pages) * int(size), "physical memory (os.sysconf)"
    return None, "unknown"


def _gib(nbytes: float) -> str:
    v = nbytes / GIB
    return f"{v:.0f} GiB" if v >= 100 else f"{v:.3g} GiB"


def check_memory(need_bytes: int, what: str, advice: str = ADVICE) -> None:
    """Raise ConfigError if ``need_bytes`` exceed the memory available (``available_bytes``).

    The message names ``what`` needs it, the GiB needed and available, and ``advice``.
    """
    avail, source = available_bytes()
    if avail is None or need_bytes <= avail:
        return
    raise ConfigError(
        f"{what} needs about {_gib(need_bytes)} of memory, more than the {_gib(avail)} available "
        f"({source}): {advice}"
    )
