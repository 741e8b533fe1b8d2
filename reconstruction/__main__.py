"""Command line: ``python -m reconstruction CONFIG FRAME.tif --out VOLUME.tif [options]``.

Reads a light-field frame (Y, X) or a time series (t, Y, X) from a TIFF, deconvolves it with
Richardson-Lucy (``reconstruction.reconstruct``) and writes a ZYX (or TZYX) float32 TIFF with the
voxel sizes in µm.  Every input is checked before any work; bad input prints ``error: ...`` and
exits with status 2 without writing anything.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

EPILOG = """\
Input units: integer TIFFs are raw camera frames (camera.offset_adu is subtracted and the values
divided by gain x QE, giving photons); float TIFFs are taken as linear and must be >= 0.
Override with --raw / --linear.  A full-sensor frame (camera.shape) is centre-cropped to the
whole-lenslet image.  A (t, Y, X) stack gives a (t, z, y, x) volume; --frame refuses stacks and
--stack refuses single frames.
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m reconstruction", description=__doc__.split("\n\n")[0],
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="microscope config (.toml/.json) or preset name")
    p.add_argument("frame", help="light-field frame (Y, X) or stack (t, Y, X), TIFF")
    p.add_argument("--out", required=True, help="output volume TIFF (ZYX, or TZYX for a stack)")
    p.add_argument("--iterations", type=int, default=8, help="Richardson-Lucy iterations (default 8)")
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    p.add_argument("--filter", choices=("none", "lanczos"), default="none",
                   help="S19 depth-adaptive anti-aliasing filter (light field only)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--checkpoint", help="resumable checkpoint (.npz) written during the run")
    p.add_argument("--checkpoint-every", type=int, default=10)
    units = p.add_mutually_exclusive_group()
    units.add_argument("--raw", dest="raw", action="store_true", default=None, help="input is camera ADU")
    units.add_argument("--linear", dest="raw", action="store_false", help="input is linear (photons), >= 0")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--frame", dest="expect", action="store_const", const="frame", default="any",
                      help="require a single frame")
    kind.add_argument("--stack", dest="expect", action="store_const", const="stack", help="require a (t, Y, X) stack")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from optics.config import ConfigError
    from optics.io import check_writable, read_tiff, write_tiff

    from .api import load_microscope, reconstruct, validate_image
    from .backend import DeviceError, get_device
    from .deconvolution import CheckpointError

    try:
        if args.iterations < 0:
            raise ValueError(f"--iterations = {args.iterations} is invalid: expected an integer >= 0")
        if args.checkpoint_every < 1:
            raise ValueError(f"--checkpoint-every = {args.checkpoint_every} is invalid: expected an integer >= 1")
        out = Path(args.out)
        if out.suffix.lower() not in (".tif", ".tiff"):
            raise ValueError(f"--out = {args.out!r} is invalid: expected a .tif or .tiff file name")
        check_writable(out, overwrite=args.overwrite)
        if args.checkpoint and Path(args.checkpoint).resolve() == out.resolve():
            raise ValueError("--checkpoint must differ from --out")
        m = load_microscope(args.config)
        if args.filter == "lanczos" and m.mla is None:
            raise ValueError("--filter lanczos is invalid for a wide-field microscope: expected none")
        frame = read_tiff(args.frame)
        image, is_stack = validate_image(m, frame, raw=args.raw, expect=args.expect)
        get_device(args.device)
        volume = reconstruct(m, image, iterations=args.iterations, device=args.device, filter=args.filter,
                             progress=not args.no_progress, raw=False, checkpoint=args.checkpoint,
                             checkpoint_every=args.checkpoint_every)
        vz, vy, vx = m.volume.z_step_um, m.voxel_um, m.voxel_um
        axes, sizes = ("TZYX", (None, vz, vy, vx)) if is_stack else ("ZYX", (vz, vy, vx))
        write_tiff(out, volume, axes=axes, voxel_um=sizes, overwrite=args.overwrite,
                   metadata={"iterations": args.iterations, "filter": args.filter})
    except (ValueError, ConfigError, FileNotFoundError, FileExistsError, DeviceError, CheckpointError,
            MemoryError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({axes}, shape {tuple(volume.shape)}, voxel {vy:.4g} x {vx:.4g} um, z step {vz:g} um)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
