"""Command line: ``python -m reconstruction CONFIG FRAME.tif --out VOLUME.tif [options]``.

Reads a light-field frame (Y, X) or a time series (t, Y, X) from a TIFF, deconvolves it with
Richardson-Lucy (``reconstruction.reconstruct``) and writes a ZYX (or TZYX) float32 TIFF with the
voxel sizes in µm.  Every input is checked before any work; bad input prints ``error: ...`` and
exits with status 2 without writing anything.  ``--psf OP.npz`` reuses the operator kernels that
``python -m optics psf CONFIG --out psf.tif --operator-out OP.npz`` wrote (their config hash must
be CONFIG's).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

#: The --help description (plain text: argparse prints it as it is).
DESCRIPTION = """\
Deconvolve a light-field camera frame (Y, X) or a time series (t, Y, X) with Richardson-Lucy and
write the volume as a ZYX (or TZYX) float32 TIFF with the voxel sizes in um. Every input is checked
before any work; bad input prints one line "error: ..." and exits with status 2 without writing
anything.
"""

EPILOG = """\
Input units: integer TIFFs are raw camera frames (camera.offset_adu is subtracted and the values
divided by gain x QE, giving photons; the read noise's negative values are kept and handled by
Richardson-Lucy's read-noise shift, --read-noise 0 clips them instead); float TIFFs are taken as
linear and must be >= 0.
Override with --raw / --linear.  A full-sensor frame (camera.shape) is centre-cropped to the
whole-lenslet image.  A (t, Y, X) stack gives a (t, z, y, x) volume; --frame refuses stacks and
--stack refuses single frames.  A scanning LFM (kind "slfm") takes its K^2 scan frames as one
(K^2, Y, X) stack in acquisition order (as python -m optics simulate writes it), reconstructed
jointly into one volume; a (t, K^2, Y, X) stack gives (t, z, y, x).

Recorded frames (a real microscope): --white WHITE.tif [--dark DARK.tif] measures the lenslet
lattice (pitch, rotation, offset) of the white frame, corrects the raw frame ((raw - dark) / gain,
divided by the white frame's vignetting) and rectifies it to an odd whole number of pixels per
lenslet; the calibration is written to VOLUME.calibration.json (and its summary figure to
VOLUME.calibration.png) and can be reused with
--calibration CAL.json.  CONFIG then describes the physical camera (camera.calibrated = true when
the pitch is not a whole number of pixels), e.g. the preset recorded-guv-60x-1.2w.

Operator: computed from CONFIG (cached on disk by its hash in $LFMSIM_CACHE_DIR), or read from
--psf OP.npz, as written by: python -m optics psf CONFIG --out psf.tif --operator-out OP.npz
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m reconstruction", description=DESCRIPTION,
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", metavar="CONFIG", help="microscope config (.toml/.json) or preset name")
    p.add_argument("frame", metavar="FRAME", help="light-field frame (Y, X) or stack (t, Y, X), TIFF; "
                   "for kind 'slfm' the (K^2, Y, X) scan frames or (t, K^2, Y, X)")
    p.add_argument("--out", required=True, metavar="VOLUME.tif",
                   help="output volume TIFF (ZYX, or TZYX for a stack)")
    p.add_argument("--iterations", type=int, default=8, metavar="N", help="Richardson-Lucy iterations (default 8)")
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto",
                   help="where to compute: auto (a GPU if cupy sees one, else the CPU), cpu, or gpu "
                   "(an error without one) (default auto)")
    p.add_argument("--filter", choices=("none", "lanczos"), default="none",
                   help="S19 depth-adaptive anti-aliasing filter (light field only) (default none)")
    p.add_argument("--psf", metavar="OP.npz",
                   help="operator kernels written by 'python -m optics psf CONFIG --operator-out OP.npz' "
                   "(must belong to CONFIG: same config hash); default: compute them or read the cache")
    p.add_argument("--method", choices=("joint", "phase-space"), default=None,
                   help="scanning LFM (kind 'slfm'): joint RL over all scan frames with the exact operator "
                   "(default), or the published view-by-view phase-space RL (--iterations passes over the views)")
    p.add_argument("--dao", nargs="?", type=int, const=-1, default=None, metavar="ROUNDS",
                   help="scanning LFM: digital adaptive optics (implies --method phase-space): estimate the pupil "
                   "aberration from the views and correct it, in ROUNDS rounds (default 3); writes "
                   "VOLUME.aberration.json beside --out (Zernike waves rms, Noll, as a config's [aberrations])")
    p.add_argument("--dao-subfields", type=int, default=1, metavar="S",
                   help="with --dao: estimate and correct the aberration in S x S sub-fields of the field of view "
                   "(multi-site DAO, an aberration that varies across the field) (default 1)")
    p.add_argument("--rolling", nargs="?", type=float, const=0.9, default=None, metavar="BASE",
                   help="scanning LFM: FRAME is a rolling scan, a (T, Y, X) series whose frame i was taken at scan "
                   "position i mod K^2; writes one volume per frame from the K^2 frames around it, weighted "
                   "BASE^|i - t| (default 0.9, the published weighting)")
    rec = p.add_argument_group("recorded frames (a real microscope: reconstruction.recorded)")
    rec.add_argument("--white", metavar="WHITE.tif",
                     help="white (radiometry) frame of the same camera and crop: the lenslet lattice is measured "
                          "from it, the frame is dark- and flat-corrected and rectified to an odd whole number of "
                          "pixels per lenslet before the reconstruction; the calibration is written beside --out "
                          "(VOLUME.calibration.json)")
    rec.add_argument("--dark", metavar="DARK.tif", help="dark frame (no light), subtracted from the white and raw frames")
    rec.add_argument("--calibration", metavar="CAL.json", help="reuse a saved calibration instead of --white")
    noise = p.add_argument_group("data model (Richardson-Lucy: y ~ Poisson(H x + b) + read noise)")
    noise.add_argument("--background", type=float, default=None, metavar="B",
                       help="known background b per pixel, in the image's units (photons for raw frames, photo-electrons "
                            "per rectified pixel for recorded frames); default 0")
    noise.add_argument("--read-noise", type=float, default=None, metavar="SIGMA",
                       help="read noise sigma in the image's units; default for raw frames the camera's "
                            "(camera.read_noise_e), for linear images none; 0 clips raw frames at 0 instead")
    dist = p.add_argument_group("time series on dask.distributed (reconstruction.distributed; needs the 'distributed' extra)")
    dist.add_argument("--workers", type=int, default=None, metavar="N",
                      help="reconstruct the frames of a (t, Y, X) stack on a local cluster of N worker processes; "
                           "--out must be OME-Zarr (.zarr), written as volumes finish; a rerun resumes")
    dist.add_argument("--scheduler", metavar="ADDRESS", help="use a running dask scheduler (tcp://host:8786) instead")
    dist.add_argument("--frames-per-task", type=int, default=1, metavar="F", help="frames per task (default 1)")
    dist.add_argument("--depth-groups", type=int, default=None, metavar="G",
                      help="one frame, its depths split into G contiguous groups over the workers, each holding "
                           "its depths' kernels and estimate (how a Fourier LFM scales out; "
                           "reconstruction.depthsplit); --out a TIFF")
    p.add_argument("--tiles", default=None, metavar="auto|L",
                   help="deconvolve in independent tiles of L lenslets with halos of the kernels' reach "
                        "(auto: the largest that fits the memory; smaller after an out-of-memory error)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--checkpoint", metavar="CK.npz", help="resumable checkpoint (.npz) written during the run")
    p.add_argument("--checkpoint-every", type=int, default=10, metavar="N",
                   help="iterations between checkpoint writes (default 10)")
    units = p.add_mutually_exclusive_group()
    units.add_argument("--raw", dest="raw", action="store_true", default=None,
                       help="input is camera ADU (default for integer TIFFs)")
    units.add_argument("--linear", dest="raw", action="store_false",
                       help="input is linear (photons), >= 0 (default for float TIFFs)")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--frame", dest="expect", action="store_const", const="frame", default="any",
                      help="require a single frame")
    kind.add_argument("--stack", dest="expect", action="store_const", const="stack", help="require a (t, Y, X) stack")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress messages (INFO)")
    return p


