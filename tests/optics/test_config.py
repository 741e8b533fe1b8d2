"""Configuration model: derived quantities (PHYSICS.md section 1, check 17), round trips, bad input."""

import json
import warnings

import numpy as np
import pytest

import optics
from optics import ConfigError, Microscope, load_config, presets, save_config
from optics.config import MLA, VolumeGrid


def test_presets_load_and_are_listed():
    names = presets.names()
    for required in ("widefield-20x-0.5w", "lfm-20x-0.5w", "lfm-40x-0.95", "lfm-60x-1.2w"):
        assert required in names
        m = presets.get(required)
        assert isinstance(m, Microscope)


def test_derived_quantities_set_A():
    m = presets.get("lfm-20x-0.5w")
    assert m.pixels_per_lenslet == 15
    assert m.matched_f_number == pytest.approx(20.00, abs=1e-12)  # PHYSICS check 17
    assert m.pupil_radius_um == pytest.approx(75.0, abs=1e-12)
    assert m.lenslet_pitch_object_um == pytest.approx(7.5)
    assert m.voxel_um == pytest.approx(0.5)
    assert m.n_lenslets == (136, 136)  # 2048 // 15
    assert m.image_shape == (2040, 2040)
    assert m.fov_um == pytest.approx((1020.0, 1020.0))
    assert m.volume_shape == (51, 136 * 15, 136 * 15)
    assert m.z_um[0] == -50 and m.z_um[-1] == 50 and len(m.z_um) == 51


def test_derived_quantities_set_B():
    m = presets.get("lfm-40x-0.95")
    assert m.matched_f_number == pytest.approx(21.05, abs=0.005)
    assert m.pupil_radius_um == pytest.approx(71.25, abs=1e-12)


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_round_trip(tmp_path, suffix):
    m = presets.get("lfm-60x-1.2w")
    p = save_config(m, tmp_path / f"m{suffix}")
    m2 = load_config(p)
    assert m2 == m
    assert m2.hash == m.hash


def test_save_refuses_overwrite(tmp_path):
    m = presets.get("lfm-20x-0.5w")
    p = save_config(m, tmp_path / "m.toml")
    with pytest.raises(FileExistsError, match="overwrite"):
        save_config(m, p)
    save_config(m, p, overwrite=True)


def test_hash_tracks_optics_not_noise():
    m = presets.get("lfm-20x-0.5w")
    assert m.replace(camera={"read_noise_e": 3.0}).hash == m.hash
    assert m.replace(volume={"z_step_um": 5}).hash != m.hash
    assert m.replace(objective={"na": 0.45}, mla={"focal_um": 3300}).hash != m.hash
    assert hash(m) == hash(presets.get("lfm-20x-0.5w"))


def test_frozen():
    m = presets.get("lfm-20x-0.5w")
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        m.wavelength_um = 0.6  # type: ignore[misc]


BAD = [
    ({"objective": {"na": 1.4, "immersion_index": 1.33}}, "objective.na"),
    ({"objective": {"magnification": -20}}, "objective.magnification"),
    ({"mla": {"pitch_um": 0}}, "mla.pitch_um"),
    ({"microscope": {"wavelength_um": 520}}, "wavelength_um"),
    ({"microscope": {"wavelength_um": 0.1}}, "wavelength_um"),
    ({"mla": {"pitch_um": 140}}, "pixels per lenslet"),
    ({"mla": {"pitch_um": 125}}, "pixels per lenslet"),  # 12.5 px
    ({"volume": {"voxels_per_lenslet": 17}}, "voxels_per_lenslet"),
    ({"volume": {"voxels_per_lenslet": 0}}, "voxels_per_lenslet"),
    ({"volume": {"z_min_um": 10, "z_max_um": -10}}, "inverted"),
    ({"volume": {"z_step_um": 0}}, "z_step_um"),
    ({"volume": {"z_step_um": -1}}, "z_step_um"),
    ({"camera": {"shape": [10, 2048]}}, "camera.shape"),
    ({"camera": {"pixel_um": "10"}}, "camera.pixel_um"),
    ({"camera": {"shape": 2048}}, "camera.shape"),
    ({"microscope": {"kind": "confocal"}}, "microscope.kind"),
    ({"mla": {"aperture": "hexagon"}}, "mla.aperture"),
]


@pytest.mark.parametrize("change,needle", BAD)
def test_bad_values_are_named(change, needle):
    d = presets.get("lfm-20x-0.5w").to_dict()
    for sec, kv in change.items():
        d[sec].update(kv)
    with pytest.raises(ConfigError, match=needle):
        Microscope.from_dict(d)


def test_unknown_key_did_you_mean():
    d = presets.get("lfm-20x-0.5w").to_dict()
    d["objective"]["numerical_aperture"] = 0.5
    with pytest.raises(ConfigError, match="unknown key 'objective.numerical_aperture'"):
        Microscope.from_dict(d)
    d = presets.get("lfm-20x-0.5w").to_dict()
    d["mla"]["pitch"] = 150
    with pytest.raises(ConfigError, match="did you mean 'pitch_um'"):
        Microscope.from_dict(d)
    with pytest.raises(ConfigError, match="unknown section"):
        Microscope.from_dict({"camra": {}})


