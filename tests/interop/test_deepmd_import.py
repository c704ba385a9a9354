"""``lam import deepmd``: DeePMD-kit's own numbers reproduced from its checkpoints, and refusals.

The fixtures in ``tests/fixtures/deepmd/`` were trained and evaluated by DeePMD-kit 3.2
(``scripts/make_deepmd_fixtures.py``); these tests need no DeePMD-kit.
"""

import json
import os
import sys
from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from lam.cli import main
from lam.data.graph import AtomicGraph
from lam.interop.deepmd import build_model, head_name, import_deepmd
from lam.interop.deepmd_checkpoint import DeepmdCheckpointError, read_checkpoint
from lam.interop.deepmd_options import UnsupportedDeepmdModel
from lam.model.lam import LAM

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "deepmd"
MANIFEST = json.loads((FIXTURES / "fixtures.json").read_text())
STRUCTURES = {atoms.info["name"]: atoms for atoms in ase.io.read(FIXTURES / "structures.extxyz", index=":")}
WATER = (
    Path(__file__).resolve().parents[2] / "data_registry" / "data" / "water_deepmd_example" / "test.extxyz.xz"
)
MULTI = FIXTURES / "dpa2_multitask_float64.pt"


def lam_outputs(model: LAM, head: str, atoms: ase.Atoms) -> tuple[float, np.ndarray, np.ndarray]:
    """Energy, forces and virial (DeePMD's sign: -sum r (x) F) of one structure."""
    dtype = next(model.parameters()).dtype
    batch = Batch.from_data_list([AtomicGraph.from_atoms(atoms, model.cutoff, dtype=dtype)])
    out = model(batch, head=head, compute_forces=True, compute_stress=True)
    return (
        float(out.energy[0].detach()),
        out.forces.detach().double().numpy(),
        out.virial[0].detach().double().numpy(),
    )


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_imported_model_reproduces_deepmd_kit(name: str) -> None:
    checkpoint = read_checkpoint(str(FIXTURES / f"{name}.pt"))
    model = build_model(checkpoint)
    expected = np.load(FIXTURES / f"{name}.expected.npz")
    double = next(model.parameters()).dtype == torch.float64
    energy_rtol, abs_tol = (1e-12, 1e-10) if double else (1e-6, 1e-5)
    compared = 0
    for key in sorted({".".join(k.split(".")[:2]) for k in expected.files}):
        branch, structure = key.split(".")
        head = head_name(branch if branch != "default" else "Default")
        atoms = STRUCTURES[structure]
        energy, forces, virial = lam_outputs(model, head, atoms)
        scale = max(1.0, float(np.abs(expected[f"{key}.forces"]).max()))
        np.testing.assert_allclose(forces, expected[f"{key}.forces"], atol=abs_tol * scale, rtol=0)
        if atoms.pbc.all():
            np.testing.assert_allclose(
                virial, expected[f"{key}.virial"], atol=abs_tol * scale * len(atoms), rtol=0
            )
        # a head holds references only for the elements its branch saw: energies compare where it saw all
        if set(atoms.numbers) <= set(model.head_elements(head)):
            np.testing.assert_allclose(energy, float(expected[f"{key}.energy"]), rtol=energy_rtol, atol=0)
        compared += 1
    assert compared >= 2


def test_multitask_branches_become_heads_with_their_elements(tmp_path: Path) -> None:
    model = LAM.from_pretrained(import_deepmd(str(MULTI), tmp_path / "m"))
    assert set(model.heads) == {"water", "tantalum"}
    assert model.head_elements("water") == (1, 8) and model.head_elements("tantalum") == (73,)
    only = LAM.from_pretrained(import_deepmd(str(MULTI), tmp_path / "ta", branches=["tantalum"]))
    assert list(only.heads) == ["tantalum"]
    card = (tmp_path / "m" / "README.md").read_text()
    assert checkpoint_sha(MULTI) in card and "tantalum" in card
    report = json.loads((tmp_path / "m" / "deepmd_import.json").read_text())
    assert report["model_params"]["model_dict"]["water"]["type_map"] == ["H", "O", "Ta"]


def checkpoint_sha(path: Path) -> str:
    from lam.model.serialization import file_sha256

    return file_sha256(path)


def run_lam(argv: list[str], capsys, monkeypatch) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["lam", *argv])
    with pytest.raises(SystemExit) as exit_info:
        main()
        sys.exit(0)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_the_command_imports_and_the_model_serves(tmp_path: Path, capsys, monkeypatch) -> None:
    out = tmp_path / "dpa2"
    status, _, err = run_lam(["import", "deepmd", str(MULTI), "--out", str(out)], capsys, monkeypatch)
    assert status == 0, err
    status, stdout, _ = run_lam(["info", str(out), "--json"], capsys, monkeypatch)
    heads = {head["name"]: head["elements"] for head in json.loads(stdout)["heads"]}
    assert heads == {"water": ["H", "O"], "tantalum": ["Ta"]}
    frames = ase.io.read(WATER, index=":2")
    ase.io.write(tmp_path / "water.extxyz", frames)
    status, stdout, err = run_lam(
        ["eval", str(out), str(tmp_path / "water.extxyz"), "--head", "water", "--json"], capsys, monkeypatch
    )
    assert status == 0, err
    assert json.loads(stdout)["water"]["force_rmse"] > 0


