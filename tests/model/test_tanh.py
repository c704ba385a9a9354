"""The CPU tanh (2 sigmoid(2x) - 1) equals torch.tanh in value, gradient and second derivative."""

import pytest
import torch

from lam.nn.tanh import MIN_ELEMENTS, tanh


@pytest.mark.parametrize("n", [7, MIN_ELEMENTS + 5])  # both paths: torch.tanh and the identity
def test_tanh_matches_torch_in_float64(n: int) -> None:
    x = torch.linspace(-25.0, 25.0, n, dtype=torch.float64)
    torch.testing.assert_close(tanh(x), torch.tanh(x), rtol=0.0, atol=1e-15)


def test_tanh_float32_error_bound() -> None:
    x = torch.randn(MIN_ELEMENTS * 2) * 4
    assert (tanh(x) - torch.tanh(x)).abs().max() < 3e-7


def test_tanh_first_and_second_derivatives() -> None:
    x = (torch.randn(MIN_ELEMENTS, dtype=torch.float64) * 3).requires_grad_()
    (grad,) = torch.autograd.grad(tanh(x).sum(), x, create_graph=True)
    torch.testing.assert_close(grad, 1 - torch.tanh(x).square())
    (second,) = torch.autograd.grad(grad.sum(), x)
    torch.testing.assert_close(second, -2 * torch.tanh(x) * (1 - torch.tanh(x).square()))


def test_tanh_saturates_without_nan() -> None:
    x = torch.tensor([-1e30, -100.0, 100.0, 1e30]).repeat(MIN_ELEMENTS)
    assert torch.equal(tanh(x), torch.tensor([-1.0, -1.0, 1.0, 1.0]).repeat(MIN_ELEMENTS))
