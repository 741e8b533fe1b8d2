"""The low-resolution band at the native focal plane of a light-field design, from measured rows.

Inside the artifact band |z| < n d / (2 M NA) (``optics.theory.artifact_band_um``) an LFM 1.0 samples
the object once per lenslet, and theory puts its resolution at d/M
(``optics.theory.in_band_resolution_um``); outside it the resolution is finer, until the band limit
grows with |z|.  The band "appears" when the measured rows say the same:

* ``median_in_band_um``: the coarsest median two-point resolution (the table's statistic) over the
  measured depths inside the band;
* compared depths: those outside the band where theory puts the resolution at least a third below
  the band's, ``theory_lateral_resolution_um < BAND_CONTRAST * in_band_um``, so that theory says the
  band stands out by more than the spread of a few repeats; depths where theory is coarser (far
  from focus, where the band limit has grown) cannot show it;
* ``shown``: the in-band median is coarser than the median at every compared depth (a median that
  is not resolved, i.e. most repeats resolved no tested separation, counts as coarser than any);
  None when no measured depth is inside the band or none can be compared.

Inside the band the outcome also depends on where the pair falls against the lenslets: a pair
straddling a lenslet boundary can be resolved below d/M (``tests/benchmarks/
test_focus_band.py``); the repeats are therefore stratified over one pitch
(``benchmarks.protocol.PLACEMENT``) and the worst repeat, the separation resolved wherever the pair
falls, is reported beside the median (``worst_in_band_um``).
"""

from __future__ import annotations

import math

__all__ = ["BAND_CONTRAST", "focus_band"]

#: Compared depths are those where theory puts the resolution below this fraction of the band's.
BAND_CONTRAST = 2.0 / 3.0


def _value(v) -> float:
    return math.inf if v is None else float(v)


def _worst(row: dict) -> float:
    """Largest per-repeat resolution of a row (inf when a repeat resolved no separation)."""
    return max(_value(v) for v in row["lateral_resolution_per_repeat_um"])


def _num(v: float) -> float | None:
    return None if not math.isfinite(v) else float(v)


def focus_band(rows: list[dict], band_um: float, in_band_um: float) -> dict:
    """Whether measured ``rows`` (results.json per-depth rows: ``z_um``, ``lateral_resolution_um``,
    ``lateral_resolution_per_repeat_um``, ``theory_lateral_resolution_um``) show the band of half-width ``band_um`` whose theory value is
    ``in_band_um``; see the module docstring.  Returns the entry for results.json."""
    if not (math.isfinite(band_um) and band_um > 0):
        raise ValueError(f"band_um = {band_um!r} is invalid: expected a positive half-width (um)")
    if not (math.isfinite(in_band_um) and in_band_um > 0):
        raise ValueError(f"in_band_um = {in_band_um!r} is invalid: expected a positive resolution (um)")
    limit = BAND_CONTRAST * in_band_um
    inside = [r for r in rows if abs(float(r["z_um"])) < band_um]
    compared = [r for r in rows if abs(float(r["z_um"])) >= band_um
                and r.get("theory_lateral_resolution_um") is not None
                and float(r["theory_lateral_resolution_um"]) < limit]
    med_in = max((_value(r["lateral_resolution_um"]) for r in inside), default=None)
    worst_in = max((_worst(r) for r in inside), default=None)
    shown = None
    if inside and compared:
        shown = bool(all(med_in > _value(r["lateral_resolution_um"]) for r in compared))
    return {
        "artifact_band_um": float(band_um),
        "in_band_theory_um": float(in_band_um),
        "compared_below_um": float(limit),
        "in_band": [{"z_um": float(r["z_um"]), "median_um": _num(_value(r["lateral_resolution_um"])),
                     "worst_um": _num(_worst(r))} for r in inside],
        "compared": [{"z_um": float(r["z_um"]), "median_um": _num(_value(r["lateral_resolution_um"])),
                      "worst_um": _num(_worst(r)), "theory_um": float(r["theory_lateral_resolution_um"])}
                     for r in compared],
        "median_in_band_um": None if med_in is None else _num(med_in),
        "median_in_band_over_theory": (None if med_in is None or not math.isfinite(med_in)
                                       else float(med_in / in_band_um)),
        "worst_in_band_um": None if worst_in is None else _num(worst_in),
        "shown": shown,
    }
