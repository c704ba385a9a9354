"""The training format: schema, lossless round trip, refusal to overwrite, and GraphDataset on top."""

from __future__ import annotations

import json
from pathlib import Path

import ase
import numpy as np
import pytest
import torch
from conftest import assert_same_frames
from torch_geometric.data import Batch

from lam import keys
from lam.data.datasets import GraphDataset
from lam.data.graph import AtomicGraph
from lam.data.training_format import (
    FORMAT_FILE,
    SCHEMA,
    ArrowRows,
    atoms_to_row,
    load_training_dataset,
    row_to_atoms,
    write_training_dataset,
)


def test_round_trip_is_bitwise(frames: list[ase.Atoms], tmp_path: Path) -> None:
    out = write_training_dataset(frames, tmp_path / "ds", head="h", num_shards=2)
    assert json.loads((out / FORMAT_FILE).read_text()) == {"format": "lam-training", "version": 2}
    assert len(list(out.glob("*.arrow"))) == 2
    dataset = load_training_dataset(out)
    assert dataset.features == SCHEMA
    assert_same_frames(frames, [row_to_atoms(row) for row in dataset])
    assert dataset["head"] == ["bulk", "h", "h", "h", "h"]


def test_config_type_round_trips_and_version_1_datasets_still_load(
    frames: list[ase.Atoms], tmp_path: Path
) -> None:
    """Fine-tuning stratifies its split by ``config_type``: the format must keep it per frame."""
    frames[1].info["config_type"] = "liquid"
    out = write_training_dataset(frames, tmp_path / "ds", head="h")
    rows = ArrowRows(load_training_dataset(out).with_format("arrow")[:])
    assert [rows[k]["config_type"] for k in range(len(rows))] == [None, "liquid", None, None, None]
    assert row_to_atoms(rows[1]).info["config_type"] == "liquid"
    assert "config_type" not in row_to_atoms(rows[0]).info
    # a version-1 dataset (written before the column existed) loads with the column null
    import datasets

    old = load_training_dataset(out).remove_columns("config_type")
    old.save_to_disk(str(tmp_path / "v1"))
    (tmp_path / "v1" / FORMAT_FILE).write_text(json.dumps({"format": "lam-training", "version": 1}))
    loaded = load_training_dataset(tmp_path / "v1")
    assert loaded.features == SCHEMA and loaded["config_type"] == [None] * len(frames)
    assert_same_frames(frames, [row_to_atoms(row) for row in loaded])
    (tmp_path / "v1" / FORMAT_FILE).write_text(json.dumps({"format": "lam-training", "version": 3}))
    with pytest.raises(ValueError, match="unsupported format"):
        load_training_dataset(tmp_path / "v1")
    assert isinstance(loaded, datasets.Dataset)


def test_absent_labels_are_null(frames: list[ase.Atoms], tmp_path: Path) -> None:
    dataset = load_training_dataset(write_training_dataset(frames, tmp_path / "ds", head="h"))
    assert dataset["forces"][1] is None and dataset["stress"][2] is None
    assert dataset["energy"][1] == frames[1].get_potential_energy()
    unlabelled = ase.Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])
    row = atoms_to_row(unlabelled, head="x")
    assert (row["energy"], row["forces"], row["stress"], row["head"]) == (None, None, None, "x")
    assert row_to_atoms(row).calc is None


def test_existing_output_refused_without_overwrite(frames: list[ase.Atoms], tmp_path: Path) -> None:
    write_training_dataset(frames, tmp_path / "ds", head="h")
    with pytest.raises(FileExistsError, match="overwrite"):
        write_training_dataset(frames[:2], tmp_path / "ds", head="h")
    write_training_dataset(frames[:2], tmp_path / "ds", head="h", overwrite=True)
    assert len(load_training_dataset(tmp_path / "ds")) == 2
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="remove it by hand"):
        write_training_dataset(frames, tmp_path / "other", head="h", overwrite=True)
    assert (tmp_path / "other" / "notes.txt").read_text() == "keep me"


def test_load_refuses_other_versions(frames: list[ase.Atoms], tmp_path: Path) -> None:
    out = write_training_dataset(frames, tmp_path / "ds", head="h")
    (out / FORMAT_FILE).write_text(json.dumps({"format": "lam-training", "version": 99}))
    with pytest.raises(ValueError, match="unsupported format"):
        load_training_dataset(out)
    with pytest.raises(ValueError, match="not a lam training dataset"):
        load_training_dataset(tmp_path)


