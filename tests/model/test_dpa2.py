"""Physics and plumbing tests of the DPA-2 descriptor (float64, small configs, < 30 s)."""

from __future__ import annotations

import math

import pytest
import torch

from lam.model.config import DPA2Config, preset
from lam.model.descriptor import DPA2Descriptor
from lam.model.repformer import ATTENTION_SHIFT, AtomAttention, PairAttention, padded_softmax
from lam.nn.neighbors import dense_neighbors, restrict_neighbors
from lam.nn.radial import EnvironmentMatrix, smooth_switch

torch.set_num_threads(1)
DTYPE = torch.float64
TOL = 1e-10  # float64 agreement of exactly equivalent computations

# Every optional branch on, small widths; residual scales of order one so that the repformer
# terms are not hidden behind DeePMD's 0.01 initial scale.
FULL = DPA2Config(
    repinit_cutoff=5.0,
    repinit_smooth_start=0.5,
    repinit_max_neighbors=30,
    repinit_embedding_widths=(6, 12),
    repinit_axis_dim=4,
    use_three_body=True,
    three_body_max_neighbors=20,
    three_body_embedding_widths=(2, 4),
    repformer_max_neighbors=20,
    n_repformer_layers=2,
    atom_dim=16,
    pair_dim=8,
    atom_attention=True,
    atom_attention_hidden=8,
    atom_attention_heads=2,
    pair_attention_hidden=4,
    pair_attention_heads=2,
    pair_self_product=True,
    residual_init_scale=0.5,
)
TINY = preset("tiny").descriptor
CONFIGS = {"full": FULL, "tiny": TINY}


def make_descriptor(config: DPA2Config, seed: int = 0) -> DPA2Descriptor:
    """A float64 descriptor with seeded parameters."""
    torch.manual_seed(seed)
    return DPA2Descriptor(config).to(DTYPE)


def edges(positions: torch.Tensor, cutoff: float) -> tuple[torch.Tensor, torch.Tensor]:
    """All pairs i != j closer than ``cutoff`` of a non-periodic cluster; vectors carry autograd."""
    n = positions.shape[0]
    centre, neighbor = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    centre, neighbor = centre.flatten(), neighbor.flatten()
    vectors = positions[neighbor] - positions[centre]
    keep = (centre != neighbor) & (vectors.detach().norm(dim=-1) < cutoff)
    return torch.stack([centre[keep], neighbor[keep]]), vectors[keep]


