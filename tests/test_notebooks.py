"""Execute each notebook (jupytext percent-format .py) at its small size, from the repository root."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))


def test_notebooks_found():
    assert [p.name for p in NOTEBOOKS] == ["01_design_lfm.py", "02_simulate_reconstruct.py", "03_tradeoff.py",
                                          "04_fourier_lfm.py", "05_scanning_lfm.py", "06_recorded_frames.py"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path_factory):
    env = dict(os.environ)
    env.update({"MPLBACKEND": "Agg", "LFMSIM_NOTEBOOK_SMALL": "1",
                "LFMSIM_CACHE_DIR": str(tmp_path_factory.getbasetemp() / "lfmsim-cache"),
                "PYTHONPATH": str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")})
    proc = subprocess.run([sys.executable, str(path)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]


def test_notebooks_are_percent_format_without_outputs():
    for p in NOTEBOOKS:
        text = p.read_text()
        assert "format_name: percent" in text and "# %%" in text, p.name
