"""Atomic data: the graph object, neighbour lists, readers and writers, registry and statistics."""

from lam.data.graph import AtomicGraph

__all__ = ["AtomicGraph"]
