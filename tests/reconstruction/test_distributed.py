"""Time series on dask.distributed and OME-Zarr (reconstruction.distributed, .omezarr; issue 12).

On a LocalCluster of 2 workers: the distributed result equals the serial one exactly; a run killed
mid-way and restarted with the same command skips what was written and gives the same result; a
worker killed mid-run is replaced and nothing is lost or written twice.  OME-Zarr: NGFF 0.5
metadata (axes, units, scales) and the config round-trip.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from recon_helpers import synthetic_psf

pytest.importorskip("distributed")
pytest.importorskip("zarr", minversion="3")

import optics  # noqa: E402
from reconstruction.distributed import RunMismatch, reconstruct_series  # noqa: E402
from reconstruction.omezarr import DONE, create_image, open_image  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _m():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return optics.presets.get("lfm-20x-0.5w", camera={"shape": [75, 75]},
                                  volume={"z_min_um": -10, "z_max_um": 10, "z_step_um": 10, "voxels_per_lenslet": 3})


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    import tifffile

    tmp = tmp_path_factory.mktemp("series")
    m = _m()
    rng = np.random.default_rng(0)
    psf = synthetic_psf(m, [1] * len(m.z_um), rng)
    stack = (rng.poisson(50, (8, 75, 75)) + 100).astype(np.uint16)
    path = tmp / "stack.tif"
    tifffile.imwrite(path, stack)
    serial = tmp / "serial.ome.zarr"
    reconstruct_series(m, path, serial, iterations=3, psf=psf, progress=False)
    return {"m": m, "psf": psf, "stack": path, "serial": open_image(serial)[1][:], "tmp": tmp}


def test_distributed_equals_serial(setup, client):
    out = setup["tmp"] / "dist.ome.zarr"
    res = reconstruct_series(setup["m"], setup["stack"], out, iterations=3, psf=setup["psf"], client=client,
                             progress=False)
    assert res["written"] == 8 and len(res["workers"]) == 2  # both workers took tasks
    group, arr, axes, scale = open_image(out)
    np.testing.assert_array_equal(arr[:], setup["serial"])
    assert (group[DONE][:] == 1).all()


def test_serial_equals_reconstruct(setup):
    """The serial series is reconstruct() frame by frame (the same RL, the same operator)."""
    import tifffile

    from reconstruction import reconstruct

    frames = tifffile.imread(setup["stack"])
    ref = reconstruct(setup["m"], frames[:1], psf=setup["psf"], iterations=3, progress=False, device="cpu")
    np.testing.assert_array_equal(ref[0], setup["serial"][0])


def test_ome_zarr_metadata_round_trip(setup):
    group, arr, axes, scale = open_image(setup["tmp"] / "serial.ome.zarr")
    m = setup["m"]
    ome = dict(group.attrs)["ome"]
    assert ome["version"] == "0.5"
    ax = ome["multiscales"][0]["axes"]
    assert [a["name"] for a in ax] == ["t", "z", "y", "x"]
    assert [a["type"] for a in ax] == ["time", "space", "space", "space"]
    assert all(a["unit"] == "micrometer" for a in ax[1:])
    assert axes == "tzyx" and scale == pytest.approx([1.0, m.volume.z_step_um, m.voxel_um, m.voxel_um])
    assert arr.chunks == (1, *m.volume_shape)  # one time point per chunk: one writer each
    back = optics.Microscope.from_dict(dict(group.attrs)["lfmsim"]["config"])
    assert back.hash == m.hash
    # the zarr.json of the group says Zarr v3, as NGFF 0.5 requires
    import json

    meta = json.loads((setup["tmp"] / "serial.ome.zarr" / "zarr.json").read_text())
    assert meta["zarr_format"] == 3 and meta["node_type"] == "group"


def test_ome_zarr_input(setup, tmp_path):
    import tifffile

    frames = tifffile.imread(setup["stack"])
    src = tmp_path / "frames.ome.zarr"
    g = create_image(src, frames.shape, axes="tyx", scale=[1.0, 1.0, 1.0], chunks=(1, 75, 75), dtype="uint16")
    g["0"][:] = frames
    out = tmp_path / "vols.ome.zarr"
    reconstruct_series(setup["m"], src, out, iterations=3, psf=setup["psf"], progress=False)
    np.testing.assert_array_equal(open_image(out)[1][:], setup["serial"])


def test_refusals(setup, tmp_path):
    m, psf = setup["m"], setup["psf"]
    with pytest.raises(ValueError, match="OME-Zarr"):
        reconstruct_series(m, setup["stack"], tmp_path / "vols.tif", psf=psf, progress=False)
    with pytest.raises(ValueError, match="exclusive"):
        reconstruct_series(m, setup["stack"], tmp_path / "v.zarr", psf=psf, workers=2, scheduler="tcp://x:1")
    out = tmp_path / "v.ome.zarr"
    reconstruct_series(m, setup["stack"], out, iterations=1, psf=psf, progress=False)
    with pytest.raises(RunMismatch, match="another run"):  # another iteration count: not a resume
        reconstruct_series(m, setup["stack"], out, iterations=2, psf=psf, progress=False)
    reconstruct_series(m, setup["stack"], out, iterations=2, psf=psf, progress=False, overwrite=True)


def test_worker_killed_mid_run_loses_nothing(setup, client, tmp_path):
    """One worker process is killed (SIGKILL) while the run is under way: the nanny starts a new one,
    the scheduler runs the lost tasks again, and the output equals the serial one."""
    import threading

    out = tmp_path / "killed.ome.zarr"
    pids = client.run(os.getpid)  # {address: pid}
    victim = sorted(pids.values())[0]
    state = {"killed_at": None}

    def kill_when_under_way():
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                n = int((open_image(out)[0][DONE][:] == 1).sum())
            except Exception:
                n = 0
            if 1 <= n < 8:
                os.kill(victim, signal.SIGKILL)
                state["killed_at"] = n
                return
            time.sleep(0.01)

    watcher = threading.Thread(target=kill_when_under_way)
    watcher.start()
    # enough iterations that tasks are in flight when the worker dies
    res = reconstruct_series(setup["m"], setup["stack"], out, iterations=150, psf=setup["psf"], client=client,
                             progress=False)
    watcher.join()
    assert state["killed_at"] is not None, "the run finished before a worker could be killed"
    assert victim not in client.run(os.getpid).values()  # it is gone, and replaced
    ref_out = tmp_path / "ref.ome.zarr"
    reconstruct_series(setup["m"], setup["stack"], ref_out, iterations=150, psf=setup["psf"], progress=False)
    assert res["written"] == 8
    np.testing.assert_array_equal(open_image(out)[1][:], open_image(ref_out)[1][:])
    assert (open_image(out)[0][DONE][:] == 1).all()


def test_killed_run_resumes_with_the_same_command(tmp_path):
    """python -m reconstruction ... --out VOLS.ome.zarr, killed (SIGKILL) after some volumes: the same
    command again writes only the rest, and the result equals an uninterrupted run."""
    import tifffile

    m = _m()
    cfg = tmp_path / "m.toml"
    optics.save_config(m, cfg)
    rng = np.random.default_rng(1)
    stack = (rng.poisson(50, (12, 75, 75)) + 100).astype(np.uint16)
    tifffile.imwrite(tmp_path / "stack.tif", stack)
    env = dict(os.environ, LFMSIM_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(ROOT))
    out = tmp_path / "vols.ome.zarr"
    cmd = [sys.executable, "-m", "reconstruction", str(cfg), str(tmp_path / "stack.tif"), "--out", str(out),
           "--iterations", "60", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    ndone = 0
    while time.time() < deadline and proc.poll() is None:
        if (out / DONE / "zarr.json").exists():
            try:
                ndone = int((open_image(out)[0][DONE][:] == 1).sum())
            except Exception:
                ndone = 0
            if ndone >= 3:
                break
        time.sleep(0.05)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_at_kill = int((open_image(out)[0][DONE][:] == 1).sum())
    assert 3 <= done_at_kill < 12, done_at_kill
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"{12 - done_at_kill} now, {done_at_kill} already there" in r.stdout
    ref = tmp_path / "ref.ome.zarr"
    r = subprocess.run(cmd[:6] + [str(ref)] + cmd[7:], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(open_image(out)[1][:], open_image(ref)[1][:])
