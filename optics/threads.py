"""How many CPU threads lfmsim's thread pools, FFTs and BLAS calls use (one home for the rule).

By default every CPU this process may run on (its affinity mask, so ``taskset`` and container CPU
sets are honoured).  ``LFMSIM_THREADS=n`` caps it: a benchmark that runs several measurements side
by side in worker processes gives each its share of the cores this way, so that they do not
oversubscribe the machine.
"""

from __future__ import annotations

import os

__all__ = ["ENV", "cpu_threads"]

#: Environment variable that caps the threads (a positive integer).
ENV = "LFMSIM_THREADS"


def cpu_threads() -> int:
    """Threads for lfmsim's parallel work: ``LFMSIM_THREADS`` if set, else the CPUs this process may use."""
    value = os.environ.get(ENV, "").strip()
    if value:
        try:
            n = int(value)
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(f"{ENV} = {value!r} is invalid: expected a positive integer (threads)")
        return n
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)