def _edited_checkpoint(tmp_path: Path, edit) -> Path:  # noqa: ANN001
    data = torch.load(FIXTURES / "dpa2_attn_float64.pt", map_location="cpu", weights_only=True)
    edit(data["model"]["_extra_state"]["model_params"])
    path = tmp_path / "edited.pt"
    torch.save(data, path)
    return path


def test_unsupported_options_are_refused_each_named(tmp_path: Path, capsys, monkeypatch) -> None:
    def edit(params: dict) -> None:
        params["descriptor"]["use_econf_tebd"] = True
        params["descriptor"]["repformer"]["update_h2"] = True

    path = _edited_checkpoint(tmp_path, edit)
    with pytest.raises(UnsupportedDeepmdModel) as refusal:
        build_model(read_checkpoint(str(path)))
    assert "descriptor.use_econf_tebd=True" in str(refusal.value)
    assert "descriptor.repformer.update_h2=True" in str(refusal.value)
    status, _, err = run_lam(
        ["import", "deepmd", str(path), "--out", str(tmp_path / "o")], capsys, monkeypatch
    )
    assert status == 2 and len(err.strip().splitlines()) == 1 and "update_h2" in err
    assert not (tmp_path / "o").exists()


def test_another_descriptor_is_refused(tmp_path: Path) -> None:
    path = _edited_checkpoint(tmp_path, lambda params: params["descriptor"].update(type="se_e2_a"))
    with pytest.raises(UnsupportedDeepmdModel, match="descriptor.type='se_e2_a'"):
        build_model(read_checkpoint(str(path)))


class Payload:
    """An object whose unpickling would run a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_payload_is_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "model.pt"
    torch.save({"model": {"_extra_state": Payload(marker)}}, path)
    with pytest.raises(DeepmdCheckpointError, match="weights_only=True"):
        read_checkpoint(str(path))
    assert not marker.exists()


def test_a_frozen_model_and_a_missing_file_are_refused(tmp_path: Path) -> None:
    (tmp_path / "frozen.pth").write_bytes(b"PK")
    with pytest.raises(DeepmdCheckpointError, match="TorchScript"):
        read_checkpoint(str(tmp_path / "frozen.pth"))
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_checkpoint(str(tmp_path / "missing.pt"))


def test_hub_files_download_and_known_hashes_are_checked(hub, monkeypatch, tmp_path: Path) -> None:
    from lam.interop import deepmd_checkpoint

    hub.api.create_repo("deepmodeling/dpa2-test")
    hub.api.upload_file(path_or_fileobj=str(MULTI), path_in_repo="mt.pt", repo_id="deepmodeling/dpa2-test")
    source = "deepmodeling/dpa2-test:mt.pt"
    assert read_checkpoint(source).sha256 == checkpoint_sha(MULTI)
    monkeypatch.setitem(deepmd_checkpoint.KNOWN_SHA256, source, "0" * 64)
    with pytest.raises(DeepmdCheckpointError, match="expected 0000"):
        read_checkpoint(source)


def test_the_docs_list_every_option_the_import_knows() -> None:
    from lam.interop.deepmd_options import DESCRIPTOR_FIELDS, FITTING_FIXED, FIXED, MODEL_FIXED

    docs = (Path(__file__).resolve().parents[2] / "docs" / "deepmd_import.md").read_text()
    for key in [*DESCRIPTOR_FIELDS, *FIXED, *FITTING_FIXED, *MODEL_FIXED]:
        assert f"{key}`" in docs, key


def test_an_imported_model_fine_tunes_and_publishes(hub, tmp_path: Path, capsys, monkeypatch) -> None:
    model_dir = import_deepmd(str(MULTI), tmp_path / "dpa2")
    ase.io.write(tmp_path / "water.extxyz", ase.io.read(WATER, index=":8"))
    argv = [
        "finetune",
        "--from",
        str(model_dir),
        "--head",
        "water",
        "--data",
        str(tmp_path / "water.extxyz"),
        "--out",
        str(tmp_path / "tuned"),
        "--max-steps",
        "2",
        "--batch-size",
        "2",
    ]
    status, _, err = run_lam(argv, capsys, monkeypatch)
    assert status == 0, err
    tuned = LAM.from_pretrained(tmp_path / "tuned")
    assert tuned.head_elements(next(iter(tuned.heads))) == (1, 8)
    status, _, err = run_lam(
        ["push", str(model_dir), "deepmodeling/dpa2-mt", "--version", "1.0.0"], capsys, monkeypatch
    )
    assert status == 0, err
    assert "deepmd_import.json" in hub.repos["deepmodeling/dpa2-mt"].resolve("v1.0.0").files
