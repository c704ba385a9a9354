"""Generation recipes (seeded, reproducible), and the generate / label / stats commands."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # tblite: the 2 shared cores, no oversubscription

import json

import ase.data
import ase.io
import numpy as np
import pytest
import yaml
from jsonargparse import auto_cli

from lam.commands import generate as commands
from lam.data.generate import RECIPES, get_recipe
from lam.data.generate.emt_slabs import adsorbate_slab
from lam.data.statistics import data_checksum

SMALL = {
    "emt-bulk": {"n_frames": 6, "size": 1},
    "emt-slabs": {"n_frames": 4},
    "xtb-molecules": {"n_frames": 4, "size": 5},
    "xtb-refractory": {"n_frames": 2},
}


def _cli(*args):
    return auto_cli({"data": commands.COMMANDS}, args=["data", *args], as_positional=True)


def _same_frames(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.get_chemical_formula() == y.get_chemical_formula()
        np.testing.assert_array_equal(x.positions, y.positions)
        np.testing.assert_array_equal(x.cell.array, y.cell.array)
        assert x.get_potential_energy() == y.get_potential_energy()
        np.testing.assert_array_equal(x.get_forces(), y.get_forces())


@pytest.mark.parametrize("recipe", sorted(SMALL))
def test_same_seed_gives_identical_frames(recipe):
    first = RECIPES[recipe](seed=3, **SMALL[recipe])
    second = RECIPES[recipe](seed=3, **SMALL[recipe])
    other = RECIPES[recipe](seed=4, **SMALL[recipe])
    _same_frames(first.frames, second.frames)
    assert len(first.frames) == SMALL[recipe]["n_frames"]
    assert any(not np.array_equal(x.positions, y.positions) or len(x) != len(y)
               for x, y in zip(first.frames, other.frames, strict=True))
    for atoms in first.frames:
        assert np.isfinite(atoms.get_potential_energy())
        assert atoms.get_forces().shape == (len(atoms), 3)
        assert ("stress" in atoms.calc.results) == bool(atoms.pbc.all())


def test_slabs_have_mixed_pbc_and_adsorbate_on_top():
    slab = adsorbate_slab("Pt", "111", "CO", "fcc", 1.5, 2)
    assert slab.pbc.tolist() == [True, True, False]
    carbon, oxygen = slab.positions[-2:, 2]
    assert slab.get_chemical_symbols()[-2:] == ["C", "O"] and oxygen > carbon > slab.positions[:-2, 2].max()


def test_normal_mode_sampling_is_reproducible():
    frames = get_recipe("xtb-molecules")(n_frames=3, seed=0, size=4, sampling="normal-modes").frames
    again = get_recipe("xtb-molecules")(n_frames=3, seed=0, size=4, sampling="normal-modes").frames
    _same_frames(frames, again)


def test_refractory_frames_are_dense_metals_without_overlaps():
    """Every kind of frame keeps the bcc volume per atom (within strain and scan) and no atom pair
    closer than 2 Å (the rattles stay thermal, not a collapse)."""
    from lam.data.generate.xtb_refractory import KINDS, METALS, frame

    rng = np.random.default_rng(0)
    for kind in KINDS:
        for metal in METALS:
            atoms = frame(kind, metal, rng)
            a = ase.data.reference_states[ase.data.atomic_numbers[metal]]["a"]
            assert 15 <= len(atoms) <= 32 and set(atoms.get_chemical_symbols()) == {metal}
            assert 0.75 < atoms.get_volume() / len(atoms) / (a**3 / 2) < 1.35 * (16 / 15)
            distances = atoms.get_all_distances(mic=True)[np.triu_indices(len(atoms), 1)]
            assert distances.min() > 2.0


def test_unknown_recipe_or_option_is_refused(tmp_path):
    known = "emt-bulk, emt-slabs, pyscf-small, xtb-molecules, xtb-refractory"
    with pytest.raises(ValueError, match=f"known recipes: {known}"):
        get_recipe("dft-bulk")
    with pytest.raises(ValueError, match="recipe 'emt-bulk' has no option sampling"):
        commands.generate("emt-bulk", out=tmp_path / "x", sampling="md")


def test_generate_writes_training_set_card_and_stats(tmp_path, capsys):
    from lam.data.registry import OPTIONAL_FIELDS, REQUIRED_FIELDS
    from lam.data.training_format import load_training_dataset

    out = tmp_path / "bulk"
    _cli("generate", "emt-bulk", "--out", str(out), "--n_frames", "5", "--size", "1", "--seed", "1")
    dataset = load_training_dataset(out)
    assert len(dataset) == 5 and set(dataset["head"]) == {"emt_bulk_alloys"}
    # The registry has no "training" converter yet, so check the card's fields without read_card.
    card = yaml.safe_load((out / "emt_bulk_alloys.yaml").read_text())
    assert set(card) == set(REQUIRED_FIELDS) | set(OPTIONAL_FIELDS)
    assert card["frame_count"] == 5 and card["periodic"] is True and card["has_stress"]
    assert card["level_of_theory"]["functional"] == "EMT" and card["format"] == "training"
    assert card["checksums"]["."] == data_checksum(out)
    assert set(card["elements"]) == {e for row in dataset["atomic_numbers"] for e in
                                  (ase.data.chemical_symbols[z] for z in row)}
    stats = json.loads((out / "stats.json").read_text())
    assert stats["checksum"] == data_checksum(out)

    # stats command: served from the cache, printed as JSON
    capsys.readouterr()
    _cli("stats", str(out))
    printed = json.loads(capsys.readouterr().out)
    head = printed["heads"]["emt_bulk_alloys"]
    assert head["frames"] == 5 and head["atoms"] == sum(len(n) for n in dataset["atomic_numbers"])
    assert head["force_rms_eV_per_A"] > 0 and head["mean_neighbor_count"] > 12

    with pytest.raises(FileExistsError, match="exists and is not empty"):
        commands.generate("emt-bulk", out=out, n_frames=2, size=1)
    commands.generate("emt-bulk", out=out, n_frames=2, size=1, overwrite=True)
    assert len(load_training_dataset(out)) == 2


def test_generate_extxyz_layout_is_a_valid_registry_card(tmp_path):
    from lam.data.registry import get_card, verify_checksums

    out = tmp_path / "slabs"
    commands.generate("emt-slabs", out=out, n_frames=3, layout="extxyz")
    card = get_card("emt_adsorbates_slabs", directory=out)
    verify_checksums(card)
    data = card.local_files["train"]
    assert card.checksums[data.name] == data_checksum(data) and card.periodic == "slab"
    frames = ase.io.read(data, index=":")
    assert len(frames) == 3 and frames[0].pbc.tolist() == [True, True, False]
    assert (out / "PROVENANCE.md").read_text().count("emt-slabs") >= 1


def test_refuses_to_overwrite_foreign_directory(tmp_path):
    (tmp_path / "precious.txt").write_text("not ours")
    with pytest.raises(FileExistsError, match="not a generated set"):
        commands.generate("emt-bulk", out=tmp_path, n_frames=1, size=1, overwrite=True)
    assert (tmp_path / "precious.txt").exists()


def test_label_command_relabels_file(tmp_path):
    source = tmp_path / "in.extxyz"
    ase.io.write(source, [adsorbate_slab("Cu", "100", "O", "hollow", 1.2, 2)])
    out = tmp_path / "out.extxyz"
    _cli("label", str(source), "--calculator", "emt", "--out", str(out))
    (frame,) = ase.io.read(out, index=":")
    assert frame.get_forces().shape == (13, 3) and np.isfinite(frame.get_potential_energy())
    with pytest.raises(FileExistsError):
        commands.label(source, calculator="emt", out=out)


COMMITTED = (
    "emt_bulk_alloys",
    "emt_adsorbates_slabs",
    "xtb_organics_gfn2",
    "pyscf_small_wb97x_631gs",
    "xtb_refractory_gfn1",
)


@pytest.mark.parametrize("name", COMMITTED)
def test_committed_generated_sets_match_their_cards(name):
    from lam.data.readers import read_frames
    from lam.data.registry import get_card, registry_dir, verify_checksums

    card = get_card(name, directory=registry_dir() / "generated" / name)
    verify_checksums(card)
    frames = list(read_frames(card.local_files["train"]))
    assert len(frames) == card.frame_count <= 500
    assert card.local_files["train"].stat().st_size < 2_000_000
    assert (card.directory / card.provenance).is_file()
    assert sorted({a.symbols[i] for a in frames for i in range(len(a))}) == sorted(card.elements)
    assert all(np.isfinite(a.get_forces()).all() for a in frames)
    stats = json.loads((card.directory / f"{name}.extxyz.xz.stats.json").read_text())
    assert stats["checksum"] == card.checksums[card.files["train"]]
    assert stats["heads"][name]["frames"] == card.frame_count


def test_stats_of_registered_name_cached_next_to_converted_copy(tmp_path, monkeypatch, capsys):
    from lam.data.registry import registry_dir

    name = "xtb_organics_gfn2"
    monkeypatch.setenv("LAM_REGISTRY", str(registry_dir() / "generated" / name))
    monkeypatch.setenv("LAM_CACHE", str(tmp_path))
    result = commands.stats(name)
    head = result["heads"][name]
    assert head["frames"] == 200 and head["elements"] == ["H", "C", "N", "O"]
    assert set(head["energy_references_eV"]) == {"H", "C", "N", "O"}
    assert not head["reference_fit"]["rank_deficient"]
    (cache,) = tmp_path.glob(f"datasets/{name}-*/stats.json")
    assert json.loads(cache.read_text()) == result
    assert json.loads(capsys.readouterr().out) == result
