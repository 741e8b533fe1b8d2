"""Command line of lfmsim's optics: list presets, compute light-field PSFs, simulate camera frames.

::

    python -m optics presets
    python -m optics psf CONFIG --out psf.tif [--operator-out op.npz] [--point X Y Z] [--overwrite]
    python -m optics simulate CONFIG --phantom beads|neurons|PATH.tif --out frame.tif
                              [--truth-out vol.tif] [--photons N] [--seed S] [--no-noise]
                              [--upsample auto|K] [--overwrite]

CONFIG is a TOML/JSON file (../shared/DESIGN.md) or a preset name.  Errors print one line
``error: ...`` on stderr and exit with status 2, before any heavy work and without writing a file;
existing outputs are only replaced with ``--overwrite``.  A command whose arrays would not fit in
the memory available (``optics.memory``) is refused the same way.  TIFFs carry their axes and
physical voxel sizes (µm, object space).  Every command takes ``-v/--verbose`` (log INFO) and
``--no-progress`` (no progress bars; ``--quiet`` is its deprecated alias), before or after the
command name.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

import numpy as np

from . import memory
from .config import ConfigError, Microscope, load_config

__all__ = ["main", "build_parser", "load_microscope"]

PHANTOMS = ("beads", "neurons")
DEFAULT_COUNT = {"beads": 20, "neurons": 5}
#: ``--upsample auto`` takes the largest of these factors the config allows
#: (voxels per lenslet x K <= pixels per lenslet), else 1.
AUTO_UPSAMPLE = (3, 2)


class CLIError(ValueError):
    """A command-line argument is invalid (the message names it)."""


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line ``error: ...`` message and exit status 2."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"error: {message} (see '{self.prog} --help')\n")


# ------------------------------------------------------------------------------------ helpers
def load_microscope(config: str) -> Microscope:
    """A config file (.toml/.json) if ``config`` names an existing file or has such a suffix, else a preset."""
    from . import presets

    p = Path(config)
    if p.is_file() or p.suffix.lower() in (".toml", ".json"):
        if not p.is_file():
            raise ConfigError(f"CONFIG = {config!r}: the config file does not exist")
        return load_config(p)
    try:
        return presets.get(config)
    except ConfigError as e:
        raise ConfigError(f"CONFIG = {config!r} is neither a config file (.toml/.json) nor a preset: {e}") from None


def _positive(name: str, value: float) -> float:
    if not math.isfinite(value) or value <= 0:
        raise CLIError(f"{name} = {value!r} is invalid: expected a finite number > 0")
    return value


def _outputs(args, *names: str) -> list[Path]:
    """Check the named output options: distinct, folder exists, not existing unless --overwrite."""
    from .io import check_writable

    paths: list[Path] = []
    for name in names:
        val = getattr(args, name.lstrip("-").replace("-", "_"))
        if val is None:
            continue
        p = Path(val)
        if any(p.resolve() == q.resolve() for q in paths):
            raise CLIError(f"{name} = {val!r} is invalid: it is the same file as another output")
        try:
            check_writable(p, overwrite=args.overwrite)
        except (FileExistsError, FileNotFoundError) as e:
            raise CLIError(f"{name}: {e}") from None
        paths.append(p)
    return paths


def _crop_centred(image: np.ndarray, cy: int, cx: int, side: int) -> np.ndarray:
    """``side`` x ``side`` window of ``image`` centred on pixel (cy, cx), zero outside the image."""
    out = np.zeros((side, side), dtype=image.dtype)
    h = side // 2
    y0, x0 = cy - h, cx - h
    ys, xs = max(0, y0), max(0, x0)
    ye, xe = min(image.shape[0], y0 + side), min(image.shape[1], x0 + side)
    if ye > ys and xe > xs:
        out[ys - y0 : ye - y0, xs - x0 : xe - x0] = image[ys:ye, xs:xe]
    return out


#: Side (pixels) of the window in which the PSF of a depth is computed and written (one home:
#: ``optics.memory.window_pixels``, which also sizes the memory estimate of the stack).
_window_pixels = memory.window_pixels


def _f_numbers(m: Microscope) -> str:
    """The lenslets' f-number, or the range of them (XLFM: several focal lengths)."""
    f = m.mla.focal_um
    lo, hi = (min(f), max(f)) if isinstance(f, tuple) else (f, f)
    d = m.mla.pitch_um
    return f"{lo / d:.3g}" if lo == hi else f"{lo / d:.3g}-{hi / d:.3g}"


