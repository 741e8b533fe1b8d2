"""lfmsim benchmarks, run from the checkout: ``python -m benchmarks tradeoff|perf``.

They compose optics and reconstruction, write tables (Markdown + JSON) and plots (PNG), and never
define physics of their own.
"""
