#!/usr/bin/env python
"""Build the DeePMD-kit DPA-2 fixtures of ``tests/fixtures/deepmd/`` with real DeePMD-kit.

Run with lam's environment; DeePMD-kit 3.x runs from its own venv (``bash ../shared/peers/setup.sh``
makes one at /tmp/peers). For each fixture this script writes a training input, trains it with
``dp --pt train`` for a few dozen steps on the shipped water and tantalum DFT data (so that no weight
and no statistic is at its initial value), keeps the ``.pt`` checkpoint, and records DeePMD-kit's own
energies, forces and virials (``DeepPot.eval``, per branch) on three structures: a water box, a water
cluster without periodicity and a periodic cell holding H, O and Ta. The tests then need no DeePMD-kit.

    python scripts/make_deepmd_fixtures.py --peers /tmp/peers          # ~5 min on 2 cores

Fixtures are written once and committed; regenerating them changes every expected number.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import ase
import ase.build
import ase.io
import numpy as np
from deepmd_examples import REPFORMER_FLAGS

from lam.data.deepmd_npy import write_systems

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "deepmd"
WATER = ROOT / "data_registry" / "data" / "water_deepmd_example"
TANTALUM = ROOT / "data_registry" / "data" / "ta_snap_pbe" / "data.extxyz.xz"

REPINIT = {
    "tebd_dim": 8,
    "rcut": 5.0,
    "rcut_smth": 0.5,
    "nsel": 60,
    "neuron": [8, 16, 32],
    "axis_neuron": 4,
    "activation_function": "tanh",
    "use_three_body": True,
    "three_body_sel": 24,
    "three_body_rcut": 3.5,
    "three_body_rcut_smth": 3.0,
    "three_body_neuron": [2, 4, 8],
}
REPFORMER = {
    "rcut": 3.5,
    "rcut_smth": 3.0,
    "nsel": 24,
    "nlayers": 3,
    "g1_dim": 32,
    "g2_dim": 16,
    "attn2_hidden": 8,
    "attn2_nhead": 2,
    "attn1_hidden": 16,
    "attn1_nhead": 2,
    "axis_neuron": 4,
    **REPFORMER_FLAGS,
    "update_residual": 0.1,
}
FITTING = {"neuron": [32, 32, 32], "resnet_dt": True, "activation_function": "tanh", "seed": 1}
LOSS = {
    "type": "ener",
    "start_pref_e": 0.02,
    "limit_pref_e": 1,
    "start_pref_f": 1000,
    "limit_pref_f": 1,
    "start_pref_v": 0,
    "limit_pref_v": 0,
}
STEPS = 40
# fixtures kept whole, optimizer state included, as DeePMD-kit writes them; the others keep only the
# model (the optimizer state is not part of the model and triples the size)
WHOLE_CHECKPOINTS = {"dpa2_attn_float64"}


def descriptor(precision: str, pair_attention: bool, atom_attention: bool = False) -> dict:
    repformer = {**REPFORMER, "update_g2_has_attn": pair_attention, "update_g1_has_attn": atom_attention}
    return {
        "type": "dpa2",
        "repinit": dict(REPINIT),
        "repformer": repformer,
        "precision": precision,
        "add_tebd_to_repinit_out": False,
        "seed": 1,
    }


def training(systems: list[str]) -> dict:
    return {"systems": systems, "batch_size": 1}


def single_task(precision: str, pair_attention: bool, atom_attention: bool, data: dict) -> dict:
    """A water-only model (type map O, H: DeePMD's water order, not sorted by Z)."""
    return {
        "model": {
            "type_map": ["O", "H"],
            "descriptor": descriptor(precision, pair_attention, atom_attention),
            "fitting_net": {**FITTING, "precision": precision},
        },
        "learning_rate": {"type": "exp", "decay_steps": 20, "start_lr": 2e-3, "stop_lr": 1e-4},
        "loss": LOSS,
        "training": {
            "training_data": training(data["water"]),
            "numb_steps": STEPS,
            "seed": 1,
            "disp_freq": 20,
            "save_freq": STEPS,
        },
    }


def multi_task(shared_fitting: bool, data: dict) -> dict:
    """Branches ``water`` (H, O) and ``tantalum`` (Ta) over one descriptor and one type map."""
    shared = {"type_map_all": ["H", "O", "Ta"], "dpa2": descriptor("float64", True)}
    fitting: dict | str = {**FITTING, "precision": "float64"}
    if shared_fitting:  # one fitting net, told the branch by a one-hot case embedding
        shared["fitting"] = {**FITTING, "precision": "float64", "dim_case_embd": 2}
        fitting = "fitting"
    branches = {
        name: {"type_map": "type_map_all", "descriptor": "dpa2", "fitting_net": copy.deepcopy(fitting)}
        for name in ("water", "tantalum")
    }
    return {
        "model": {"shared_dict": shared, "model_dict": branches},
        "learning_rate": {"type": "exp", "decay_steps": 20, "start_lr": 2e-3, "stop_lr": 1e-4},
        "loss_dict": {name: LOSS for name in branches},
        "training": {
            "model_prob": {"water": 0.5, "tantalum": 0.5},
            "data_dict": {name: {"training_data": training(data[name])} for name in branches},
            "numb_steps": STEPS,
            "seed": 1,
            "disp_freq": 20,
            "save_freq": STEPS,
        },
    }


FIXTURES = {  # name -> input builder
    "dpa2_attn_float64": lambda data: single_task("float64", True, False, data),
    "dpa2_noattn_atomattn_float32": lambda data: single_task("float32", False, True, data),
    "dpa2_multitask_float64": lambda data: multi_task(False, data),
    "dpa2_multitask_shared_fitting": lambda data: multi_task(True, data),
}


def test_structures() -> dict[str, ase.Atoms]:
    """The three structures every fixture is evaluated on."""
    box = ase.io.read(WATER / "test.extxyz.xz", index=0)
    cluster = ase.Atoms()  # a water trimer, not periodic
    for shift, angle in (([0, 0, 0], 0), ([2.9, 0.2, 0], 110), ([1.3, 2.6, 0.4], 230)):
        molecule = ase.build.molecule("H2O")
        molecule.rotate(angle, "z")
        molecule.rotate(angle / 2, "x")
        molecule.positions += shift
        cluster += molecule
    mixed = ase.Atoms(
        "Ta2H2OH2O",
        positions=[
            [0, 0, 0],
            [2.9, 0, 0],
            [0, 3.4, 1.2],
            [0.8, 3.9, 1.2],
            [0.4, 3.7, 2.0],
            [3.0, 3.2, -1.8],
            [3.8, 3.6, -1.9],
            [3.3, 2.6, -2.5],
        ],
        cell=[8.0, 8.5, 9.0],
        pbc=True,
    )
    mixed.positions += 1.0
    return {"water_box": box, "water_cluster": cluster, "mixed_cell": mixed}


def convert_data(workdir: Path) -> dict[str, list[str]]:
    water = ase.io.read(WATER / "train.extxyz.xz", index=":6")
    tantalum = [a for a in ase.io.read(TANTALUM, index=":") if len(a) <= 60][:6]
    write_systems(water, workdir / "water")
    write_systems(tantalum, workdir / "tantalum")
    systems = {}
    for name in ("water", "tantalum"):
        found = sorted(p.parent for p in (workdir / name).rglob("type.raw"))
        systems[name] = [str(p) for p in found]
    return systems


EVAL_WORKER = """
import json, sys
import ase.io, numpy as np
from deepmd.infer import DeepPot
import deepmd
model, systems_file, heads, out = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
frames = ase.io.read(systems_file, index=":")
arrays = {}
for head in heads:
    pot = DeepPot(model, head=head) if head else DeepPot(model)
    type_map = pot.get_type_map()
    for atoms in frames:
        if any(s not in type_map for s in atoms.get_chemical_symbols()):
            continue
        atype = [type_map.index(s) for s in atoms.get_chemical_symbols()]
        cell = atoms.cell.array.reshape(1, 9) if atoms.pbc.all() else None
        e, f, v = pot.eval(atoms.positions.reshape(1, -1), cell, atype)[:3]
        key = (head or "default") + "." + atoms.info["name"]
        arrays[key + ".energy"] = np.asarray(e).reshape(())
        arrays[key + ".forces"] = np.asarray(f).reshape(-1, 3)
        arrays[key + ".virial"] = np.asarray(v).reshape(3, 3)
np.savez(out, **arrays)
print(deepmd.__version__)
"""


def strip_optimizer(path: Path) -> None:
    """Keep only the model part of a checkpoint (read as plain tensors and containers)."""
    import torch

    torch.save({"model": torch.load(path, map_location="cpu", weights_only=True)["model"]}, path)


def build(name: str, input_json: dict, peers: Path, workdir: Path, structures: Path) -> dict:
    run_dir = workdir / name
    run_dir.mkdir()
    (run_dir / "input.json").write_text(json.dumps(input_json, indent=1))
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "2",
        "DP_INTER_OP_PARALLELISM_THREADS": "1",
        "DP_INTRA_OP_PARALLELISM_THREADS": "2",
        "PATH": f"{peers / 'bin'}:{os.environ['PATH']}",
    }
    subprocess.run(
        [str(peers / "bin" / "dp"), "--pt", "train", "input.json", "--skip-neighbor-stat"],
        cwd=run_dir,
        env=env,
        check=True,
        capture_output=True,
    )
    checkpoint = run_dir / f"model.ckpt-{STEPS}.pt"
    OUT.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(checkpoint, OUT / f"{name}.pt")
    if name not in WHOLE_CHECKPOINTS:
        strip_optimizer(OUT / f"{name}.pt")
    heads = list(input_json["model"].get("model_dict", {None: None}))
    command = [
        str(peers / "bin" / "python"),
        "-c",
        EVAL_WORKER,
        str(checkpoint),
        str(structures),
        json.dumps(heads),
        str(OUT / f"{name}.expected.npz"),
    ]
    version = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout.split()[-1]
    return {"branches": heads, "deepmd_kit_version": version, "training_steps": STEPS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--peers", type=Path, default=Path("/tmp/peers"), help="DeePMD-kit venv")
    parser.add_argument("--only", nargs="*", default=list(FIXTURES))
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    structures = test_structures()
    for name, atoms in structures.items():
        atoms.info = {"name": name}
    structures_file = OUT / "structures.extxyz"
    ase.io.write(structures_file, list(structures.values()))
    manifest_path = OUT / "fixtures.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        data = convert_data(Path(tmp))
        for name in args.only:
            manifest[name] = build(name, FIXTURES[name](data), args.peers, Path(tmp), structures_file)
            print(name, manifest[name], flush=True)
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    np.set_printoptions(precision=4)


if __name__ == "__main__":
    main()
