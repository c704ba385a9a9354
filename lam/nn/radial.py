"""Smooth switching function and the DeePMD environment matrix.

DeePMD's environment-matrix row of neighbour j of centre i is

    R_ij = s(r_ij) [1, x_ij / r_ij, y_ij / r_ij, z_ij / r_ij],   s(r) = sw(r) / r,

with ``sw`` a C2 polynomial switch that is 1 below ``smooth_start`` and 0 at ``cutoff``: every
quantity built from R (and from ``sw``) goes to zero continuously, with continuous first and second
derivatives, as a neighbour leaves the cutoff sphere, so energies and forces stay continuous.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lam.nn.embedding import N_ELEMENTS


def smooth_switch(distances: Tensor, smooth_start: float, cutoff: float) -> Tensor:
    """DeePMD's switch: 1 for r <= smooth_start, u^3 (-6u^2 + 15u - 10) + 1 between, 0 at r >= cutoff.

    Args:
        distances: any shape, Å.
        smooth_start: where the switch starts to decay, Å.
        cutoff: where it reaches zero with zero first and second derivative, Å.

    Returns:
        Tensor of the same shape, in [0, 1].
    """
    if not 0.0 <= smooth_start < cutoff:
        raise ValueError(f"need 0 <= smooth_start < cutoff, got {smooth_start} and {cutoff}")
    # clamping zeroes the gradient outside the switching shell, where sw is constant
    u = (distances.clamp(smooth_start, cutoff) - smooth_start) / (cutoff - smooth_start)
    return u * u * u * (-6.0 * u * u + 15.0 * u - 10.0) + 1.0


class EnvironmentMatrix(nn.Module):
    """Normalised environment matrix of padded neighbour slots.

    The rows are divided by a per-element standard deviation of the centre atom (radial column and
    the three angular columns separately), stored as the buffer ``env_std [N_ELEMENTS, 2]``. The
    mean is fixed at zero, as in DeePMD's DPA-2 (``set_davg_zero``), so that an empty or departing
    neighbour slot is exactly zero. ``env_std`` starts at 1 and can be fitted to data with
    :meth:`fit_std` (it is a buffer: saved in the state dict, not trained).

    Args:
        cutoff: Å.
        smooth_start: Å, start of the switching shell.
    """

    def __init__(self, cutoff: float, smooth_start: float) -> None:
        super().__init__()
        smooth_switch(torch.zeros(()), smooth_start, cutoff)  # validates the pair once
        self.cutoff = float(cutoff)
        self.smooth_start = float(smooth_start)
        self.register_buffer("env_std", torch.ones(N_ELEMENTS, 2))

    def forward(self, vectors: Tensor, mask: Tensor, centre_numbers: Tensor) -> tuple[Tensor, Tensor]:
        """Environment matrix and switch of every neighbour slot.

        Args:
            vectors: [N, nnei, 3] r_ij in Å; padded slots may hold anything non-zero.
            mask: [N, nnei] bool, True for real neighbours.
            centre_numbers: [N] int64 atomic numbers of the centres.

        Returns:
            env: [N, nnei, 4] normalised R_ij (zero on padded slots).
            switch: [N, nnei] sw(r_ij) (zero on padded slots).
        """
        env, switch = self.raw(vectors, mask)
        std = self.env_std[centre_numbers]  # [N, 2]
        scale = torch.cat([std[:, :1], std[:, 1:].expand(-1, 3)], dim=-1)  # [N, 4]
        return env / scale.unsqueeze(1), switch

    def raw(self, vectors: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Un-normalised rows ``s(r) [1, x/r, y/r, z/r]`` [N, nnei, 4] and the switch [N, nnei]."""
        distances = vectors.norm(dim=-1)  # [N, nnei]
        switch = smooth_switch(distances, self.smooth_start, self.cutoff) * mask
        radial = switch / distances  # s(r) [N, nnei]
        env = torch.cat([radial.unsqueeze(-1), (radial / distances).unsqueeze(-1) * vectors], dim=-1)
        return env, switch

    @torch.no_grad()
    def fit_std(
        self, vectors: Tensor, mask: Tensor, centre_numbers: Tensor, n_slots: int, min_std: float = 1e-2
    ) -> None:
        """Set ``env_std`` from neighbour slots of training structures, as DeePMD's statistics do.

        Standard deviation of the radial column and, pooled, of the three angular columns, per
        element of the centre. Moments are taken over ``n_slots`` slots per centre (empty slots count
        as zero), so the statistic does not depend on how wide the padding happened to be. Elements
        absent from ``centre_numbers`` keep their current value.

        Args:
            vectors: [N, nnei, 3] r_ij in Å.
            mask: [N, nnei] bool.
            centre_numbers: [N] atomic numbers of the centres.
            n_slots: slots per centre the moments are normalised by (the block's ``max_neighbors``).
            min_std: floor, which protects elements seen with very few neighbours.
        """
        env, _ = self.raw(vectors, mask)
        counts = torch.bincount(centre_numbers, minlength=N_ELEMENTS).to(env.dtype) * n_slots
        sums = env.new_zeros(N_ELEMENTS, 4)  # radial sum, radial sum sq, angular sum, angular sum sq
        per_atom = [env[..., 0].sum(-1), env[..., 0].square().sum(-1)]
        per_atom += [env[..., 1:].sum((-1, -2)), env[..., 1:].square().sum((-1, -2))]
        sums.index_add_(0, centre_numbers, torch.stack(per_atom, dim=-1))
        seen = counts > 0
        n = counts[seen, None] * torch.tensor([1.0, 3.0], dtype=env.dtype, device=env.device)
        mean, mean_sq = sums[seen][:, 0::2] / n, sums[seen][:, 1::2] / n  # [n_seen, 2] each
        std = (mean_sq - mean.square()).clamp_min(0.0).sqrt()
        self.env_std[seen] = std.clamp_min(min_std).to(self.env_std.dtype)
