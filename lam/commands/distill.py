"""``lam distill``: train a fast student on frames a teacher labels along MD (its own and the student's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal


def format_round(record: dict[str, Any]) -> str:
    """The progress line of one round (meV/atom, meV/Å)."""
    held = record["holdout"]
    line = (f"round {record['round']}: {record['frames_teacher_md']} teacher-MD + "
            f"{record['frames_student_md']} student-MD frames, {record['train_frames']} train / "
            f"{record['holdout_frames']} held out, {record['steps']} steps; student vs teacher (held out): "
            f"E MAE {1000 * held['energy_mae_per_atom']:.2f} meV/atom, "
            f"F RMSE {1000 * held['force_rmse']:.2f} meV/Å "
            f"(teacher force RMS {1000 * record['holdout_teacher_force_rms']:.1f} meV/Å)")
    before = record["new_frames_before_training"]
    if before is not None:
        line += f"; new frames before training: F RMSE {1000 * before['force_rmse']:.2f} meV/Å"
    return line


def distill(
    teacher: str | None = None,
    structures: str | None = None,
    out: Path | None = None,
    head: str | None = None,
    student: str = "student",
    temperature_K: float = 300.0,
    rounds: int = 3,
    md_steps: int = 200,
    sample_every: int = 10,
    timestep_fs: float = 1.0,
    strain: float = 0.0,
    target_force_rmse: float = 0.05,
    max_steps_per_round: int = 500,
    lr: float = 1e-3,
    batch_size: int = 4,
    holdout_fraction: float = 0.2,
    stress_weight: float = 0.0,
    dtype: Literal["float32", "float64"] = "float32",
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Distil a teacher LAM into a fast student model (DP-GEN-style rounds of MD, labelling, training).

    Prints one line per round (frames, student-vs-teacher energy MAE/atom and force RMSE on held-out
    frames) and writes OUT as a model folder with distill.json (per-round agreement, speed) and
    agreement.png.

    Args:
        teacher: teacher model: built-in name (lam-mini), local folder, or Hub id org/name[@revision].
        structures: starting structures of the MD (any file read_frames reads; labels are ignored).
        out: output model folder of the student.
        head: teacher head to distil (may be omitted for a single-head teacher).
        student: student preset (student: fast two-body descriptor, no message passing).
        temperature_K: Langevin NVT temperature, K.
        rounds: rounds at most (each: MD, teacher labels, training).
        md_steps: MD steps per trajectory.
        sample_every: label every this many MD steps.
        timestep_fs: MD time step, fs.
        strain: periodic cells start each trajectory from a random strain up to this fraction.
        target_force_rmse: stop when the held-out student-vs-teacher force RMSE is at most this, eV/Å.
        max_steps_per_round: student training steps per round.
        lr: peak learning rate.
        batch_size: frames per training batch.
        holdout_fraction: fraction of each round's frames held out to measure agreement.
        stress_weight: loss prefactor of the stress term (0: energy and forces only).
        dtype: student dtype (float32 or float64).
        seed: seed of the student, MD, splits and training.
        overwrite: replace a model already in OUT.
    """
    from lam.data.readers import read_frames
    from lam.train.distill import DistillOptions
    from lam.train.distill import distill as run_distill

    if teacher is None or structures is None or out is None:
        raise ValueError("lam distill needs --teacher MODEL, --structures FILE and --out DIR")
    options = DistillOptions(
        head=head, student=student, temperature_K=temperature_K, rounds=rounds, md_steps=md_steps,
        sample_every=sample_every, timestep_fs=timestep_fs, strain=strain,
        target_force_rmse=target_force_rmse, max_steps_per_round=max_steps_per_round, lr=lr,
        batch_size=batch_size, holdout_fraction=holdout_fraction, stress_weight=stress_weight, dtype=dtype,
        seed=seed,
    )
    frames = list(read_frames(structures))
    result = run_distill(teacher, frames, out, options, str(structures), overwrite,
                         progress=lambda record: print(format_round(record), flush=True))
    speed = result.speed
    print(f"{'converged' if result.converged else 'target not reached'} after {len(result.rounds)} round(s); "
          f"teacher {speed['teacher_us_per_atom']:.0f} µs/atom, student {speed['student_us_per_atom']:.0f} "
          f"µs/atom ({speed['speedup']:.1f}x, {speed['n_atoms']} atoms, "
          f"load {speed['load_average_1min']:.1f})")
    print(f"saved {out}")
    return Path(out)


COMMANDS = {"distill": distill}
