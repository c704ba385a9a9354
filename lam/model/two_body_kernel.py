"""The fused C++ kernel of the two-body block (``csrc/two_body.cpp``), compiled on first use.

Frozen models on CPU (the student in MD and labelling) spent most of a small-box evaluation
streaming [atoms, slots, channels] tensors through memory in eager operators. The kernel works
straight from the edge list, eight edges per SIMD vector, and writes dE/dr of every edge in its
backward from the activations its forward kept: the CPU counterpart of DeePMD-kit's compiled
``tabulate_fusion`` ops.

It is built with ``torch.utils.cpp_extension`` (a C++ compiler and ``ninja`` are needed; about 20 s)
and cached under ``TORCH_EXTENSIONS_DIR``, by default ``~/.cache/torch_extensions``. Where it cannot
be built lam warns once and runs the pure-torch path (:mod:`lam.model.two_body_inference`), which
computes the same function; ``LAM_NO_KERNEL=1`` skips the build.
"""

from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from lam.model.two_body_inference import FrozenTwoBodyWeights

SOURCE = Path(__file__).parent / "csrc" / "two_body.cpp"


@functools.cache
def load_kernel() -> object | None:
    """The kernel's ops (``torch.ops.lam_two_body``), or None (one warning) where they cannot be built."""
    if os.environ.get("LAM_NO_KERNEL", "") not in ("", "0"):
        return None
    try:
        from torch.utils.cpp_extension import load

        load(
            name="lam_two_body",
            sources=[str(SOURCE)],
            # -ffast-math lets GCC vectorise exp through glibc's libmvec (the kernel has no NaN
            # tricks); -fopenmp makes at::parallel_for use torch's threads (its libgomp.so.1)
            extra_cflags=["-O3", "-march=native", "-ffast-math", "-fopenmp", "-Wno-psabi"],
            extra_ldflags=["-fopenmp"],
            is_python_module=False,  # registers torch.ops.lam_two_body
            verbose=False,
        )
        return torch.ops.lam_two_body
    except Exception as error:  # noqa: BLE001 - any build failure falls back to the same function in torch
        warnings.warn(
            f"lam: could not build the C++ two-body kernel ({type(error).__name__}: {error}); "
            "frozen models use the pure-torch path (slower on CPU). Set LAM_NO_KERNEL=1 to skip the build.",
            stacklevel=2,
        )
        return None


class TwoBodyKernel(torch.autograd.Function):
    """``D`` [N, M * axis] from edge vectors [E, 3]; backward gives dE/dr of every edge only."""

    @staticmethod
    def forward(ctx, vectors: Tensor, kernel: object, args: tuple) -> Tensor:  # noqa: ANN001
        """Run the kernel; ``args`` are the constant inputs after ``vectors`` (see :func:`two_body`)."""
        invariant, moments, activations = kernel.forward(vectors, *args)
        ctx.save_for_backward(vectors, moments, activations)
        ctx.kernel, ctx.args = kernel, args
        return invariant

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_invariant: Tensor) -> tuple:  # noqa: ANN001
        """dE/dr of every edge (the other inputs are constants of a frozen model)."""
        vectors, moments, activations = ctx.saved_tensors
        grad = ctx.kernel.backward(grad_invariant.contiguous(), moments, activations, vectors, *ctx.args)
        return grad, None, None


def two_body(
    kernel: object,
    vectors: Tensor,
    offsets: Tensor,
    neighbours: Tensor,
    centre_bias: Tensor,
    neighbour_proj: Tensor,
    weights: FrozenTwoBodyWeights,
) -> Tensor:
    """Two-body descriptor of every atom from its edges, through the compiled kernel.

    Args:
        kernel: the ops from :func:`load_kernel`.
        vectors: [E, 3] r_ij of edges grouped by centre (edges beyond the cutoff add nothing).
        offsets: [N + 1] int64, the edges of centre i are ``offsets[i]:offsets[i + 1]``.
        neighbours: [E] int64 neighbour j of every edge.
        centre_bias: [N, w0] centre-type projection of the first layer plus its bias.
        neighbour_proj: [N, w0] neighbour-type projection of every atom.
        weights: the block's constants.

    Returns:
        [N, M * axis_dim] invariant features, differentiable once with respect to ``vectors``.
    """
    layers = weights.layers
    empty = vectors.new_empty(0)
    args = (
        offsets.contiguous(),
        neighbours.contiguous(),
        centre_bias.contiguous(),
        neighbour_proj.contiguous(),
        weights.env_scale.contiguous(),
        weights.radial_weight.contiguous(),
        [w.contiguous() for w, _, _, _ in layers],
        [b.contiguous() for _, b, _, _ in layers],
        [empty if t is None else t.contiguous() for _, _, t, _ in layers],
        [int(bool(r)) for _, _, _, r in layers],
        float(weights.smooth_start),
        float(weights.cutoff),
        float(weights.n_slots_norm),
        int(weights.axis_dim),
    )
    return TwoBodyKernel.apply(vectors.contiguous(), kernel, args)
