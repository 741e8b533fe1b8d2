"""Per-iteration timing of the benchmarks (``benchmarks.timing``): the difference of two RL calls
removes the per-call set-up, the best of repeats resists one slow sample, and a difference lost in
the noise gives the whole call's upper bound, never a near-zero time."""

import time

import numpy as np
import pytest

from benchmarks import timing


class _Op:
    device = "cpu"


@pytest.mark.parametrize("setup,per_it", [(0.04, 0.01), (0.0, 0.02)])
def test_difference_of_two_calls_removes_the_setup(monkeypatch, setup, per_it):
    calls = []

    def fake_rl(y, op, iterations, progress):
        calls.append(iterations)
        time.sleep(setup + per_it * iterations)

    monkeypatch.setattr(timing, "richardson_lucy", fake_rl)
    got = timing.crop_iteration_seconds(_Op(), np.zeros((4, 4)), iterations=3)
    assert got == pytest.approx(per_it, rel=0.3)
    assert calls.count(4) == timing.TIMING_REPEATS and calls.count(1) == 1 + timing.TIMING_REPEATS


def test_a_difference_within_the_noise_gives_the_upper_bound(monkeypatch):
    def fake_rl(y, op, iterations, progress):  # the same time whatever the iterations
        time.sleep(0.02)

    monkeypatch.setattr(timing, "richardson_lucy", fake_rl)
    got = timing.crop_iteration_seconds(_Op(), np.zeros((4, 4)), iterations=3)
    assert 0.003 < got < 0.02  # ~0.02 / 4 (or a small positive difference), not 1e-9