def point_pattern(m: Microscope, point_um: tuple[float, float, float]) -> np.ndarray:
    """``sensor_pattern`` of one point (``m.image_shape``), in the operator's window for its depth."""
    from .lfpsf import sensor_pattern

    if m.mla is None:
        return sensor_pattern(m, point_um)
    window = _window_pixels(m, float(point_um[2])) // m.pixels_per_lenslet
    return sensor_pattern(m, point_um, window_lenslets=window)


def axial_psf_stack(m: Microscope) -> np.ndarray:
    """Sensor intensity of a point on the optical axis at each depth of ``m``'s grid, (z, y, x) float32.

    Each plane is ``point_pattern(m, (0, 0, z))`` cropped to the largest window of the grid,
    centred on the centre pixel of the middle lenslet (the middle pixel for wide-field); parts of
    the window beyond the sensor are zero.  For odd voxels per lenslet, plane z equals the centre
    phase's operator kernel ``compute_psf(m).kernels[iz][s//2, s//2]`` up to its energy crop.
    """
    n = m.pixels_per_lenslet
    ly, lx = m.n_lenslets
    cy, cx = (ly // 2) * n + n // 2, (lx // 2) * n + n // 2
    side = max(_window_pixels(m, float(z)) for z in m.z_um)
    stack = np.empty((len(m.z_um), side, side), dtype=np.float32)  # memory.psf_stack_bytes
    for iz, z in enumerate(m.z_um):
        stack[iz] = _crop_centred(point_pattern(m, (0.0, 0.0, float(z))), cy, cx, side)
    return stack


# ------------------------------------------------------------------------------------ commands
def cmd_presets(args) -> int:
    from . import presets

    rows = [("name", "kind", "objective", "pitch", "px/lenslet", "voxel", "FOV")]
    for name in presets.names():
        m = presets.get(name)
        cal = m.camera.calibrated
        if cal:  # a recorded camera: its nominal rectified frame
            m = m.nominal_rectified()
        o = m.objective
        fy, fx = m.fov_um
        rows.append((
            name,
            m.kind,
            f"{o.magnification:g}x/{o.na:g} n={o.immersion_index:g}",
            f"{m.mla.pitch_um:g} um f/{_f_numbers(m)}" if m.mla is not None else "-",
            (f"{m.pixels_per_lenslet} (rectified)" if cal else str(m.pixels_per_lenslet))
            if m.mla is not None and not m.shift_invariant else "-",
            f"{m.voxel_um:.4g} um",
            f"{fy:.4g} x {fx:.4g} um" if m.kind != "flfm" else
            f"{m.mla.pitch_um / m.lateral_magnification:.4g} um per view",
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


def cmd_psf(args) -> int:
    from .io import write_tiff

    m = load_microscope(args.config)
    point = None
    if args.point is not None:
        point = tuple(float(v) for v in args.point)
        if not all(math.isfinite(v) for v in point):
            raise CLIError(f"--point = {args.point} is invalid: expected three finite numbers X Y Z (µm)")
    out, *_ = _outputs(args, "--out", "--operator-out")
    if point is None:
        need, result = memory.estimate_psf_bytes(m), memory.psf_stack_bytes(m)
        job = f"psf of {args.config!r} ({len(m.z_um)} depths, a {m.image_shape} sensor)"
        advice = "reduce camera.shape or the z range (or raise volume.z_step_um)"
    else:
        need, result = memory.estimate_point_bytes(m, point), int(np.prod(m.image_shape)) * 4
        job, advice = f"psf --point of {args.config!r} (a {m.image_shape} sensor)", "reduce camera.shape"
    if args.operator_out is not None:
        m.check_operator_fits()
        need = max(need, result + memory.operator_bytes(m))
        job = f"{job} with --operator-out"
        advice += ", lower volume.voxels_per_lenslet or drop --operator-out"
    memory.check_memory(need, job, f"{advice}, or set {memory.ENV_MAX_MEMORY} (GiB) to allow more")
    voxel = (m.volume.z_step_um, m.pixel_object_um, m.pixel_object_um)
    if point is None:
        stack = axial_psf_stack(m)
        what = f"on-axis PSF at {len(m.z_um)} depths"
    else:
        stack = point_pattern(m, point)[None].astype(np.float32)
        what = f"sensor pattern of the point (x, y, z) = {point} um"
    psf = None
    if args.operator_out is not None:
        from .lfpsf import compute_psf

        psf = compute_psf(m, progress=not args.no_progress)
    write_tiff(out, stack, axes="ZYX", voxel_um=voxel, overwrite=args.overwrite)
    print(f"wrote {out}: {what}, shape {stack.shape} (z, y, x), pixel {voxel[1]:.4g} um (object space)")
    if psf is not None:
        op = psf.save(args.operator_out, overwrite=args.overwrite)
        print(f"wrote {op}: operator kernels, {len(psf.kernels)} depths x {m.voxels_per_lenslet}^2 phases, "
              f"{psf.nbytes / 1e6:.1f} MB")
    return 0


def _phantom(args, m: Microscope, rng: np.random.Generator, k: int) -> np.ndarray:
    from . import phantoms

    if args.phantom in PHANTOMS:
        count = DEFAULT_COUNT[args.phantom] if args.count is None else args.count
        if args.phantom == "beads":
            vol, _ = phantoms.random_beads(m, count, seed=rng, upsample=k)
        else:
            vol, _ = phantoms.neurons(m, count, seed=rng, upsample=k)
        return vol
    p = Path(args.phantom)
    if p.suffix.lower() not in (".tif", ".tiff"):
        raise CLIError(
            f"--phantom = {args.phantom!r} is invalid: expected 'beads', 'neurons' or the path of a (z, y, x) TIFF"
        )
    from .io import read_tiff

    try:
        vol = read_tiff(p)
    except (FileNotFoundError, ValueError) as e:
        raise CLIError(f"--phantom: {e}") from None
    want = phantoms.grid_shape(m, k)
    if vol.ndim == 2 and want[0] == 1:
        vol = vol[None]
    if vol.shape != want:
        if str(args.upsample).strip().lower() == "auto":
            kmax = m.pixels_per_lenslet // m.voxels_per_lenslet
            accepted = f"{phantoms.grid_shape(m, 1)} (z, y, x), the volume grid of the config" + (
                f", or that grid with y and x times K = 2..{kmax} (e.g. {phantoms.grid_shape(m, kmax)})"
                if kmax > 1 else "")
        else:
            accepted = (f"{want} (z, y, x), the volume grid of the config"
                        f"{f' upsampled {k}x (--upsample {k})' if k > 1 else ''}")
        raise CLIError(f"--phantom {str(p)!r} has shape {vol.shape}; expected {accepted}")
    return vol.astype(np.float32, copy=False)


def _parse_upsample(value: str) -> int | str:
    """``--upsample``: "auto" or an integer >= 1."""
    if value.strip().lower() == "auto":
        return "auto"
    try:
        k = int(value)
    except ValueError:
        k = None
    if k is None or k < 1:
        raise CLIError(f"--upsample = {value!r} is invalid: expected 'auto' or an integer >= 1")
    return k


def _tiff_shape(path: Path) -> tuple[int, ...] | None:
    """Shape of the first series of a TIFF without reading its pixels (None if unreadable)."""
    try:
        import tifffile

        with tifffile.TiffFile(path) as t:
            return tuple(t.series[0].shape)
    except Exception:  # read_tiff reports the problem with the file's name
        return None


def _auto_upsample(args, m: Microscope) -> int:
    """The factor of ``--upsample auto``; warns on stderr when it has to be 1 (the inverse crime).

    Beads and neurons: the largest of AUTO_UPSAMPLE that the config allows.  A TIFF phantom: the
    factor its lateral shape says (its y size / the config's), so a volume on the config's own
    grid still reads.
    """
    from . import phantoms

    s, n = m.voxels_per_lenslet, m.pixels_per_lenslet
    if args.phantom not in PHANTOMS:
        p = Path(args.phantom)
        shape = _tiff_shape(p) if p.suffix.lower() in (".tif", ".tiff") and p.is_file() else None
        if shape is None:
            return 1  # _phantom reports the bad or missing file
        for k in range(1, n * m.scan_steps // s + 1):
            want = phantoms.grid_shape(m, k)
            if shape == want or (want[0] == 1 and shape == want[1:]):
                if k == 1:
                    print("warning: --upsample auto: the --phantom TIFF is on the config's own grid, so the "
                          "simulation shares the reconstruction's lateral grid (the inverse crime); give a "
                          "phantom on a finer grid to avoid it", file=sys.stderr)
                return k
        return 1  # no upsampled grid fits: _phantom reports the shape
    for k in AUTO_UPSAMPLE:
        try:
            phantoms.fine_microscope(m, k)
            return k
        except ValueError:
            continue
    print(f"warning: --upsample auto: {s} voxels per lenslet x {min(AUTO_UPSAMPLE)} exceeds the {n} pixels "
          "per lenslet, so the simulation uses upsample 1 and shares the reconstruction's lateral grid "
          "(the inverse crime); lower volume.voxels_per_lenslet to simulate on a finer grid",
          file=sys.stderr)
    return 1


def cmd_simulate(args) -> int:
    from . import phantoms
    from .io import write_tiff
    from .simulation import check_volume, simulate

    m = load_microscope(args.config)
    _positive("--photons", args.photons)
    if args.count is not None and args.count < 0:
        raise CLIError(f"--count = {args.count} is invalid: expected an integer >= 0")
    k = _parse_upsample(args.upsample)
    if args.count is not None and args.phantom not in PHANTOMS:
        raise CLIError(f"--count = {args.count} is invalid with --phantom {args.phantom!r}: it applies to beads and neurons")
    if k == "auto":
        k = _auto_upsample(args, m)
    try:
        fine = phantoms.fine_microscope(m, k)
    except ValueError as e:
        raise CLIError(f"--upsample: {e}") from None
    out, *rest = _outputs(args, "--out", "--truth-out")
    fine.check_operator_fits()
    memory.check_memory(
        memory.estimate_simulate_bytes(m, k, phantom_from_file=args.phantom not in PHANTOMS),
        f"simulate of {args.config!r} (a {m.image_shape} sensor, {len(m.z_um)} depths, "
        f"{fine.voxels_per_lenslet} voxels per lenslet with --upsample {k})",
        memory.ADVICE,
    )
    rng = np.random.default_rng(args.seed)
    vol = _phantom(args, m, rng, k)
    try:
        check_volume(fine, vol, name="--phantom")
    except (ValueError, TypeError) as e:
        raise CLIError(str(e)) from None
    frame = simulate(fine, vol, photons_per_voxel=args.photons, noise=not args.no_noise, seed=rng,
                     progress=not args.no_progress)
    px = m.pixel_object_um
    scan = frame.ndim == 3  # a scanning LFM: its K^2 scan frames in acquisition order (optics.scan)
    write_tiff(out, frame, axes="TYX" if scan else "YX", voxel_um=((None,) if scan else ()) + (px, px),
               overwrite=args.overwrite)
    what = f"{frame.shape[0]} scan frames" if scan else "camera frame"
    print(f"wrote {out}: {what} {frame.shape} {frame.dtype}, {int(frame.max())} ADU peak "
          f"(simulated with --upsample {k})")
    if rest:
        truth = phantoms.bin_volume(vol, k) if k > 1 else vol
        write_tiff(rest[0], truth, axes="ZYX", voxel_um=(m.volume.z_step_um, m.voxel_um, m.voxel_um),
                   overwrite=args.overwrite)
        print(f"wrote {rest[0]}: ground-truth volume {truth.shape} (z, y, x), voxel {m.voxel_um:.4g} um")
    return 0


# ------------------------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m optics",
        description="lfmsim optics: wave-optics light-field microscope simulation. "
        "CONFIG is a .toml/.json config file or a preset name (see 'presets'). Lengths in µm.",
        epilog="examples:\n"
        "  python -m optics presets\n"
        "  python -m optics psf lfm-20x-0.5w --out psf.tif --operator-out op.npz\n"
        "  python -m optics psf my.toml --out pt.tif --point 3.5 0 -20\n"
        "  python -m optics simulate my.toml --phantom beads --count 50 --photons 20000 \\\n"
        "      --out frame.tif --truth-out truth.tif --seed 1\n"
        "Run 'python -m optics COMMAND --help' for a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common_flags(p, top=True)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    pr = sub.add_parser("presets", help="list the shipped microscope presets",
                        description="List the shipped presets: name, kind, objective, lenslet pitch and "
                        "f-number, pixels per lenslet, voxel and field of view (object space).")
    _common_flags(pr)

    ps = sub.add_parser(
        "psf", help="light-field PSF on the sensor (and the operator kernels)",
        description="Write the intensity PSF seen at the sensor for a point on the optical axis at each "
        "depth of the volume grid, as a (z, y, x) TIFF (pixel = camera pixel / M), or with --point "
        "the sensor pattern of one point as (1, y, x). For a wide-field config this is the ordinary "
        "3-D PSF.",
    )
    ps.add_argument("config", metavar="CONFIG", help="config file (.toml/.json) or preset name")
    ps.add_argument("--out", required=True, metavar="PSF.tif", help="output TIFF (z, y, x)")
    ps.add_argument("--operator-out", metavar="OP.npz",
                    help="also compute all operator kernels (every depth and voxel phase) and save them (.npz)")
    ps.add_argument("--point", nargs=3, type=float, metavar=("X", "Y", "Z"),
                    help="source position in object space (µm): write its full sensor pattern as one plane")
    _common(ps)

    sm = sub.add_parser(
        "simulate", help="simulate a raw camera frame of a phantom",
        description="Simulate a raw camera frame (uint16 ADU): phantom volume -> light-field PSF -> "
        "photons -> shot and read noise (camera section of the config).",
    )
    sm.add_argument("config", metavar="CONFIG", help="config file (.toml/.json) or preset name")
    sm.add_argument("--phantom", required=True, metavar="beads|neurons|PATH.tif",
                    help="random beads, neuron-like cells, or a (z, y, x) TIFF on the config's volume grid")
    sm.add_argument("--out", required=True, metavar="FRAME.tif", help="output camera frame TIFF (y, x)")
    sm.add_argument("--truth-out", metavar="VOL.tif", help="also write the ground-truth volume (z, y, x)")
    sm.add_argument("--photons", type=float, default=1000.0, metavar="N",
                    help="photons per exposure sent into the objective by a voxel of value 1 (default 1000)")
    sm.add_argument("--seed", type=int, default=0, metavar="S", help="random seed of phantom and noise (default 0)")
    sm.add_argument("--count", type=int, metavar="N",
                    help=f"number of beads or cells (default {DEFAULT_COUNT['beads']} beads, "
                    f"{DEFAULT_COUNT['neurons']} cells)")
    sm.add_argument("--upsample", default="auto", metavar="auto|K",
                    help="simulate on a K-times finer lateral grid than the reconstruction's, so that the "
                    "simulation is not the reconstruction's own model (the inverse crime); --truth-out is "
                    "binned back to the config's grid. Default auto: the largest of "
                    f"{', '.join(map(str, AUTO_UPSAMPLE))} with voxels per lenslet x K <= pixels per lenslet "
                    "(a TIFF phantom: the factor of its shape), else 1 with a warning")
    sm.add_argument("--no-noise", action="store_true", help="noise-free frame (expected ADU, rounded)")
    _common(sm)
    return p


def _common_flags(p: argparse.ArgumentParser, *, top: bool = False) -> None:
    """-v/--verbose and --no-progress (with the deprecated --quiet), on the main parser (``top``)
    and on every command, so that both ``python -m optics -v psf ...`` and ``... psf -v`` work.
    A command's copies default to SUPPRESS so they do not reset what was given before its name."""
    default = {} if top else {"default": argparse.SUPPRESS}
    p.add_argument("-v", "--verbose", action="store_true", help="log progress messages (INFO)", **default)
    p.add_argument("--no-progress", dest="no_progress", action="store_true", help="no progress bars", **default)
    p.add_argument("--quiet", dest="no_progress", action="store_true", help=argparse.SUPPRESS, **default)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    _common_flags(p)


_COMMANDS = {"presets": cmd_presets, "psf": cmd_psf, "simulate": cmd_simulate}


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2)
        return int(e.code or 0)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return _COMMANDS[args.command](args)
    except (CLIError, ConfigError, ValueError, TypeError, FileExistsError, FileNotFoundError, OSError) as e:
        msg = " ".join(str(e).split())
        print(f"error: {msg}", file=sys.stderr)
        return 2
    except MemoryError as e:  # the estimate (optics.memory) missed; say so in one line
        detail = " ".join(str(e).split())
        print(f"error: out of memory in 'python -m optics {args.command}'{f' ({detail})' if detail else ''}: "
              f"the job needs more memory than is free; {memory.SIZE_ADVICE}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
