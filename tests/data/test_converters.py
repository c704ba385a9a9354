"""Converters of public LAM datasets, each on a tiny file in exactly the published layout.

The HDF5 and LMDB files are written here (in ``tmp_path``) the way their authors' tools write them;
the JSON and extxyz/txt fixtures live in ``tests/data/fixtures/public/``. Unit conversions are
checked against ``ase.units``, and force signs against finite differences of a harmonic energy.
"""

from __future__ import annotations

import json
import logging
import lzma
import shutil
import zlib
from pathlib import Path

import ase
import h5py
import numpy as np
import pytest
from ase import units
from ase.calculators.singlepoint import SinglePointCalculator
from ase.db.row import AtomsRow

from lam.data.converters import (
    CONVERTERS,
    convert,
    read_ani1x_h5,
    read_aselmdb,
    read_mptrj_json,
    read_oc20_s2ef,
    read_spice_h5,
    read_transition1x_h5,
)

FIXTURES = Path(__file__).parent / "fixtures" / "public"
RNG = np.random.default_rng(0)
# Methane, Å: a real molecule, so validation-style checks (distances) would pass on it.
CH4 = np.array(
    [[0.0, 0.0, 0.0], [0.63, 0.63, 0.63], [-0.63, -0.63, 0.63], [-0.63, 0.63, -0.63], [0.63, -0.63, -0.63]]
)
CH4_Z = np.array([6, 1, 1, 1, 1])


def harmonic(positions: np.ndarray, k: float = 0.3) -> tuple[float, np.ndarray]:
    """E = k/2 sum_i |x_i - centroid|^2 and its gradient k (x_i - centroid), in the units of x and k."""
    dx = positions - positions.mean(0)
    return 0.5 * k * float((dx**2).sum()), k * dx


def conformers(n: int, scale: float = 1.0) -> np.ndarray:
    """n slightly displaced copies of methane, positions multiplied by ``scale`` (unit change)."""
    return np.stack([(CH4 + 0.01 * RNG.standard_normal(CH4.shape)) * scale for _ in range(n)])


def assert_forces_are_minus_gradient(frames: list[ase.Atoms]) -> None:
    """ΔE between close frames equals -F·Δx to first order (checks sign and unit consistency)."""
    for a, b in zip(frames[:-1], frames[1:], strict=True):
        de = b.get_potential_energy() - a.get_potential_energy()
        mean_forces = 0.5 * (a.get_forces() + b.get_forces())
        predicted = -float((mean_forces * (b.positions - a.positions)).sum())
        assert de == pytest.approx(predicted, rel=1e-6, abs=1e-9)


# ---- MPtrj JSON -------------------------------------------------------------------------------------


def test_mptrj_json_structure_energy_and_stress_sign() -> None:
    frames = list(read_mptrj_json(FIXTURES / "mptrj_tiny.json"))
    assert [f.info["frame_id"].split("#")[1] for f in frames] == [
        "mp-149/mp-149-0-0",
        "mp-1143/mp-1143-0-0",
        "mp-1143/mp-1143-0-1",
    ]
    si, feo, feo_fractional = frames
    assert si.get_chemical_formula() == "Si2" and si.pbc.all()
    np.testing.assert_allclose(
        si.cell.array, [[0, 2.73436, 2.73436], [2.73436, 0, 2.73436], [2.73436, 2.73436, 0]]
    )
    np.testing.assert_allclose(si.positions[0], [1.36718, 1.36718, 1.36718])
    # 10 kBar of VASP (compressive) pressure = -1 GPa ASE stress (tensile positive), in eV/Å^3.
    np.testing.assert_allclose(si.get_stress(voigt=False), -1.0 * units.GPa * np.eye(3), atol=1e-12)
    assert si.get_stress(voigt=False)[0, 0] == pytest.approx(-0.0062415, rel=1e-4)
    assert feo.get_potential_energy() == -14.5  # uncorrected (raw DFT) by default
    assert feo.info["corrected_total_energy"] == -16.6
    np.testing.assert_allclose(feo.get_forces(), [[0.12, -0.05, 0.3], [-0.12, 0.05, -0.3]])
    np.testing.assert_allclose(feo.get_stress(voigt=False)[2, 2], -2.0 * units.GPa)
    np.testing.assert_allclose(feo.get_stress(voigt=False)[0, 1], -0.1 * units.GPa)
    np.testing.assert_allclose(feo.arrays["magmom"], [3.1, 0.1])
    # a site given only in fractional coordinates lands at abc @ cell
    np.testing.assert_allclose(feo_fractional.positions[1], [1.475, 1.475, 2.05])


