"""The inference paths of the two-body block (hand-written torch, fused C++ kernel) agree with autograd."""

import dataclasses
import os
import shutil

import pytest
import torch

from lam.data.graph import AtomicGraph
from lam.model import repinit, two_body_kernel
from lam.model.config import preset
from lam.model.repinit import Repinit
from lam.testing import build_model, organic_molecule, periodic_alloy, predict

STUDENT = preset("student")
# residual layers of equal width with a learnable timestep exercise the other branch of the backward
DEEP_STUDENT = dataclasses.replace(
    STUDENT, descriptor=dataclasses.replace(STUDENT.descriptor, embedding_widths=(8, 16, 16))
)
# a distilled student divides the neighbour sum by a fitted count, not by its slots
NORMALIZED_STUDENT = dataclasses.replace(
    STUDENT, descriptor=dataclasses.replace(STUDENT.descriptor, neighbor_normalizer=7.25)
)


def frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    twin = build_model(model.config)
    twin.load_state_dict(model.state_dict())
    return twin.for_inference()


@pytest.fixture(params=["kernel", "torch"])
def inference_path(request, monkeypatch) -> str:
    """Run a test with the C++ kernel and with the torch path.

    The kernel variant is skipped only where the kernel is switched off or no C++ compiler exists;
    a failed build with a compiler present is a failure, not a skip.
    """
    if request.param == "kernel" and two_body_kernel.load_kernel() is None:
        if os.environ.get("LAM_NO_KERNEL", "") not in ("", "0"):
            pytest.skip("LAM_NO_KERNEL is set")
        if shutil.which(os.environ.get("CXX", "c++")) is None:
            pytest.skip("no C++ compiler to build the two-body kernel")
        pytest.fail("the C++ two-body kernel failed to build although a compiler is present")
    if request.param == "torch":
        monkeypatch.setattr(repinit, "load_kernel", lambda: None)
    return request.param


def kernel_calls(monkeypatch) -> list:
    """Record every call of the kernel's autograd function."""
    calls = []
    original = two_body_kernel.TwoBodyKernel.apply

    def spy(*args):  # noqa: ANN002, ANN202
        calls.append(args[0].shape)
        return original(*args)

    monkeypatch.setattr(two_body_kernel.TwoBodyKernel, "apply", spy)
    return calls


@pytest.mark.parametrize(
    "config",
    [STUDENT, DEEP_STUDENT, NORMALIZED_STUDENT, preset("tiny")],
    ids=["student", "deep", "normalized", "tiny"],
)
def test_frozen_path_equals_autograd(config, inference_path, monkeypatch) -> None:
    calls = kernel_calls(monkeypatch)
    model = build_model(config)
    for layer in model.modules():  # random timesteps and env statistics, so nothing is trivially 1
        if isinstance(layer, Repinit):
            layer.env.env_std.uniform_(0.3, 2.0)
            for hidden in layer.rest.hidden:
                if hidden.timestep is not None:
                    hidden.timestep.data.uniform_(0.5, 1.5)
    frozen = frozen_copy(model)
    frames = [periodic_alloy(), organic_molecule()]
    ref, out = predict(model, frames, stress=True), predict(frozen, frames, stress=True)
    assert any(isinstance(m, Repinit) and m.frozen_inference(torch.zeros(1)) for m in frozen.modules())
    for name in ("energy", "forces", "stress"):
        expected, got = getattr(ref, name).detach(), getattr(out, name).detach()
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)
    assert float(ref.forces.abs().max()) > 1e-3  # the comparison is not between zeros
    # the student runs on the kernel where it is available; DPA-2 needs the slots for later blocks
    assert bool(calls) == (inference_path == "kernel" and config.descriptor.kind == "two_body")


def test_kernel_ignores_edges_beyond_the_cutoff(inference_path) -> None:
    """Edges of a longer neighbour list (built for a teacher) add nothing, as the slot path drops them."""
    model = build_model(STUDENT)
    frozen = frozen_copy(model)
    atoms = periodic_alloy()
    short = AtomicGraph.from_atoms(atoms, model.cutoff)
    long = AtomicGraph.from_atoms(atoms, model.cutoff + 1.5)
    assert long.edge_index.shape[1] > short.edge_index.shape[1]
    ref = model(short, compute_forces=True, compute_stress=True)
    out = frozen(long, compute_forces=True, compute_stress=True)
    for name in ("energy", "forces", "stress"):
        expected = getattr(ref, name).detach()
        torch.testing.assert_close(getattr(out, name).detach(), expected, rtol=1e-10, atol=1e-12)


def test_neighbour_cap_takes_the_slot_path(monkeypatch) -> None:
    """Where a centre has more edges than max_neighbors the nearest are kept, on the slot path."""
    capped = dataclasses.replace(STUDENT, descriptor=dataclasses.replace(STUDENT.descriptor, max_neighbors=8))
    model = build_model(capped)
    frozen = frozen_copy(model)
    calls = kernel_calls(monkeypatch)
    frames = [periodic_alloy()]
    ref, out = predict(model, frames), predict(frozen, frames)
    assert all(shape[0] == 0 for shape in calls)  # only the edgeless isolated-atom pass
    torch.testing.assert_close(out.forces.detach(), ref.forces.detach(), rtol=1e-10, atol=1e-12)


def test_training_mode_keeps_autograd() -> None:
    """Frozen weights in train mode (a frozen-descriptor fine-tune) still allow force training."""
    model = build_model(STUDENT)
    model.descriptor.requires_grad_(False)
    model.train()
    out = predict(model, [organic_molecule()])
    head_weight = model.heads["default"].mlp.output.weight
    (grad,) = torch.autograd.grad(out.forces.square().sum(), [head_weight])
    assert float(grad.abs().max()) > 0.0


def test_second_derivative_is_refused() -> None:
    """The inference backward is not differentiable again: asking for it fails loudly, not wrongly."""
    model = build_model(STUDENT).for_inference()
    graph = AtomicGraph.from_atoms(organic_molecule(), model.cutoff)
    out = model(graph, compute_forces=True, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        out.forces.sum().backward()


def test_inference_mode_is_explicit() -> None:
    """Only for_inference() selects the hand-written path; training an inference-mode model fails loudly."""
    model = build_model(STUDENT).requires_grad_(False)  # frozen weights alone change nothing
    repinit_block = next(m for m in model.modules() if isinstance(m, Repinit))
    assert not repinit_block.frozen_inference(torch.zeros(1))
    model.for_inference()
    assert repinit_block.frozen_inference(torch.zeros(1))
    model.train()
    with pytest.raises(RuntimeError, match="for_inference"):
        predict(model, [organic_molecule()])
    model.for_inference(False)
    assert not repinit_block.frozen_inference(torch.zeros(1))
    assert all(p.requires_grad for p in model.parameters())
