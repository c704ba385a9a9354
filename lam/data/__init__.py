"""Atomic data: the graph object, neighbour lists, readers and writers, registry and statistics.

``lam.data.load(source)`` is the one way in: a file, folder, registered name or HF dataset becomes
the training format (``lam.data.load_frames`` gives ``ase.Atoms`` instead).
"""

from lam.data.graph import AtomicGraph
from lam.data.sources import load, load_frames

__all__ = ["AtomicGraph", "load", "load_frames"]
