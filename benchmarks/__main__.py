"""Command line: ``python -m benchmarks tradeoff|perf|scale [options]``."""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "tradeoff": ("benchmarks.tradeoff", "field of view vs resolution vs depth, measured (the main job)"),
    "perf": ("benchmarks.perf", "speed and peak memory of the reconstruction core"),
    "scale": ("benchmarks.scale", "time-series throughput vs dask workers, peak memory, out of core"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m benchmarks {" + ",".join(COMMANDS) + "} [options]\n")
        for name, (_, text) in COMMANDS.items():
            print(f"  {name:10s} {text}")
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd not in COMMANDS:
        print(f"error: unknown command {cmd!r}; accepted: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[cmd][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
