"""Element (type) embedding over the whole periodic table.

Row ``Z`` belongs to the element with atomic number ``Z`` (row 0 is unused), so a model never needs a
per-dataset type map: fine-tuning on new elements only trains rows that already exist.
"""

from __future__ import annotations

from torch import Tensor, nn

from lam.nn.mlp import activation_module

N_ELEMENTS = 119  # rows: index = atomic number, 0 unused, 1..118 = H..Og


class ElementEmbedding(nn.Module):
    """``act(table[Z])``: DeePMD's type embedding ``act(W onehot(Z))`` written as a lookup.

    Args:
        dim: embedding width.
        activation: name in :data:`lam.nn.mlp.ACTIVATIONS`; DPA-2 uses none (``"identity"``).
    """

    def __init__(self, dim: int, activation: str = "identity") -> None:
        super().__init__()
        self.table = nn.Embedding(N_ELEMENTS, dim)
        # unit-variance rows: DeePMD's 1/sqrt(n_types + dim) would make 119 element rows nearly zero
        nn.init.normal_(self.table.weight, std=1.0)
        self.activation = activation_module(activation)
        self.dim = dim

    def forward(self, atomic_numbers: Tensor) -> Tensor:
        """Map ``[...]`` int64 atomic numbers (1..118) to ``[..., dim]`` features."""
        if atomic_numbers.numel() and (atomic_numbers.min() < 1 or atomic_numbers.max() >= N_ELEMENTS):
            bad = atomic_numbers[(atomic_numbers < 1) | (atomic_numbers >= N_ELEMENTS)]
            raise ValueError(f"atomic numbers must be in 1..{N_ELEMENTS - 1}, got {bad.unique().tolist()}")
        return self.activation(self.table(atomic_numbers))

    def all_elements(self) -> Tensor:
        """Embeddings of every row, [N_ELEMENTS, dim] (row 0 unused)."""
        return self.activation(self.table.weight)
