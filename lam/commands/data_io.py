"""``lam data convert``: any supported input to any supported output."""

from __future__ import annotations

import json
from pathlib import Path

from tqdm import tqdm

from lam.data import writers
from lam.data.readers import read_frames


def _skip_report_path(output: str) -> Path:
    return Path(output.rstrip("/") + ".skipped.json")


def convert(
    input: str,
    output: str,
    input_format: str | None = None,
    output_format: str | None = None,
    head: str = "default",
    skip_invalid: bool = False,
    overwrite: bool = False,
    min_distance: float = 0.5,
) -> int:
    """Convert atomistic data between formats, validating every frame.

    Inputs: extxyz (also .xz/.gz), any ase.io file, ASE .db, deepmd/npy system dir(s), a lam
    training-format dir, parquet/arrow files or a Hugging Face Hub id. Outputs: the training format
    (a path with no extension or ending in /), extxyz (.xyz/.extxyz), .db, deepmd/npy
    (--output_format deepmd) or any ase.io format by extension.

    Args:
        input: file, directory or Hub id to read.
        output: file or directory to write.
        input_format: reader name (extxyz, db, deepmd, training, parquet, ...); default: detected.
        output_format: writer name (training, extxyz, db, deepmd, ...); default: from the output path.
        head: head name for frames that carry none.
        skip_invalid: skip invalid frames, listing each with its reason in <output>.skipped.json.
        overwrite: replace an existing output.
        min_distance: smallest allowed interatomic distance, Å.

    Returns:
        The number of frames written.
    """
    report: list[dict[str, str]] = []
    report_path = _skip_report_path(output)
    if skip_invalid and report_path.exists() and not overwrite:
        raise FileExistsError(f"{report_path} exists; pass --overwrite true to replace it")
    frames = read_frames(
        input, format=input_format, skip_invalid=skip_invalid, report=report, min_distance=min_distance
    )
    progress = tqdm(frames, desc=f"convert {input}", unit=" frames")
    count = writers.write_frames(progress, output, format=output_format, overwrite=overwrite, head=head)
    if skip_invalid:
        report_path.write_text(json.dumps(report, indent=1) + "\n")
    skipped = f", skipped {len(report)} invalid (see {report_path})" if skip_invalid else ""
    written_as = writers.output_format(output, output_format)
    print(f"converted {count} frames: {input} -> {output} ({written_as}){skipped}")
    return count


COMMANDS = {"convert": convert}