def _config_differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Keys whose values differ between two ``Microscope.to_dict()`` trees, as "key: a vs b"."""
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        name = f"{prefix}{key}"
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _config_differences(va, vb, f"{name}.")
        elif va != vb:
            out.append(f"{name}: {va!r} vs {vb!r}")
    return out


def load_operator(path: str, m):
    """The LightFieldPSF of ``--psf path``, refused (ValueError naming --psf) when the file cannot
    be read or its config hash is not ``m.hash``."""
    import json

    import numpy as np

    from optics.config import ConfigError
    from optics.psfdata import load_psf

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"--psf = {path!r} is invalid: the file does not exist (expected an operator .npz "
                                "written by python -m optics psf CONFIG --operator-out OP.npz)")
    try:  # the header alone first: a wrong operator is refused before its kernels are read
        with np.load(p, allow_pickle=False) as data:
            file_hash = json.loads(str(data["header"])).get("hash")
    except Exception:
        file_hash = None  # load_psf says what is wrong with the file
    if file_hash is not None and file_hash != m.hash:
        raise ValueError(_mismatch(path, p, m))
    try:
        psf = load_psf(p)
    except (ConfigError, ValueError, OSError, KeyError) as e:
        raise ValueError(f"--psf = {path!r} is invalid: {' '.join(str(e).split())} (expected an operator .npz "
                         "written by python -m optics psf CONFIG --operator-out OP.npz)") from None
    if psf.microscope.hash != m.hash:
        raise ValueError(_mismatch(path, p, m, psf.microscope))
    from optics.psfdata import model_version

    if psf.meta.get("model_version") != model_version():
        print(f"warning: --psf {path!r} was computed by PSF model {psf.meta.get('model_version')}, not this "
              f"lfmsim's {model_version()}; using it as given (recompute it with python -m optics psf for "
              "the current model)", file=sys.stderr)
    return psf


def _mismatch(path: str, p: Path, m, other=None) -> str:
    if other is None:
        from optics.psfdata import load_psf

        try:
            other = load_psf(p).microscope
        except Exception:
            other = None
    msg = f"--psf = {path!r} is invalid: it belongs to another microscope"
    if other is not None:
        diff = _config_differences(other.to_dict(), m.to_dict())
        shown = "; ".join(diff[:4]) + ("; ..." if len(diff) > 4 else "")
        msg += f" (config hash {other.hash}, CONFIG's is {m.hash}; --psf vs CONFIG: {shown})"
    else:
        msg += f" (CONFIG's config hash is {m.hash})"
    return msg + "; expected the operator of CONFIG (python -m optics psf CONFIG --out psf.tif --operator-out OP.npz)"


def _refuse(args, options, where: str) -> None:
    """Refuse the options (and --filter other than none) that do nothing on this path."""
    for opt in options:
        if getattr(args, opt) not in (None, False):
            raise ValueError(f"--{opt.replace('_', '-')} is not available {where}")
    if args.filter != "none":
        raise ValueError(f"--filter is not available {where}")


def _tiles_arg(v):
    if v is None or v == "auto":
        return v
    try:
        n = int(v)
    except ValueError:
        raise ValueError(f"--tiles = {v!r} is invalid: expected 'auto' or a number of lenslets >= 1") from None
    if n < 1:
        raise ValueError(f"--tiles = {v!r} is invalid: expected 'auto' or a number of lenslets >= 1")
    return n


def _check_cluster_args(args) -> None:
    """--workers and --scheduler: one of them, a positive worker count."""
    if args.workers is not None and args.scheduler is not None:
        raise ValueError("--workers and --scheduler are exclusive: start a local cluster, or use a running one")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers = {args.workers} is invalid: expected an integer >= 1")


def _series(args, out: Path) -> int:
    """The OME-Zarr / dask path of ``main`` (reconstruction.distributed); errors propagate to main."""
    from .api import load_microscope
    from .distributed import reconstruct_series
    from .omezarr import is_zarr_path

    if not is_zarr_path(out):
        raise ValueError(f"--out = {args.out!r} is invalid with --workers / --scheduler: a volume series is written "
                         "as OME-Zarr (a path ending in .zarr), volume by volume as the tasks finish")
    _check_cluster_args(args)
    _refuse(args, ("white", "calibration", "dark", "psf", "method", "dao", "rolling", "checkpoint", "tiles", "depth_groups"),
            "with an OME-Zarr series output")
    m = load_microscope(args.config)
    summary = reconstruct_series(m, args.frame, out, iterations=args.iterations, workers=args.workers,
                                 scheduler=args.scheduler, device=args.device, raw=args.raw,
                                 read_noise=args.read_noise, background=args.background,
                                 frames_per_task=args.frames_per_task, overwrite=args.overwrite,
                                 progress=not args.no_progress)
    print(f"wrote {out} (OME-Zarr, t z y x, {summary['frames']} volumes: {summary['written']} now, "
          f"{summary['done_before']} already there; {summary['seconds']:.1f} s)")
    return 0


def _depth_split(args, m, image, is_stack, psf, read_noise, out: Path) -> int:
    """The ``--depth-groups`` path of ``main`` (reconstruction.depthsplit); errors propagate to main."""
    from optics import compute_psf
    from optics.io import write_tiff

    from .depthsplit import depth_split_rl

    if args.workers is None and args.scheduler is None:
        raise ValueError("--depth-groups needs a cluster: --workers N or --scheduler ADDRESS")
    _check_cluster_args(args)
    if is_stack:
        raise ValueError("--depth-groups deconvolves one frame; a (t, Y, X) stack goes to --out VOLS.ome.zarr "
                         "--workers N (frames over the workers)")
    _refuse(args, ("method", "dao", "rolling", "checkpoint", "tiles"), "with --depth-groups")
    if m.kind == "slfm":
        raise ValueError("--depth-groups is for one-frame kinds; a scanning LFM's frames go through the joint RL")
    if psf is None:
        psf = compute_psf(m, progress=not args.no_progress)
    volume = depth_split_rl(image, psf, args.iterations, workers=args.workers, scheduler=args.scheduler,
                            groups=args.depth_groups, device=args.device, background=args.background,
                            read_noise=read_noise, progress=not args.no_progress)
    vz, vy, vx = m.volume.z_step_um, m.voxel_um, m.voxel_um
    write_tiff(out, volume, axes="ZYX", voxel_um=(vz, vy, vx), overwrite=args.overwrite,
               metadata={"iterations": args.iterations, "method": "joint", "depth_groups": args.depth_groups})
    print(f"wrote {out} (ZYX, shape {tuple(volume.shape)}, voxel {vy:.4g} x {vx:.4g} um, z step {vz:g} um; "
          f"depths in {args.depth_groups} groups)")
    return 0


def _recorded(args, m, out: Path) -> int:
    """The recorded-frame path of ``main`` (reconstruction.recorded); errors propagate to main."""
    from optics.io import check_writable, read_tiff, write_tiff

    from .recorded import reconstruct_recorded

    if args.white is not None and args.calibration is not None:
        raise ValueError("--white and --calibration are exclusive: measure a calibration, or reuse one")
    if args.white is None and args.calibration is None:
        raise ValueError(f"{args.config!r} describes a calibrated camera (camera.calibrated = true): give --white "
                         "WHITE.tif (and --dark DARK.tif) or --calibration CAL.json")
    _refuse(args, ("psf", "method", "dao", "rolling", "checkpoint", "tiles", "depth_groups"),
            "for recorded frames (--white/--calibration)")
    cal_out = out.with_name(out.stem + ".calibration.json") if args.white is not None else None
    fig_out = out.with_name(out.stem + ".calibration.png") if args.white is not None else None
    for p in (cal_out, fig_out):
        if p is not None:
            check_writable(p, overwrite=args.overwrite)
    for opt in ("background", "read_noise"):
        v = getattr(args, opt)
        if v is not None and not v >= 0:
            raise ValueError(f"--{opt.replace('_', '-')} = {v} is invalid: expected photo-electrons >= 0")
    raw = read_tiff(args.frame)
    white = read_tiff(args.white) if args.white is not None else None
    dark = read_tiff(args.dark) if args.dark is not None else None
    res = reconstruct_recorded(m, raw, white=white, dark=dark, calibration=args.calibration,
                               iterations=args.iterations, background=args.background,
                               read_noise=args.read_noise, device=args.device,
                               progress=not args.no_progress)  # a CalibrationError is a ValueError
    mr = res.frame.microscope
    vz, vy = mr.volume.z_step_um, mr.voxel_um
    is_stack = res.volume.ndim == 4
    axes, sizes = ("TZYX", (None, vz, vy, vy)) if is_stack else ("ZYX", (vz, vy, vy))
    if cal_out is not None:
        from .calibration_figures import save_calibration_figure

        res.frame.calibration.save(cal_out, overwrite=args.overwrite)
        save_calibration_figure(fig_out, res.frame.calibration, white, dark, overwrite=args.overwrite)
    write_tiff(out, res.volume, axes=axes, voxel_um=sizes, overwrite=args.overwrite,
               metadata={"iterations": args.iterations, "recorded": True,
                         "calibration": res.frame.calibration.summary(), "seconds": res.seconds})
    print(f"calibration: {res.frame.calibration.summary()}")
    if cal_out is not None:
        print(f"wrote {cal_out} and {fig_out.name} (the calibration's summary figure)")
    print(f"wrote {out} ({axes}, shape {tuple(res.volume.shape)}, voxel {vy:.4g} x {vy:.4g} um, z step {vz:g} um; "
          f"{res.seconds['total']:.1f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2)
        return int(e.code or 0)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from optics.config import ConfigError
    from optics.io import check_writable, read_tiff, write_tiff

    from .api import is_raw, load_microscope, raw_read_noise, reconstruct, validate_image
    from .backend import DeviceError, get_device
    from .deconvolution import CheckpointError

    try:
        if args.iterations < 0:
            raise ValueError(f"--iterations = {args.iterations} is invalid: expected an integer >= 0")
        if args.checkpoint_every < 1:
            raise ValueError(f"--checkpoint-every = {args.checkpoint_every} is invalid: expected an integer >= 1")
        out = Path(args.out)
        from .omezarr import is_zarr_path

        if is_zarr_path(out) or ((args.workers is not None or args.scheduler is not None) and args.depth_groups is None):
            return _series(args, out)
        if out.suffix.lower() not in (".tif", ".tiff"):
            raise ValueError(f"--out = {args.out!r} is invalid: expected a .tif or .tiff file name (or .zarr for OME-Zarr)")
        check_writable(out, overwrite=args.overwrite)
        ab_path = out.with_name(out.stem + ".aberration.json") if args.dao is not None else None
        if args.dao is not None and args.dao != -1 and args.dao < 1:
            raise ValueError(f"--dao = {args.dao} is invalid: expected a number of rounds >= 1")
        if ab_path is not None:
            check_writable(ab_path, overwrite=args.overwrite)
        if args.checkpoint and Path(args.checkpoint).resolve() == out.resolve():
            raise ValueError("--checkpoint must differ from --out")
        m = load_microscope(args.config)
        if args.white is not None or args.calibration is not None or m.camera.calibrated:
            return _recorded(args, m, out)
        if args.dark is not None:
            raise ValueError("--dark is for recorded frames: give --white WHITE.tif or --calibration CAL.json too")
        if args.frames_per_task != 1:
            raise ValueError("--frames-per-task is for an OME-Zarr series output (--out VOLS.ome.zarr)")
        for opt in ("background", "read_noise"):
            v = getattr(args, opt)
            if v is not None and not v >= 0:
                raise ValueError(f"--{opt.replace('_', '-')} = {v} is invalid: expected a number >= 0")
        if args.filter == "lanczos" and m.kind != "lfm":
            raise ValueError(f"--filter lanczos is invalid for microscope.kind = {m.kind!r}: it is derived for "
                             "'lfm' (Stefanoiu 2019); expected none")
        frame = read_tiff(args.frame)
        joint = args.dao is None and args.method != "phase-space"
        read_noise = args.read_noise
        if read_noise is None and joint and is_raw(frame, args.raw):
            read_noise = raw_read_noise(m)  # the camera's, in the converted frame's units
        if not joint and (args.background is not None or read_noise):
            raise ValueError("--background / --read-noise are for the joint Richardson-Lucy, not --method phase-space or --dao")
        image, is_stack = validate_image(m, frame, raw=args.raw, expect="stack" if args.rolling else args.expect,
                                         scan_stacks=args.rolling is None, clip=not read_noise)
        del frame
        get_device(args.device)
        psf = load_operator(args.psf, m) if args.psf is not None else None
        dao = False if args.dao is None else (True if args.dao == -1 else args.dao)
        if args.depth_groups is not None:
            return _depth_split(args, m, image, is_stack, psf, read_noise, out)
        volume = reconstruct(m, image, iterations=args.iterations, device=args.device, filter=args.filter,
                             progress=not args.no_progress, raw=False, checkpoint=args.checkpoint,
                             checkpoint_every=args.checkpoint_every, psf=psf, method=args.method, dao=dao,
                             rolling=args.rolling, dao_subfields=args.dao_subfields,
                             background=args.background, read_noise=read_noise, tiles=_tiles_arg(args.tiles))
        if dao:
            from .dao import write_aberration

            volume, aberration = volume
            write_aberration(ab_path, aberration, overwrite=args.overwrite)
        vz, vy, vx = m.volume.z_step_um, m.voxel_um, m.voxel_um
        axes, sizes = ("TZYX", (None, vz, vy, vx)) if is_stack else ("ZYX", (vz, vy, vx))
        write_tiff(out, volume, axes=axes, voxel_um=sizes, overwrite=args.overwrite,
                   metadata={"iterations": args.iterations, "filter": args.filter,
                             "method": args.method or "joint", "dao": bool(dao)})
    except (ValueError, ConfigError, FileNotFoundError, FileExistsError, DeviceError, CheckpointError, ImportError) as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except MemoryError as e:
        detail = " ".join(str(e).split())
        print(f"error: out of memory{f' ({detail})' if detail else ''}: reduce camera.shape, the z range "
              "(or raise volume.z_step_um) or volume.voxels_per_lenslet, or deconvolve a stack in fewer "
              "frames at a time", file=sys.stderr)
        return 2
    print(f"wrote {out} ({axes}, shape {tuple(volume.shape)}, voxel {vy:.4g} x {vx:.4g} um, z step {vz:g} um)")
    if ab_path is not None:
        big = {j: round(c, 3) for j, c in sorted(aberration.zernike_waves.items()) if abs(c) >= 0.01}
        print(f"wrote {ab_path} (estimated aberration, waves rms by Noll index: {big or 'all below 0.01'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