def cluster(n: int, seed: int, box: float = 4.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Random atoms (H, C, O, Fe) at least 0.9 Å apart, and their atomic numbers."""
    gen = torch.Generator().manual_seed(seed)
    points: list[torch.Tensor] = []
    while len(points) < n:
        p = torch.rand(3, generator=gen, dtype=DTYPE) * box
        if all((p - q).norm() > 0.9 for q in points):
            points.append(p)
    numbers = torch.tensor([1, 6, 8, 26])[torch.randint(0, 4, (n,), generator=gen)]
    return torch.stack(points), numbers


def features(model: DPA2Descriptor, positions: torch.Tensor, numbers: torch.Tensor) -> torch.Tensor:
    """Descriptor features of a non-periodic cluster."""
    return model(numbers, *edges(positions, model.config.repinit_cutoff))


def random_rotation(seed: int) -> torch.Tensor:
    """A seeded proper rotation matrix."""
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(seed), dtype=DTYPE))
    q = q * torch.sign(torch.diagonal(r))
    return q if torch.det(q) > 0 else -q


@pytest.mark.parametrize("name", CONFIGS)
def test_rotation_translation_permutation_invariance(name: str) -> None:
    """Features are invariant under E(3) and permute with the atoms."""
    model = make_descriptor(CONFIGS[name])
    positions, numbers = cluster(10, seed=1)
    reference = features(model, positions, numbers)
    assert reference.shape == (10, model.output_dim)
    rotated = positions @ random_rotation(2).T + torch.tensor([3.0, -1.0, 7.5], dtype=DTYPE)
    torch.testing.assert_close(features(model, rotated, numbers), reference, atol=TOL, rtol=0)
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(
        features(model, positions[perm], numbers[perm]), reference[perm], atol=TOL, rtol=0
    )
    # a reflection is also a symmetry of the invariant features
    torch.testing.assert_close(features(model, -positions, numbers), reference, atol=TOL, rtol=0)


def _probe_scan(model: DPA2Descriptor, cutoff: float, offsets: list[float]) -> list[torch.Tensor]:
    """Features of a 3-atom cluster plus a probe whose distance to atom 0 is ``cutoff + offset``.

    The other cluster atoms stay at least 0.9 Å farther from the probe, so only the pair (0, probe)
    crosses ``cutoff``.
    """
    base = torch.tensor([[0.0, 0.0, 0.0], [-1.1, 0.5, 0.0], [-0.9, -0.7, 0.6]], dtype=DTYPE)
    numbers = torch.tensor([8, 1, 6, 1])
    direction = torch.tensor([1.0, 0.2, -0.1], dtype=DTYPE)
    direction = direction / direction.norm()
    out = []
    for offset in offsets:
        positions = torch.cat([base, ((cutoff + offset) * direction)[None]])
        out.append(features(model, positions, numbers))
    return out


@pytest.mark.parametrize("which", ["repinit", "repformer"])
def test_smooth_when_a_neighbour_crosses_a_cutoff(which: str) -> None:
    """Features are continuous as a neighbour crosses the repinit or repformer cutoff."""
    model = make_descriptor(FULL)
    cutoff = FULL.repinit_cutoff if which == "repinit" else FULL.repformer_cutoff
    eps = 1e-8  # the other pairs move by 2 eps too, so the features change by O(eps) anyway
    # well inside the switching shell but outside every smaller cutoff
    deep = -0.9 if which == "repinit" else -0.4
    inside, outside, deeper = _probe_scan(model, cutoff, [-eps, eps, deep])
    assert (deeper - outside).abs().max() > 1e-6  # the probe does change the features...
    # ...but nothing jumps as it crosses the cutoff (a hard cutoff would jump by > 1e-6 here)
    assert (inside - outside).abs().max() < 1e-10


def test_forces_continuous_at_cutoff() -> None:
    """Gradients (forces) are continuous as a neighbour crosses the repformer cutoff."""
    model = make_descriptor(FULL)
    base = torch.tensor([[0.0, 0.0, 0.0], [-1.1, 0.5, 0.0], [-0.9, -0.7, 0.6]], dtype=DTYPE)
    numbers = torch.tensor([8, 1, 6, 1])
    weights = torch.randn(4, model.output_dim, generator=torch.Generator().manual_seed(0), dtype=DTYPE)
    grads = []
    for r in (FULL.repformer_cutoff - 1e-5, FULL.repformer_cutoff + 1e-5):
        probe = torch.tensor([[r, 0.0, 0.0]], dtype=DTYPE)
        positions = torch.cat([base, probe]).requires_grad_()
        energy = (features(model, positions, numbers) * weights).sum()
        grads.append(torch.autograd.grad(energy, positions)[0])
    assert (grads[0] - grads[1]).abs().max() < 1e-6


def test_isolated_atoms_have_finite_element_only_features() -> None:
    """Atoms without neighbours get finite features that depend only on their element."""
    model = make_descriptor(FULL)
    numbers = torch.tensor([1, 8, 1, 92])
    no_edges = torch.zeros(2, 0, dtype=torch.long)
    out = model(numbers, no_edges, torch.zeros(0, 3, dtype=DTYPE))
    assert out.shape == (4, model.output_dim) and torch.isfinite(out).all()
    torch.testing.assert_close(out[0], out[2], atol=0, rtol=0)
    assert (out[0] - out[1]).abs().max() > 1e-3
    # an atom far from a cluster is unaffected by it
    positions, cluster_numbers = cluster(5, seed=4, box=2.5)
    far = torch.tensor([[30.0, 0.0, 0.0]], dtype=DTYPE)
    mixed = features(model, torch.cat([positions, far]), torch.cat([cluster_numbers, numbers[1:2]]))
    torch.testing.assert_close(mixed[-1], out[1], atol=TOL, rtol=0)


@pytest.mark.parametrize("name", CONFIGS)
def test_batch_of_two_graphs_equals_each_alone(name: str) -> None:
    """Graphs batched together give the same features as alone."""
    model = make_descriptor(CONFIGS[name])
    # different densities give different padding widths; results must not depend on them
    pos_a, num_a = cluster(9, seed=5, box=3.5)
    pos_b, num_b = cluster(5, seed=6, box=6.0)
    alone = [features(model, pos_a, num_a), features(model, pos_b, num_b)]
    index_a, vec_a = edges(pos_a, model.config.repinit_cutoff)
    index_b, vec_b = edges(pos_b, model.config.repinit_cutoff)
    batched = model(
        torch.cat([num_a, num_b]), torch.cat([index_a, index_b + 9], dim=1), torch.cat([vec_a, vec_b])
    )
    torch.testing.assert_close(batched, torch.cat(alone), atol=TOL, rtol=0)


def test_gradients_and_double_backward() -> None:
    """Analytic first and second derivatives match finite differences; force losses train."""
    model = make_descriptor(FULL)
    positions, numbers = cluster(5, seed=7, box=3.0)
    weights = torch.randn(5, model.output_dim, generator=torch.Generator().manual_seed(1), dtype=DTYPE)

    def energy(pos: torch.Tensor) -> torch.Tensor:
        return (features(model, pos, numbers) * weights).sum()

    pos = positions.clone().requires_grad_()
    assert torch.autograd.gradcheck(energy, (pos,), eps=1e-6, atol=1e-6)
    assert torch.autograd.gradgradcheck(energy, (pos,), eps=1e-6, atol=1e-5)
    # an energy + force loss trains every parameter (forces through create_graph=True)
    e = energy(pos)
    forces = -torch.autograd.grad(e, pos, create_graph=True)[0]
    (e + forces.square().sum()).backward()
    unused = [name for name, p in model.named_parameters() if p.grad is None]
    assert not unused  # DDP fails on parameters outside the graph
    assert all(torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0 for p in model.parameters())


def test_fitted_environment_scale_is_saved_and_used() -> None:
    """Fitted environment scales change the output and round-trip through the state dict."""
    model = make_descriptor(FULL)
    positions, numbers = cluster(10, seed=10)
    before = features(model, positions, numbers)
    model.fit_environment_std(numbers, *edges(positions, FULL.repinit_cutoff))
    fitted = {k: v for k, v in model.state_dict().items() if k.endswith("env_std")}
    assert set(fitted) == {"repinit.env.env_std", "three_body.env.env_std", "repformer_env.env_std"}
    for std in fitted.values():
        assert (std[numbers] != 1.0).all() and (std[2] == 1.0).all()  # helium was not in the data
    after = features(model, positions, numbers)
    assert (after - before).abs().max() > 1e-3
    fresh = make_descriptor(FULL, seed=1)
    fresh.load_state_dict(model.state_dict())
    torch.testing.assert_close(features(fresh, positions, numbers), after, atol=0, rtol=0)


def test_float32_matches_float64() -> None:
    """Single precision runs and agrees with double precision."""
    model = make_descriptor(TINY)
    positions, numbers = cluster(8, seed=8)
    reference = features(model, positions, numbers)
    single = features(model.float(), positions.float(), numbers)
    assert single.dtype == torch.float32
    torch.testing.assert_close(single.double(), reference, atol=1e-4, rtol=1e-4)


def test_neighbour_slots_keep_the_nearest_and_restrict_consistently() -> None:
    """The cap keeps the nearest neighbours; restricting equals rebuilding."""
    positions, _ = cluster(12, seed=9, box=4.0)
    index, vectors = edges(positions, 5.0)
    slots = dense_neighbors(index, vectors, 12, cutoff=5.0, max_neighbors=4)
    assert slots.index.shape == (12, 4)
    distances = (positions[:, None] - positions[None]).norm(dim=-1) + torch.eye(12, dtype=DTYPE) * 99
    nearest = distances.sort(dim=1).indices[:, :4]
    torch.testing.assert_close(slots.index, nearest, atol=0, rtol=0)
    torch.testing.assert_close(slots.vectors, positions[slots.index] - positions[:, None], atol=TOL, rtol=0)
    wide = dense_neighbors(index, vectors, 12, cutoff=5.0, max_neighbors=50)
    direct = dense_neighbors(index, vectors, 12, cutoff=2.5, max_neighbors=3)
    restricted = restrict_neighbors(wide, cutoff=2.5, max_neighbors=3)
    assert torch.equal(restricted.mask, direct.mask)
    torch.testing.assert_close(restricted.index[direct.mask], direct.index[direct.mask], atol=0, rtol=0)
    torch.testing.assert_close(restricted.vectors, direct.vectors, atol=0, rtol=0)


def test_unordered_slots_hold_the_same_neighbours_in_input_order() -> None:
    """nearest_first=False skips the sort but keeps every neighbour (and sorts when the cap bites)."""
    positions, _ = cluster(12, seed=3, box=4.0)
    index, vectors = edges(positions, 5.0)
    order = torch.argsort(index[0], stable=True)  # grouped by centre, as lam's neighbour list gives
    index, vectors = index[:, order], vectors[order]
    nearest = dense_neighbors(index, vectors, 12, cutoff=5.0, max_neighbors=50)
    unordered = dense_neighbors(index, vectors, 12, cutoff=5.0, max_neighbors=50, nearest_first=False)
    assert torch.equal(unordered.mask, nearest.mask)
    for row in range(12):
        real = unordered.mask[row]
        assert unordered.index[row][real].tolist() == index[1][index[0] == row].tolist()  # input order
        assert sorted(unordered.index[row][real].tolist()) == sorted(nearest.index[row][real].tolist())
    capped = dense_neighbors(index, vectors, 12, cutoff=5.0, max_neighbors=4, nearest_first=False)
    assert torch.equal(capped.index, dense_neighbors(index, vectors, 12, 5.0, 4).index)


def test_padded_softmax_equals_softmax_over_explicit_padding() -> None:
    """Virtual slots act as explicit padding at logit -shift."""
    logits = torch.randn(3, 5, dtype=DTYPE) * 10
    padded = torch.cat([logits, torch.full((3, 4), -ATTENTION_SHIFT, dtype=DTYPE)], dim=-1)
    expected = torch.softmax(padded, dim=-1)[:, :5]
    torch.testing.assert_close(padded_softmax(logits, 4), expected, atol=1e-14, rtol=0)


def test_attention_forgets_a_neighbour_whose_switch_vanishes() -> None:
    """A slot with sw -> 0 must act exactly like an absent slot, even with non-zero directions."""
    torch.manual_seed(0)
    pair_attention = PairAttention(pair_dim=6, hidden_dim=4, n_heads=2, gate=True).to(DTYPE)
    atom_attention = AtomAttention(atom_dim=6, hidden_dim=4, n_heads=2).to(DTYPE)
    pair_feats, dirs = torch.randn(2, 5, 6, dtype=DTYPE), torch.randn(2, 5, 3, dtype=DTYPE)
    atom_feats, nbr_feats = torch.randn(2, 6, dtype=DTYPE), torch.randn(2, 5, 6, dtype=DTYPE)
    switch = torch.rand(2, 5, dtype=DTYPE) * 0.5 + 0.5
    switch[:, 2] = 1e-12  # slot 2 about to leave
    keep = [0, 1, 3, 4]
    nsel = 8
    with_slot = pair_attention(pair_feats, dirs, switch, nsel)[:, keep]
    without = pair_attention(pair_feats[:, keep], dirs[:, keep], switch[:, keep], nsel)
    torch.testing.assert_close(with_slot, without, atol=1e-9, rtol=0)
    with_slot = atom_attention(atom_feats, nbr_feats, switch, nsel)
    without = atom_attention(atom_feats, nbr_feats[:, keep], switch[:, keep], nsel)
    torch.testing.assert_close(with_slot, without, atol=1e-9, rtol=0)


def test_switch_and_environment_matrix() -> None:
    """Switch values and derivatives at its ends; environment rows and their statistics."""
    r = torch.tensor([0.3, 0.5, 2.75, 5.0, 6.0], dtype=DTYPE, requires_grad=True)
    sw = smooth_switch(r, 0.5, 5.0)
    torch.testing.assert_close(sw.detach(), torch.tensor([1.0, 1.0, 0.5, 0.0, 0.0], dtype=DTYPE))
    (dsw,) = torch.autograd.grad(sw.sum(), r)
    assert dsw[1].abs() < 1e-12 and dsw[3].abs() < 1e-12 and dsw[2] < 0
    env = EnvironmentMatrix(cutoff=5.0, smooth_start=0.5).to(DTYPE)
    vectors = torch.tensor([[[0.0, 2.0, 0.0], [10.0, 0.0, 0.0]]], dtype=DTYPE)
    rows, switch = env(vectors, torch.tensor([[True, False]]), torch.tensor([8]))
    s = smooth_switch(torch.tensor(2.0, dtype=DTYPE), 0.5, 5.0) / 2.0
    torch.testing.assert_close(rows[0, 0], torch.stack([s, 0 * s, s, 0 * s]))
    assert rows[0, 1].abs().max() == 0 and switch[0, 1] == 0
    env.fit_std(vectors, torch.tensor([[True, False]]), torch.tensor([8]), n_slots=2)
    expected_radial = math.sqrt(s.item() ** 2 / 2 - (s.item() / 2) ** 2)
    assert env.env_std[8, 0].item() == pytest.approx(expected_radial)
    assert env.env_std[1].tolist() == [1.0, 1.0]  # unseen elements keep their value