def test_mptrj_json_corrected_energy_option() -> None:
    frames = list(read_mptrj_json(FIXTURES / "mptrj_tiny.json", energy="corrected"))
    assert [f.get_potential_energy() for f in frames] == [-10.84782, -16.6, -16.7]


def test_mptrj_json_rejects_disordered_site(tmp_path: Path) -> None:
    data = json.loads((FIXTURES / "mptrj_tiny.json").read_text())
    data["mp-149"]["mp-149-0-0"]["structure"]["sites"][1]["species"] = [
        {"element": "Si", "occu": 0.5},
        {"element": "Ge", "occu": 0.5},
    ]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"mp-149/mp-149-0-0: field 'structure.sites\[1\].species'"):
        list(read_mptrj_json(path))


# ---- ANI-1x HDF5 ------------------------------------------------------------------------------------


def write_ani1x(path: Path) -> dict[str, np.ndarray]:
    """One formula group as in ani1x-release.h5: Ha and Ha/Å labels, NaN where a level is missing."""
    coords = conformers(4)
    energies_ha, forces_ha = zip(*(harmonic(c, k=0.02) for c in coords), strict=True)
    forces_ha = -np.array(forces_ha)  # ANI-1x stores forces (not gradients), Ha/Å
    with h5py.File(path, "w") as f:
        g = f.create_group("C1H4")
        g["atomic_numbers"] = CH4_Z.astype(np.uint8)
        g["coordinates"] = coords
        g["wb97x_dz.energy"] = np.array(energies_ha)
        g["wb97x_dz.forces"] = forces_ha
        g["wb97x_tz.energy"] = np.array([energies_ha[0], np.nan, energies_ha[2], np.nan])
        g["wb97x_tz.forces"] = np.where(
            np.isnan([1.0, np.nan, 1.0, np.nan])[:, None, None], np.nan, forces_ha
        )
        g["ccsd(t)_cbs.energy"] = np.array([np.nan, np.nan, np.nan, energies_ha[3]])
        g["wb97x_dz.cm5_charges"] = np.zeros((4, 5))
    return {"coords": coords, "energies_ha": np.array(energies_ha), "forces_ha": forces_ha}


def test_ani1x_units_and_force_sign(tmp_path: Path) -> None:
    ref = write_ani1x(tmp_path / "ani1x-release.h5")
    frames = list(read_ani1x_h5(tmp_path / "ani1x-release.h5"))
    assert len(frames) == 4
    np.testing.assert_allclose([f.get_potential_energy() for f in frames], ref["energies_ha"] * units.Hartree)
    np.testing.assert_allclose(frames[1].get_forces(), ref["forces_ha"][1] * 27.211386, rtol=1e-6)
    np.testing.assert_allclose(frames[2].positions, ref["coords"][2])  # already Å
    assert frames[0].get_chemical_formula() == "CH4" and not frames[0].pbc.any()
    assert frames[3].info["frame_id"].endswith("#C1H4/3")
    assert_forces_are_minus_gradient(frames)


def test_ani1x_missing_level_conformers_are_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_ani1x(tmp_path / "a.h5")
    with caplog.at_level(logging.WARNING):
        tz = list(read_ani1x_h5(tmp_path / "a.h5", level="wb97x_tz"))
    assert [f.info["conformer"] for f in tz] == [0, 2]
    assert "2 of 4 conformers have no wb97x_tz.energy" in caplog.text
    cc = list(read_ani1x_h5(tmp_path / "a.h5", level="ccsd(t)_cbs"))
    assert len(cc) == 1 and "forces" not in cc[0].calc.results
    with pytest.raises(KeyError, match="field 'b3lyp.energy'"):
        list(read_ani1x_h5(tmp_path / "a.h5", level="b3lyp"))


# ---- SPICE HDF5 -------------------------------------------------------------------------------------


def write_spice(path: Path) -> dict[str, np.ndarray]:
    """One molecule as in SPICE: bohr positions, Ha energies, Ha/bohr gradients, bytes strings."""
    coords_bohr = conformers(3, scale=1 / units.Bohr)
    energies, gradients = zip(*(harmonic(c, k=0.05) for c in coords_bohr), strict=True)
    with h5py.File(path, "w") as f:
        g = f.create_group("methane")
        g["atomic_numbers"] = CH4_Z.astype(np.int16)
        g["conformations"] = coords_bohr
        g["dft_total_energy"] = np.array(energies)
        g["dft_total_gradient"] = np.array(gradients)
        g["formation_energy"] = np.array(energies) + 40.0
        g["smiles"] = np.array([b"[H][C]([H])([H])[H]"])
        g["subset"] = np.array([b"PubChem"])
    return {"coords_bohr": coords_bohr, "energies": np.array(energies), "gradients": np.array(gradients)}


