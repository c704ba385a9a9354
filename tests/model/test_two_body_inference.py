"""The hand-written inference derivatives of the two-body block agree with autograd."""

import dataclasses

import pytest
import torch

from lam.data.graph import AtomicGraph
from lam.model.config import preset
from lam.model.repinit import Repinit
from lam.testing import build_model, organic_molecule, periodic_alloy, predict

STUDENT = preset("student")
# residual layers of equal width with a learnable timestep exercise the other branch of the backward
DEEP_STUDENT = dataclasses.replace(
    STUDENT, descriptor=dataclasses.replace(STUDENT.descriptor, embedding_widths=(8, 16, 16))
)


def frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    twin = build_model(model.config)
    twin.load_state_dict(model.state_dict())
    return twin.requires_grad_(False)


@pytest.mark.parametrize("config", [STUDENT, DEEP_STUDENT, preset("tiny")], ids=["student", "deep", "tiny"])
def test_frozen_path_equals_autograd(config) -> None:
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
    model = build_model(STUDENT).requires_grad_(False)
    graph = AtomicGraph.from_atoms(organic_molecule(), model.cutoff)
    out = model(graph, compute_forces=True, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        out.forces.sum().backward()
