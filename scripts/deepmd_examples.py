"""DeePMD-kit's DPA-2 water example hyperparameters, shared by the scripts that drive DeePMD-kit.

From DeePMD-kit 3.2's ``examples/water/dpa2/input_torch_{small,medium,large}.json`` (model.descriptor):
the three differ in the number of repformer layers (3 / 6 / 12) and in pair attention (off in small).
"""

from __future__ import annotations

import copy

# the repformer update terms of the v3 examples (and of lam's DPA2Config)
REPFORMER_FLAGS = {
    "update_h2": False,
    "update_g1_has_conv": True,
    "update_g1_has_grrg": True,
    "update_g1_has_drrd": True,
    "update_g1_has_attn": False,
    "update_g2_has_g1g1": False,
    "update_g2_has_attn": True,
    "update_style": "res_residual",
    "update_residual": 0.01,
    "update_residual_init": "norm",
    "attn2_has_gate": True,
    "use_sqrt_nnei": True,
    "g1_out_conv": True,
    "g1_out_mlp": True,
}
WATER_DESCRIPTOR = {
    "repinit": {
        "tebd_dim": 8, "rcut": 6.0, "rcut_smth": 0.5, "nsel": 120, "neuron": [25, 50, 100], "axis_neuron": 12,
        "activation_function": "tanh", "three_body_sel": 48, "three_body_rcut": 4.0,
        "three_body_rcut_smth": 3.5, "use_three_body": True,
    },
    "repformer": {
        "rcut": 4.0, "rcut_smth": 3.5, "nsel": 48, "nlayers": 3, "g1_dim": 128, "g2_dim": 32,
        "attn2_hidden": 32, "attn2_nhead": 4, "attn1_hidden": 128, "attn1_nhead": 4, "axis_neuron": 4,
        **REPFORMER_FLAGS,
    },
    "precision": "float64",
    "add_tebd_to_repinit_out": False,
}


def water_descriptor(nlayers: int, pair_attention: bool) -> dict:
    """The water example's DPA-2 descriptor with ``nlayers`` repformer layers (small: 3, no attention)."""
    descriptor = copy.deepcopy(WATER_DESCRIPTOR)
    descriptor["repformer"].update(nlayers=nlayers, update_g2_has_attn=pair_attention)
    return descriptor