def test_spice_bohr_hartree_and_gradient_sign(tmp_path: Path) -> None:
    ref = write_spice(tmp_path / "SPICE.hdf5")
    frames = list(read_spice_h5(tmp_path / "SPICE.hdf5"))
    assert len(frames) == 3
    np.testing.assert_allclose(frames[0].positions, ref["coords_bohr"][0] * 0.529177210544, rtol=1e-8)
    np.testing.assert_allclose(frames[1].get_potential_energy(), ref["energies"][1] * units.Hartree)
    np.testing.assert_allclose(frames[2].get_forces(), -ref["gradients"][2] * units.Hartree / units.Bohr)
    assert frames[0].info["smiles"] == "[H][C]([H])([H])[H]" and frames[0].info["subset"] == "PubChem"
    assert_forces_are_minus_gradient(frames)


# ---- Transition1x HDF5 ------------------------------------------------------------------------------


def write_transition1x(path: Path) -> dict[str, np.ndarray]:
    """data/<formula>/<rxn> with eV labels, end-point subgroups, and a train split holding one reaction."""
    images = conformers(5)
    energies, gradients = zip(*(harmonic(c) for c in images), strict=True)
    key = "wB97x_6-31G(d)"
    with h5py.File(path, "w") as f:
        for split, reactions in (("data", ("rxn0001", "rxn0002")), ("train", ("rxn0001",))):
            for reaction in reactions:
                g = f.create_group(f"{split}/C1H4/{reaction}")
                g["atomic_numbers"] = CH4_Z
                g["positions"] = images
                g[f"{key}.energy"] = np.array(energies)
                g[f"{key}.forces"] = -np.array(gradients)
                g[f"{key}.atomization_energy"] = np.array(energies) - 100.0
                for end, index in (("reactant", 0), ("transition_state", 2), ("product", 4)):
                    e = g.create_group(end)
                    e["atomic_numbers"] = CH4_Z
                    e["positions"] = images[index : index + 1]
                    e[f"{key}.energy"] = np.array(energies[index : index + 1])
                    e[f"{key}.forces"] = -np.array(gradients[index : index + 1])
                    e[f"{key}.atomization_energy"] = np.array(energies[index : index + 1]) - 100.0
    return {"images": images, "energies": np.array(energies)}


def test_transition1x_path_images_and_splits(tmp_path: Path) -> None:
    ref = write_transition1x(tmp_path / "Transition1x.h5")
    frames = list(read_transition1x_h5(tmp_path / "Transition1x.h5"))
    assert len(frames) == 10  # 2 reactions x 5 images; end-point subgroups are not repeated
    np.testing.assert_allclose(
        [f.get_potential_energy() for f in frames[:5]], ref["energies"]
    )  # eV as stored
    np.testing.assert_allclose(frames[3].positions, ref["images"][3])
    assert frames[4].info["atomization_energy"] == pytest.approx(ref["energies"][4] - 100.0)
    assert frames[7].info["frame_id"].endswith("#data/C1H4/rxn0002/2")
    assert_forces_are_minus_gradient(frames[:5])
    assert len(list(read_transition1x_h5(tmp_path / "Transition1x.h5", split="train"))) == 5
    with pytest.raises(KeyError, match="field 'val'"):
        list(read_transition1x_h5(tmp_path / "Transition1x.h5", split="val"))


# ---- OC20 S2EF extxyz + txt -------------------------------------------------------------------------


def test_oc20_s2ef_metadata_and_energy_reference() -> None:
    frames = list(read_oc20_s2ef(FIXTURES / "oc20_s2ef"))
    assert [(f.info["sid"], f.info["fid"]) for f in frames] == [(2181546, 3), (2181546, 12)]
    assert frames[0].get_potential_energy() == -20.5  # raw total energy by default
    assert frames[0].info["reference_energy"] == -15.25
    np.testing.assert_array_equal(frames[0].get_tags(), [0, 1, 2])
    np.testing.assert_allclose(frames[1].get_forces()[2], [0.0, 0.0, -0.1])
    adsorption = list(read_oc20_s2ef(FIXTURES / "oc20_s2ef", energy="adsorption"))
    assert adsorption[1].get_potential_energy() == pytest.approx(-20.7 + 15.25)
    np.testing.assert_allclose(adsorption[1].get_forces(), frames[1].get_forces())


