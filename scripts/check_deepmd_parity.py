#!/usr/bin/env python
"""Parity check: lam's DPA2Descriptor reproduces DeePMD-kit's DescrptDPA2 given the same weights.

Builds DeePMD-kit 3.2's DPA-2 descriptor with the hyperparameters of its water `input_torch_small.json`
example, ports its weights into lam's layout (the mapping below documents which lam tensor is which
DeePMD tensor), and compares the per-atom descriptor on a 192-atom water frame. Needs deepmd-kit, e.g. the
peers venv of ../shared/peers (plus torch_geometric):

    PYTHONPATH=. /tmp/peers/bin/python scripts/check_deepmd_parity.py attn 3     # pair attention on, 3 layers
    PYTHONPATH=. /tmp/peers/bin/python scripts/check_deepmd_parity.py noattn 6
"""

import copy
import sys

import ase.io
import torch
from deepmd.dpmodel.descriptor.dpa2 import RepformerArgs, RepinitArgs
from deepmd.pt.model.descriptor.dpa2 import DescrptDPA2
from deepmd.pt.utils.nlist import extend_input_and_build_neighbor_list
from deepmd_examples import water_descriptor

from lam.data.neighbors import neighbor_list
from lam.model.config import DPA2Config
from lam.model.descriptor import DPA2Descriptor

DEEPMD_SMALL = water_descriptor(3, pair_attention=False)  # input_torch_small.json, model.descriptor
torch.set_num_threads(1)

attn = sys.argv[1] == "attn"
nlayers = int(sys.argv[2])
jd = copy.deepcopy(DEEPMD_SMALL)
rep = jd.pop("repinit")
rf = jd.pop("repformer")
rf["update_g2_has_attn"] = attn
rf["nlayers"] = nlayers
torch.manual_seed(0)
dp = DescrptDPA2(ntypes=2, repinit=RepinitArgs(**rep), repformer=RepformerArgs(**rf), **jd).double()
# make residual scales O(1) so every term matters in the comparison
with torch.no_grad():
    for k, v in dp.named_parameters():
        if "residual" in k:
            v.normal_(0, 0.5)
cfg = DPA2Config(n_repformer_layers=nlayers, pair_attention=attn, residual_init_scale=0.5)
ours = DPA2Descriptor(cfg).double()
sd = dp.state_dict()
T = lambda k: sd[k].T.clone()
new = {}
te = sd["type_embedding.embedding.embedding_net.layers.0.matrix"]
table = ours.type_embedding.table.weight.detach().clone()
table[8] = te[0]
table[1] = te[1]
new["type_embedding.table.weight"] = table
for ours_name, dp_name in [("repinit", "repinit"), ("three_body", "repinit_three_body")]:
    base = f"{dp_name}.filter_layers.networks.0.layers"
    new[f"{ours_name}.first_layer.linear.weight"] = T(f"{base}.0.matrix")
    new[f"{ours_name}.first_layer.linear.bias"] = sd[f"{base}.0.bias"]
    for i in (1, 2):
        new[f"{ours_name}.rest.hidden.{i - 1}.linear.weight"] = T(f"{base}.{i}.matrix")
        new[f"{ours_name}.rest.hidden.{i - 1}.linear.bias"] = sd[f"{base}.{i}.bias"]
new["atom_init.weight"] = T("g1_shape_tranform.matrix")
new["pair_init.weight"] = T("repformers.g2_embd.matrix")
new["pair_init.bias"] = sd["repformers.g2_embd.bias"]
H, d, P = 4, 32, 32
for l in range(nlayers):
    b, o = f"repformers.layers.{l}", f"layers.{l}"
    new[f"{o}.symmetric_linear.weight"] = T(f"{b}.linear1.matrix")
    new[f"{o}.symmetric_linear.bias"] = sd[f"{b}.linear1.bias"]
    new[f"{o}.atom_self.weight"] = T(f"{b}.g1_self_mlp.matrix")
    new[f"{o}.atom_self.bias"] = sd[f"{b}.g1_self_mlp.bias"]
    new[f"{o}.conv_proj.weight"] = T(f"{b}.proj_g1g2.matrix")
    for name, i in [("self", 0), ("conv", 1), ("symmetric", 2)]:
        new[f"{o}.atom_scales.{name}"] = sd[f"{b}.g1_residual.{i}"]
    if l == nlayers - 1:
        continue
    p = f"{o}.pair_update"
    new[f"{p}.pair_self.weight"] = T(f"{b}.linear2.matrix")
    new[f"{p}.pair_self.bias"] = sd[f"{b}.linear2.bias"]
    new[f"{p}.scales.self"] = sd[f"{b}.g2_residual.0"]
    if attn:
        new[f"{p}.scales.attention"] = sd[f"{b}.g2_residual.1"]
        qk = sd[f"{b}.attn2g_map.mapqk.matrix"].view(P, d, 2, H)  # in, dd, s, h
        new[f"{p}.pair_attention.query_key.weight"] = qk.permute(2, 3, 1, 0).reshape(2 * H * d, P)
        v = sd[f"{b}.attn2_mh_apply.mapv.matrix"].view(P, P, H)  # in, g, h
        new[f"{p}.pair_attention.value.weight"] = v.permute(2, 1, 0).reshape(H * P, P)
        hm = sd[f"{b}.attn2_mh_apply.head_map.matrix"].view(P, H, P)  # (g, h), out
        new[f"{p}.pair_attention.head_merge.weight"] = hm.permute(2, 1, 0).reshape(P, H * P)
        new[f"{p}.pair_attention.head_merge.bias"] = sd[f"{b}.attn2_mh_apply.head_map.bias"]
        new[f"{p}.pair_attention.norm.weight"] = sd[f"{b}.attn2_lm.matrix"]
        new[f"{p}.pair_attention.norm.bias"] = sd[f"{b}.attn2_lm.bias"]
missing = set(ours.state_dict()) - set(new)
print("not ported:", sorted(m for m in missing if not m.endswith("env_std")))
ours.load_state_dict({**ours.state_dict(), **{k: v.to(torch.float64) for k, v in new.items()}})

atoms = ase.io.read("data_registry/data/water_deepmd_example/test.extxyz.xz", index=0)
coord = torch.tensor(atoms.positions[None], dtype=torch.float64)
box = torch.tensor(atoms.cell.array.reshape(1, 9), dtype=torch.float64)
atype = torch.tensor([[0 if z == 8 else 1 for z in atoms.numbers]])
ext, ext_atype, mapping, nlist = extend_input_and_build_neighbor_list(
    coord, atype, dp.get_rcut(), dp.get_sel(), mixed_types=True, box=box
)
ref = dp(ext, ext_atype, nlist, mapping=mapping)[0][0]
ei, shift = neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, cfg.repinit_cutoff)
ei = torch.from_numpy(ei)
pos = torch.tensor(atoms.positions)
vec = pos[ei[1]] - pos[ei[0]] + torch.from_numpy(shift) @ torch.tensor(atoms.cell.array)
out = ours(torch.tensor(atoms.numbers), ei, vec)
print(
    f"attn={attn} layers={nlayers}: max |lam - deepmd| = {(out - ref).abs().max():.2e}, max |deepmd| = {ref.abs().max():.2f}"
)