def _assert_same_row(expected: dict, actual: dict) -> None:
    assert expected.keys() == actual.keys()
    for name, value in expected.items():
        if value is None or isinstance(value, (str, float)):
            assert actual[name] == value, name
        else:
            np.testing.assert_array_equal(
                np.asarray(value).reshape(np.shape(actual[name])), actual[name], name
            )


def test_arrow_rows_match_python_rows_across_shards_slices_and_nulls(
    frames: list[ase.Atoms], tmp_path: Path
) -> None:
    many = frames * 3  # labels present and null interleaved, over several shards
    dataset = load_training_dataset(write_training_dataset(many, tmp_path / "ds", head="h", num_shards=3))
    table = dataset.with_format("arrow")[:]
    assert table.column("positions").num_chunks == 3
    for view, rows in (
        (table, list(dataset)),
        (table.slice(4, 7), list(dataset.select(range(4, 11)))),
        (dataset.shuffle(seed=0).with_format("arrow")[:], list(dataset.shuffle(seed=0))),
    ):
        fast = ArrowRows(view)
        assert len(fast) == len(rows)
        for k, row in enumerate(rows):
            _assert_same_row(row, fast[k])
    assert fast[0]["positions"].flags.writeable
    with pytest.raises(IndexError):
        fast[len(rows)]


def _assert_same_graph(expected: AtomicGraph, actual: AtomicGraph) -> None:
    for key in (keys.ATOMIC_NUMBERS, keys.POSITIONS, keys.CELL, keys.PBC, keys.EDGE_INDEX, keys.CELL_SHIFT):
        assert torch.equal(expected[key], actual[key]), key
    for key in (keys.ENERGY, keys.FORCES, keys.STRESS, keys.HAS_ENERGY, keys.HAS_FORCES, keys.HAS_STRESS):
        assert torch.equal(expected[key], actual[key]), key


def test_graph_dataset_matches_from_atoms(frames: list[ase.Atoms], tmp_path: Path) -> None:
    write_training_dataset(frames, tmp_path / "ds", head="h")
    from_disk = GraphDataset(tmp_path / "ds", cutoff=4.0)
    from_list = GraphDataset(frames, cutoff=4.0)
    assert len(from_disk) == len(from_list) == len(frames)
    for k, atoms in enumerate(frames):
        expected = AtomicGraph.from_atoms(atoms, cutoff=4.0)
        _assert_same_graph(expected, from_disk[k])
        _assert_same_graph(expected, from_list[k])
    assert [from_disk[k][keys.HEAD] for k in range(5)] == ["bulk", "h", "h", "h", "h"]
    assert from_disk[3][keys.FRAME_ID] == ""  # frames built in memory had no frame_id
    assert from_disk[-1][keys.POSITIONS].shape == (len(frames[-1]), 3)
    with pytest.raises(IndexError):
        from_disk[5]


def test_graph_dataset_options_and_selection(frames: list[ase.Atoms], tmp_path: Path) -> None:
    dataset = load_training_dataset(write_training_dataset(frames, tmp_path / "ds", head="h"))
    graphs = GraphDataset(dataset.select([4, 2]), cutoff=3.0, head="override", dtype=torch.float32)
    assert len(graphs) == 2
    assert graphs[1][keys.POSITIONS].dtype == torch.float32
    np.testing.assert_allclose(graphs[1][keys.POSITIONS].numpy(), frames[2].positions, rtol=1e-6)
    assert graphs[0][keys.HEAD] == "override"
    batch = Batch.from_data_list([graphs[0], graphs[1]])
    assert batch[keys.ENERGY].shape == (2,) and batch[keys.HAS_FORCES].tolist() == [True, True]


def test_graph_dataset_pickles_for_dataloader_workers(frames: list[ase.Atoms], tmp_path: Path) -> None:
    import pickle

    graphs = GraphDataset(write_training_dataset(frames, tmp_path / "ds", head="h"), cutoff=3.0)
    first = graphs[0]  # builds the row views, which must not be pickled
    blob = pickle.dumps(graphs)
    assert len(blob) < 20_000  # the memory-mapped table travels by file, not by value
    _assert_same_graph(first, pickle.loads(blob)[0])
