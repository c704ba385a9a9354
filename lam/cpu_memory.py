"""Keep freed tensor memory in the process, so large systems cost linear time on CPU.

glibc's ``malloc`` hands every block above its mmap threshold (at most 32 MB) straight back to the
kernel when it is freed. A DPA-2 evaluation of a few thousand atoms allocates and frees gigabytes of
such blocks, so every evaluation page-faults all of them in again: on a 5,000-atom water box that is
about 2.8 million page faults per evaluation and more than half of the run time (measured with
``getrusage``; ``scripts/bench_model.py`` reports the scaling). Serving large blocks from the heap
and not trimming it lets the next evaluation reuse the same pages (about 10x fewer faults).

This is what ``LD_PRELOAD``-ing jemalloc or tcmalloc achieves for PyTorch on CPU, without a second
library. It changes the allocator of the whole process, so lam applies it only where it owns the
process (the ``lam`` command and the benchmarks); from Python it is opt-in: call
:func:`reuse_freed_memory` once. ``LAM_SYSTEM_MALLOC=1`` keeps glibc's defaults even then. The
price is memory: freed blocks stay with the process and the heap fragments, so the peak resident
size grows (DPA-2 ``small``, 12,288 water atoms, float32, one thread: 2.0 ms/atom and 18.1 GB,
against 5.6 ms/atom and 13.1 GB with glibc's defaults).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

# mallopt parameter numbers from glibc's <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_LARGEST_TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int

_applied = False


def reuse_freed_memory() -> bool:
    """Make glibc serve large blocks from the heap and keep freed heap memory (idempotent).

    Returns:
        True when the setting is in force, False where it does not apply (not glibc, e.g. macOS,
        Windows or musl; or ``LAM_SYSTEM_MALLOC=1``).
    """
    global _applied
    if _applied:
        return True
    if os.environ.get("LAM_SYSTEM_MALLOC") == "1" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    # mallopt returns 1 on success
    _applied = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _LARGEST_TRIM_THRESHOLD))
    return _applied
