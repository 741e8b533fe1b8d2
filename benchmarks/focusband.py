"""The low-resolution band at the native focal plane of a light-field design, from measured rows.

Inside the artifact band |z| < n d / (2 M NA) (``optics.theory.artifact_band_um``) an LFM 1.0 samples
the object once per lenslet: a pair is resolved when a lenslet boundary lies between its beads and
not when both sit behind one lenslet (``optics.theory.in_band_resolution_um``).  Its resolution
there depends on where the pair falls.  Each repeat's resolution is then the distance from its left
bead to the next boundary, uniform on (0, d/M) for a uniform placement, so the *median* over
repeats reads about d/(2M), half of the band's value, however many repeats are taken.  The
separation resolved wherever the pair falls is the *worst* repeat's; with the repeats stratified
over one lenslet pitch (``benchmarks.protocol.PLACEMENT``) the worst of n repeats lies within d/(nM)
of it.  So the band is judged on the worst repeat:

* ``worst_in_band_um``: the largest per-repeat resolution over the measured depths inside the band
  (an unresolved repeat counts as worse than any separation);
* compared depths: those outside the band where theory puts the design's resolution below what
  the worst of n stratified repeats can read inside it, (1 - 1/n) of the in-band value
  (``theory_lateral_resolution_um < (1 - 1/n) in_band_um``): there theory says the band stands out
  beyond the measurement's placement uncertainty; depths where theory is coarser (far from focus,
  or just outside the band) cannot show it;
* ``shown``: the worst in-band repeat is coarser than the worst repeat at every compared depth
  (None when there is no depth inside the band or none to compare with).
"""

from __future__ import annotations

import math

__all__ = ["focus_band"]


def _worst(row: dict) -> float:
    """Largest per-repeat resolution of a row (inf when a repeat resolved no separation)."""
    per = row.get("lateral_resolution_per_repeat_um")
    if per:
        return max(math.inf if v is None else float(v) for v in per)
    hi = (row.get("lateral_resolution_range_um") or [None, None])[1]
    return math.inf if hi is None else float(hi)


def _num(v: float) -> float | None:
    return None if not math.isfinite(v) else float(v)


def focus_band(rows: list[dict], band_um: float, in_band_um: float, repeats: int) -> dict:
    """Whether measured ``rows`` (results.json per-depth rows: ``z_um``, ``lateral_resolution_um``,
    ``lateral_resolution_per_repeat_um`` or ``lateral_resolution_range_um``,
    ``theory_lateral_resolution_um``) show the band of half-width ``band_um`` whose theory value is
    ``in_band_um``, measured with ``repeats`` stratified repeats per depth; see the module docstring.
    Returns the entry for results.json."""
    if not (math.isfinite(band_um) and band_um > 0):
        raise ValueError(f"band_um = {band_um!r} is invalid: expected a positive half-width (um)")
    if not (math.isfinite(in_band_um) and in_band_um > 0):
        raise ValueError(f"in_band_um = {in_band_um!r} is invalid: expected a positive resolution (um)")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 2:
        raise ValueError(f"repeats = {repeats!r} is invalid: expected an integer >= 2")
    limit = (1.0 - 1.0 / repeats) * in_band_um
    inside = [r for r in rows if abs(float(r["z_um"])) < band_um]
    compared = [r for r in rows if abs(float(r["z_um"])) >= band_um
                and r.get("theory_lateral_resolution_um") is not None
                and float(r["theory_lateral_resolution_um"]) < limit]
    worst_in = max((_worst(r) for r in inside), default=None)
    shown = None
    if inside and compared:
        shown = bool(all(worst_in > _worst(r) for r in compared))
    return {
        "artifact_band_um": float(band_um),
        "in_band_theory_um": float(in_band_um),
        "compared_below_um": float(limit),
        "in_band": [{"z_um": float(r["z_um"]), "worst_um": _num(_worst(r)),
                     "median_um": r.get("lateral_resolution_um")} for r in inside],
        "compared": [{"z_um": float(r["z_um"]), "worst_um": _num(_worst(r)),
                      "theory_um": float(r["theory_lateral_resolution_um"])} for r in compared],
        "worst_in_band_um": None if worst_in is None else _num(worst_in),
        "worst_in_band_unresolved": bool(worst_in is not None and not math.isfinite(worst_in)),
        "worst_in_band_over_theory": (None if worst_in is None or not math.isfinite(worst_in)
                                      else float(worst_in / in_band_um)),
        "shown": shown,
    }
