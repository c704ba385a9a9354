#!/usr/bin/env python
"""TorchSim batched MD of many small cells against one ASE run after another, with the same lam model.

Both run NVE Velocity Verlet at 1 fs for ``--steps`` steps on ``--systems`` rattled 32-atom Cu/Au fcc
cells with ``lam-mini`` (head ``mptrj_random1k_pbe``, float32, inference mode), in this process:
  * TorchSim: one ``SimState`` holding every cell, one model call per step
    (:class:`lam.integrations.torchsim.LAMModel`; a fresh neighbour search per step);
  * ASE: ``VelocityVerlet`` with ``LAMCalculator`` (0.5 Å Verlet skin), one cell after another.
Prints ONE JSON object: atom-steps/s of each, their ratio, the machine's load.

    python scripts/bench_torchsim.py [--systems 16] [--steps 50] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch
from ase import units
from ase.build import bulk
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.md.verlet import VelocityVerlet

HEAD = "mptrj_random1k_pbe"


def cells(n_systems: int) -> list:
    """Rattled 32-atom fcc cells, 30% Au on random sites, each with its own seed."""
    out = []
    for seed in range(n_systems):
        rng = np.random.default_rng(seed)
        atoms = bulk("Cu", "fcc", a=3.7, cubic=True).repeat(2)
        atoms.numbers[rng.random(len(atoms)) < 0.3] = 79
        atoms.rattle(0.05, seed=seed)
        out.append(atoms)
    return out


def run_ase(model, systems: list, steps: int) -> float:
    """Seconds for ``steps`` Velocity Verlet steps of each system in turn."""
    from lam.calculator import LAMCalculator

    start = time.perf_counter()
    for seed, atoms in enumerate(systems):
        atoms = atoms.copy()
        atoms.calc = LAMCalculator(model, head=HEAD, dtype="float32")
        MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(seed))
        VelocityVerlet(atoms, timestep=1.0 * units.fs).run(steps)
    return time.perf_counter() - start


def run_torchsim(model, systems: list, steps: int) -> float:
    """Seconds for ``steps`` NVE steps of all systems at once."""
    import torch_sim as ts
    from torch_sim.units import MetalUnits

    from lam.integrations.torchsim import LAMModel

    sim_model = LAMModel(model, head=HEAD, device="cpu", dtype=torch.float32)
    state = ts.io.atoms_to_state(systems, torch.device("cpu"), torch.float32)
    femtosecond, kelvin = 0.001 * MetalUnits.time, MetalUnits.temperature
    init, step = ts.nve(model=sim_model, dt=torch.tensor(femtosecond), kT=torch.tensor(300 * kelvin), seed=0)
    start = time.perf_counter()
    state = init(state)
    for _ in range(steps):
        state = step(state)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", type=int, default=16)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from lam.model.lam import LAM

    model = LAM.from_pretrained("lam-mini").for_inference().float()
    systems = cells(args.systems)
    run_ase(model, systems[:1], 3)  # warm-up: allocations, lazy initialisation
    run_torchsim(model, systems[:2], 3)
    load_before = os.getloadavg()[0]
    ase_s = run_ase(model, systems, args.steps)
    torchsim_s = run_torchsim(model, systems, args.steps)
    atom_steps = sum(len(a) for a in systems) * args.steps
    print(
        json.dumps(
            {
                "systems": args.systems,
                "atoms_per_system": len(systems[0]),
                "steps": args.steps,
                "threads": args.threads,
                "ase_sequential_atom_steps_per_s": atom_steps / ase_s,
                "torchsim_batched_atom_steps_per_s": atom_steps / torchsim_s,
                "torchsim_over_ase": ase_s / torchsim_s,
                "load_average_1min": [load_before, os.getloadavg()[0]],
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