def test_unreadable_and_unparsable_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[objective\nna = ")
    with pytest.raises(ConfigError, match="cannot be parsed"):
        load_config(bad)
    j = tmp_path / "bad.json"
    j.write_text(json.dumps({"objective": {"na": "high"}}))
    with pytest.raises(ConfigError, match="objective.na"):
        load_config(j)


def test_mismatched_f_number_warns_with_matched_value():
    with pytest.warns(UserWarning, match="matched value M/\\(2 NA\\) = 20"):
        presets.get("lfm-20x-0.5w", mla={"focal_um": 4500})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        presets.get("lfm-20x-0.5w")


def test_operator_size_is_estimated_before_work(monkeypatch):
    m = presets.get("lfm-20x-0.5w", volume={"z_min_um": -200, "z_max_um": 200, "z_step_um": 0.5})
    with pytest.raises(ConfigError, match="GB"):
        m.check_operator_fits(max_gb=1.0)
    presets.get("lfm-20x-0.5w").check_operator_fits(max_gb=8.0)


def test_widefield_geometry():
    m = presets.get("widefield-20x-0.5w")
    assert m.mla is None and m.pixels_per_lenslet == 1
    assert m.voxel_um == pytest.approx(6.5 / 20)
    assert m.volume_shape == (21, 2048, 2048)
    with pytest.raises(ConfigError, match="voxels_per_lenslet"):
        m.replace(volume={"voxels_per_lenslet": 3})


def test_unknown_preset_suggests():
    with pytest.raises(ConfigError, match="did you mean 'lfm-20x-0.5w'"):
        presets.get("lfm-20x-0.5")


def test_lazy_import_is_light():
    assert "scipy.special" not in dir(optics)
    assert np.isfinite(presets.get("lfm-20x-0.5w").wavenumber)


def test_operator_estimate_bounds_the_real_kernels():
    from optics.config import kernel_side_pixels

    m = presets.get(
        "lfm-20x-0.5w",
        camera={"shape": [45, 45]},
        volume={"z_min_um": -20, "z_max_um": 20, "z_step_um": 20, "voxels_per_lenslet": 3},
    )
    psf = optics.compute_psf(m, cache=False, progress=False)
    for z, k in zip(m.z_um, psf.kernels):
        assert k.shape[-1] <= kernel_side_pixels(m, float(z))
    assert psf.nbytes <= m.estimate_operator_bytes()


# --------------------------------------------------------------------- keys act or are refused (issue 7)
@pytest.mark.parametrize("key,value,user", [
    ("offset_um", 500.0, "lfm-defocused"),
    ("fourier_lens_focal_um", 200000.0, "flfm"),
])
def test_keys_of_other_kinds_are_refused_for_lfm(key, value, user):
    d = presets.get("lfm-20x-0.5w").to_dict()
    d["mla"][key] = value
    with pytest.raises(ConfigError, match=rf"mla\.{key}.*'lfm'.*{user}"):
        Microscope.from_dict(d)
    d["mla"][key] = 0.0  # the default: accepted (it does nothing, as it says)
    Microscope.from_dict(d)


def test_widefield_refuses_an_mla_section_and_propagation():
    d = presets.get("widefield-20x-0.5w").to_dict()
    d["mla"] = {"pitch_um": 150.0}
    with pytest.raises(ConfigError, match=r"mla.*'widefield'"):
        Microscope.from_dict(d)
    del d["mla"]
    d["simulation"] = {"propagation": "fresnel"}
    with pytest.raises(ConfigError, match=r"simulation\.propagation.*'widefield'"):
        Microscope.from_dict(d)
    with pytest.raises(ConfigError, match="mla"):
        Microscope(kind="widefield", mla=MLA(pitch_um=100.0))


def test_voxels_per_lenslet_default_follows_the_kind(tmp_path):
    # a wide-field file without volume.voxels_per_lenslet was refused ("= 15 is invalid")
    p = tmp_path / "wf.toml"
    p.write_text('[microscope]\nkind = "widefield"\n[volume]\nz_min_um = -2\nz_max_um = 2\nz_step_um = 1\n'
                 '[camera]\nshape = [64, 64]\n')
    assert load_config(p).voxels_per_lenslet == 1
    assert Microscope(kind="widefield", volume=VolumeGrid(z_min_um=-1, z_max_um=1)).voxels_per_lenslet == 1
    # light field: the pixels per lenslet (13 here), not a fixed 15 that 13 px per lenslet would refuse
    q = tmp_path / "lf.toml"
    q.write_text('[mla]\npitch_um = 130\nfocal_um = 2600\n[camera]\npixel_um = 10\nshape = [130, 130]\n'
                 '[volume]\nz_min_um = -2\nz_max_um = 2\nz_step_um = 1\n')
    assert load_config(q).voxels_per_lenslet == 13
