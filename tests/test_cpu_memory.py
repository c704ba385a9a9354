"""lam.cpu_memory: freed tensor memory is reused instead of being page-faulted in again."""

import json
import os
import subprocess
import sys

import pytest

# a few tens-of-MB tensors alive at once, freed, allocated again (an evaluation's pattern);
# page faults per round after warm-up
PROBE = """
import json, resource
import torch
from lam.cpu_memory import reuse_freed_memory
applied = reuse_freed_memory()
def evaluation():
    tensors = [torch.ones(mb * 2**18) for mb in (40, 48, 64, 36, 52)]
    return sum(t.sum() for t in tensors)
for _ in range(3):
    evaluation()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    evaluation()
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 4
print(json.dumps({"applied": applied, "faults": faults}))
"""
MEGABYTES_PER_ROUND = 40 + 48 + 64 + 36 + 52


def probe(**env: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env={**os.environ, **env}, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_large_blocks_are_reused_without_page_faults():
    tuned = probe()
    default = probe(LAM_SYSTEM_MALLOC="1")
    assert tuned["applied"] and not default["applied"]
    pages = MEGABYTES_PER_ROUND * 2**20 / os.sysconf("SC_PAGE_SIZE")
    # glibc's default maps and unmaps every block each round: one fault per page
    assert default["faults"] > 0.5 * pages
    assert tuned["faults"] < 0.1 * pages  # heap growth may still fault a few MB in some rounds


def test_the_calculator_leaves_the_allocator_alone():
    """Building a calculator from Python must not change the process's malloc (opt-in only)."""
    code = (
        "import torch, lam.cpu_memory as m\n"
        "from lam import LAM, LAMCalculator\nfrom lam.model.config import preset\n"
        "LAMCalculator(LAM(preset('student')))\nprint(m._applied)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"
