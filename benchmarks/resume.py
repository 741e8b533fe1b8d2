"""Resumable benchmark runs: each design's entry is saved as soon as it is measured, so a run that
stops (Ctrl-C, a lost session, a full run of hours on a laptop) is resumed where it stopped.

An output folder holds ``run.json`` (the manifest: what was asked, design by design, and a digest of
the code that measures) and ``designs/NN-<name>.json`` per measured design (its results.json entry,
convergence rows included), with ``NN-<name>.frame.npy`` beside it while its reconstruction time is
still to be measured (``benchmarks.tradeoff.finish_timing``).  Every file is written atomically
(``optics.io``).  A resumed run must ask for exactly what the manifest records, with the same code:
entries measured under other settings or by other code are never mixed into one table.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np

from optics.io import atomic_write_bytes

__all__ = ["MANIFEST", "FOLDER", "ResumeError", "code_digest", "DesignStore"]

MANIFEST = "run.json"
FOLDER = "designs"
_FRAME = "_timing_frame"  # the entry key of the frame the parent process times (``tradeoff.measure``)


class ResumeError(ValueError):
    """A folder that cannot be resumed: not a run's output, or started with other settings or code."""


def code_digest() -> str:
    """SHA-256 (first 16 hex digits) of the Python sources of ``optics``, ``reconstruction`` and
    ``benchmarks``: any change of the code that measures changes it."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for pkg in ("optics", "reconstruction", "benchmarks"):
        for f in sorted((root / pkg).rglob("*.py")):
            h.update(str(f.relative_to(root)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}: {a!r} in the folder, {b!r} now")
    return out


class DesignStore:
    """The per-design results of one run in ``out_dir`` (module docstring).

    ``manifest``: a JSON-serialisable description of the run (settings, protocol, the designs as
    [name, microscope hash, depths] lists); ``code_digest`` is added.  ``resume=False``: ``out_dir`` must be
    empty (a new run); ``resume=True``: it must hold a manifest equal to this one (else a ResumeError
    lists the differences), and ``done`` returns the entries measured so far.
    """

    def __init__(self, out_dir, manifest: dict, resume: bool = False):
        self.dir = Path(out_dir)
        self.manifest = json.loads(json.dumps({**manifest, "code_digest": code_digest()}, default=float))
        path = self.dir / MANIFEST
        if resume:
            if not path.exists():
                raise ResumeError(f"--resume {str(self.dir)!r}: no {MANIFEST} there (not a run's output folder)")
            if (self.dir / "results.json").exists():
                raise ResumeError(f"--resume {str(self.dir)!r}: that run is complete (results.json exists); nothing to resume")
            old = json.loads(path.read_text())
            diff = _differences(old, self.manifest)
            if diff:
                raise ResumeError(f"--resume {str(self.dir)!r} was started with other settings or code; "
                                 f"start a new run (differences: {'; '.join(diff)})")
        else:
            if any(self.dir.iterdir()):
                raise FileExistsError(f"{str(self.dir)!r} is not empty; results are never overwritten")
            atomic_write_bytes(path, json.dumps(self.manifest, indent=1).encode())
        (self.dir / FOLDER).mkdir(exist_ok=True)
        self.names = [str(d[0]) for d in self.manifest["designs"]]

    def _path(self, index: int, ext: str) -> Path:  # names hold dots ("0.5w"): no Path.with_suffix
        return self.dir / FOLDER / f"{index:02d}-{self.names[index]}{ext}"

    def save(self, index: int, entry: dict, overwrite: bool = False) -> None:
        """Save design ``index``'s entry (its timing frame, if any, as .npy first, then the JSON)."""
        body = {k: v for k, v in entry.items() if k != _FRAME}
        if entry.get(_FRAME) is not None:
            buf = io.BytesIO()
            np.save(buf, np.asarray(entry[_FRAME]), allow_pickle=False)
            atomic_write_bytes(self._path(index, ".frame.npy"), buf.getvalue(), overwrite=overwrite)
        atomic_write_bytes(self._path(index, ".json"), json.dumps(body, indent=1, default=float).encode(),
                           overwrite=overwrite)

    def timed(self, index: int, entry: dict) -> None:
        """Save design ``index``'s entry once its reconstruction time is measured (the frame removed)."""
        self.save(index, entry, overwrite=True)
        self._path(index, ".frame.npy").unlink(missing_ok=True)

    def done(self) -> dict[int, dict]:
        """{index: entry} of the designs measured so far (with their timing frame where still untimed)."""
        out = {}
        for i in range(len(self.names)):
            js = self._path(i, ".json")
            if not js.exists():
                continue
            entry = json.loads(js.read_text())
            frame = self._path(i, ".frame.npy")
            if frame.exists():
                entry[_FRAME] = np.load(frame, allow_pickle=False)
            out[i] = entry
        return out