def test_oc20_s2ef_reads_xz_chunks(tmp_path: Path) -> None:
    for name in ("0.extxyz", "0.txt"):
        (tmp_path / f"{name}.xz").write_bytes(lzma.compress((FIXTURES / "oc20_s2ef" / name).read_bytes()))
    frames = list(read_oc20_s2ef(tmp_path))
    assert len(frames) == 2 and frames[1].info["fid"] == 12


def test_oc20_s2ef_line_count_mismatch_is_an_error(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "oc20_s2ef" / "0.extxyz", tmp_path / "0.extxyz")
    (tmp_path / "0.txt").write_text("random2181546,frame3,-15.25\n")
    with pytest.raises(ValueError, match="frame 1: field 'metadata'"):
        list(read_oc20_s2ef(tmp_path))
    (tmp_path / "0.txt").unlink()
    with pytest.raises(FileNotFoundError, match="0.txt not found"):
        list(read_oc20_s2ef(tmp_path))


# ---- fairchem ASE-LMDB ------------------------------------------------------------------------------


def _put(txn: object, key: str, value: object) -> None:
    """fairchem's encoding: zlib-compressed JSON (orjson output is plain JSON)."""
    default = lambda x: x.tolist() if isinstance(x, np.ndarray) else x.item()  # noqa: E731
    txn.put(key.encode("ascii"), zlib.compress(json.dumps(value, default=default).encode()))


def write_aselmdb(path: Path, frames: list[ase.Atoms], deleted: list[int]) -> None:
    """Rows as fairchem's LMDBDatabase._write stores them: AtomsRow fields plus key_value_pairs."""
    import lmdb

    env = lmdb.open(str(path), subdir=False, map_size=1 << 24)
    with env.begin(write=True) as txn:
        for row_id, atoms in enumerate(frames, start=1):
            row = AtomsRow(atoms)
            dct = {k: row[k] for k in row.__dict__ if k[0] != "_" and k not in row._keys and k != "id"}
            dct["cell"] = np.asarray(dct["cell"])
            dct["key_value_pairs"] = {"sid": f"omat-{row_id}"}
            _put(txn, str(row_id), dct)
        _put(txn, "nextid", len(frames) + 1)
        _put(txn, "deleted_ids", deleted)
        for row_id in deleted:
            txn.delete(str(row_id).encode("ascii"))
    env.close()


def test_aselmdb_rows_labels_and_deleted_ids(tmp_path: Path) -> None:
    frames = []
    for i in range(3):
        atoms = ase.Atoms("FeO", positions=[[0, 0, 0], [1.0 + 0.1 * i, 1, 1]], cell=np.eye(3) * 3.0, pbc=True)
        stress = np.array([0.01, 0.02, 0.03, 0.001, 0.002, 0.003]) * (i + 1)
        atoms.calc = SinglePointCalculator(
            atoms, energy=-10.0 - i, forces=RNG.standard_normal((2, 3)), stress=stress
        )
        frames.append(atoms)
    write_aselmdb(tmp_path / "data.aselmdb", frames, deleted=[2])
    out = list(read_aselmdb(tmp_path))
    assert [f.info["frame_id"].rsplit("#", 1)[1] for f in out] == ["1", "3"]
    for got, want in zip(out, [frames[0], frames[2]], strict=True):
        assert got.get_potential_energy() == want.get_potential_energy()
        np.testing.assert_allclose(got.get_forces(), want.get_forces())
        np.testing.assert_allclose(got.get_stress(), want.get_stress())
        np.testing.assert_allclose(got.cell.array, want.cell.array)
    assert out[1].info["sid"] == "omat-3"


# ---- the table ---------------------------------------------------------------------------------------


def test_convert_dispatches_and_rejects_unknown_format() -> None:
    assert {"extxyz", "mptrj-json", "ani1x-h5", "transition1x-h5", "spice-h5", "oc20-s2ef", "aselmdb"} <= set(
        CONVERTERS
    )
    assert len(list(convert(FIXTURES / "mptrj_tiny.json", "mptrj-json"))) == 3
    with pytest.raises(ValueError, match="unknown format 'xyz2'.*known formats: extxyz"):
        convert(FIXTURES / "mptrj_tiny.json", "xyz2")
