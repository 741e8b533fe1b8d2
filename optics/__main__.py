"""Command line of lfmsim's optics: list presets, compute light-field PSFs, simulate camera frames.

::

    python -m optics presets
    python -m optics psf CONFIG --out psf.tif [--operator-out op.npz] [--point X Y Z] [--overwrite]
    python -m optics simulate CONFIG --phantom beads|neurons|PATH.tif --out frame.tif
                              [--truth-out vol.tif] [--photons N] [--seed S] [--no-noise] [--overwrite]

CONFIG is a TOML/JSON file (../shared/DESIGN.md) or a preset name.  Errors print one line
``error: ...`` on stderr and exit with status 2, before any heavy work and without writing a file;
existing outputs are only replaced with ``--overwrite``.  TIFFs carry their axes and physical
voxel sizes (µm, object space).
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

import numpy as np

from .config import ConfigError, Microscope, load_config

__all__ = ["main", "build_parser", "load_microscope"]

PHANTOMS = ("beads", "neurons")
DEFAULT_COUNT = {"beads": 20, "neurons": 5}


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


def _window_pixels(m: Microscope, z_um: float) -> int:
    """Side (pixels) of the window in which the PSF of depth ``z_um`` is computed and written.

    LFM: the propagation window of the operator kernels, ``optics.lfpsf.window_lenslets(m, z)``
    lenslets; wide-field: ``optics.config.kernel_side_pixels``.
    """
    if m.mla is None:
        from .config import kernel_side_pixels

        return kernel_side_pixels(m, z_um)
    from .lfpsf import window_lenslets

    return window_lenslets(m, z_um) * m.pixels_per_lenslet


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
    planes = [_crop_centred(point_pattern(m, (0.0, 0.0, float(z))), cy, cx, side) for z in m.z_um]
    return np.stack(planes).astype(np.float32)


# ------------------------------------------------------------------------------------ commands
def cmd_presets(args) -> int:
    from . import presets

    rows = [("name", "kind", "objective", "pitch", "px/lenslet", "voxel", "FOV")]
    for name in presets.names():
        m = presets.get(name)
        o = m.objective
        fy, fx = m.fov_um
        rows.append((
            name,
            m.kind,
            f"{o.magnification:g}x/{o.na:g} n={o.immersion_index:g}",
            f"{m.mla.pitch_um:g} um f/{m.mla.focal_um / m.mla.pitch_um:.3g}" if m.mla is not None else "-",
            str(m.pixels_per_lenslet) if m.mla is not None else "-",
            f"{m.voxel_um:.4g} um",
            f"{fy:.4g} x {fx:.4g} um",
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
    if args.operator_out is not None:
        m.check_operator_fits()
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

        psf = compute_psf(m, progress=not args.quiet)
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
        raise CLIError(
            f"--phantom {str(p)!r} has shape {vol.shape}; expected {want} (z, y, x), the volume grid of "
            f"the config{f' upsampled {k}x' if k > 1 else ''}"
        )
    return vol.astype(np.float32, copy=False)


def cmd_simulate(args) -> int:
    from . import phantoms
    from .io import write_tiff
    from .simulation import check_volume, simulate

    m = load_microscope(args.config)
    _positive("--photons", args.photons)
    if args.count is not None and args.count < 0:
        raise CLIError(f"--count = {args.count} is invalid: expected an integer >= 0")
    if args.upsample < 1:
        raise CLIError(f"--upsample = {args.upsample} is invalid: expected an integer >= 1")
    try:
        fine = phantoms.fine_microscope(m, args.upsample)
    except ValueError as e:
        raise CLIError(f"--upsample: {e}") from None
    if args.count is not None and args.phantom not in PHANTOMS:
        raise CLIError(f"--count = {args.count} is invalid with --phantom {args.phantom!r}: it applies to beads and neurons")
    out, *rest = _outputs(args, "--out", "--truth-out")
    fine.check_operator_fits()
    rng = np.random.default_rng(args.seed)
    vol = _phantom(args, m, rng, args.upsample)
    try:
        check_volume(fine, vol, name="--phantom")
    except (ValueError, TypeError) as e:
        raise CLIError(str(e)) from None
    frame = simulate(fine, vol, photons_per_voxel=args.photons, noise=not args.no_noise, seed=rng,
                     progress=not args.quiet)
    px = m.pixel_object_um
    write_tiff(out, frame, axes="YX", voxel_um=(px, px), overwrite=args.overwrite)
    print(f"wrote {out}: camera frame {frame.shape} {frame.dtype}, {int(frame.max())} ADU peak")
    if rest:
        truth = phantoms.bin_volume(vol, args.upsample) if args.upsample > 1 else vol
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
    p.add_argument("-v", "--verbose", action="store_true", help="log progress messages")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    sub.add_parser("presets", help="list the shipped microscope presets",
                   description="List the shipped presets: name, kind, objective, lenslet pitch and "
                   "f-number, pixels per lenslet, voxel and field of view (object space).")

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
    sm.add_argument("--upsample", type=int, default=1, metavar="K",
                    help="simulate on a K-times finer lateral grid (no inverse crime); --truth-out is binned "
                    "back to the config's grid (default 1)")
    sm.add_argument("--no-noise", action="store_true", help="noise-free frame (expected ADU, rounded)")
    _common(sm)
    return p


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


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
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
