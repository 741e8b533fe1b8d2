"""Symmetries of the light-field kernels on a square lenslet grid, used to store fewer kernels.

The optics are mirror-symmetric about each lenslet's axis, so the kernel of voxel phase
(s-1-a, b) is that of (a, b) flipped in y, and likewise in x; with square lenslets the kernel of
(b, a) is that of (a, b) transposed (PHYSICS.md section 4, "quarter"; section 6, check 11).  Then
the projection H commutes with the same flips/transposes of volume and image (group D4), and
H x = sum_g g H_D g⁻¹ x, where H_D uses only the kernels of a fundamental set D of phases and each
group element g handles the phases it maps D onto (masks, so each phase counts once).

A group element g = (flip y, flip x, transpose) acts on voxel coordinates as the transpose
followed by the flips.
"""

from __future__ import annotations

import numpy as np

__all__ = ["GROUPS", "act", "assign", "phase_plan"]

GROUPS = {
    "none": [(0, 0, 0)],
    "mirror": [(fy, fx, 0) for fy in (0, 1) for fx in (0, 1)],
    "d4": [(fy, fx, tr) for tr in (0, 1) for fy in (0, 1) for fx in (0, 1)],
}


def act(g, a: int, b: int, s: int) -> tuple[int, int]:
    """Phase reached from (a, b) by g = flips after transpose (voxel coordinates)."""
    fy, fx, tr = g
    if tr:
        a, b = b, a
    return (s - 1 - a if fy else a, s - 1 - b if fx else b)


def assign(a: int, b: int, s: int, symmetry: str):
    """(g, stored phase) with g acting on the stored phase giving (a, b); one per phase."""
    if symmetry == "none":
        return (0, 0, 0), (a, b)
    fy, fx = int(a > s - 1 - a), int(b > s - 1 - b)
    a0, b0 = min(a, s - 1 - a), min(b, s - 1 - b)
    if symmetry == "d4" and a0 > b0:
        return (fy, fx, 1), (b0, a0)
    return (fy, fx, 0), (a0, b0)


def phase_plan(s: int, symmetry: str):
    """Stored phases and the (G, 1, 1, n_stored, 1, 1) 0/1 masks saying which group handles which."""
    owner = {}
    for a in range(s):
        for b in range(s):
            g, p0 = assign(a, b, s, symmetry)
            assert act(g, *p0, s) == (a, b)
            owner[(a, b)] = (g, p0)
    phases = sorted({p0 for _, p0 in owner.values()})
    groups = GROUPS[symmetry]
    masks = np.zeros((len(groups), len(phases)))
    for gi, g in enumerate(groups):
        for pi, p0 in enumerate(phases):
            masks[gi, pi] = owner[act(g, *p0, s)] == (g, p0)
    assert masks.sum() == s * s  # every phase handled exactly once
    return phases, masks[:, None, None, :, None, None]
