"""Model configuration: JSON round trip, unknown keys, schema versions, presets."""

import json

import pytest

from lam.model.config import PRESETS, SCHEMA_VERSION, LAMConfig, preset


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_round_trips_through_json(name: str) -> None:
    config = preset(name)
    assert LAMConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_unknown_key_is_rejected_with_its_name() -> None:
    data = preset("tiny").to_dict()
    data["descriptor"]["repformer_layerz"] = 3
    with pytest.raises(ValueError, match="repformer_layerz"):
        LAMConfig.from_dict(data)


def test_unknown_top_level_key_is_rejected() -> None:
    data = preset("tiny").to_dict()
    data["optimiser"] = "adam"
    with pytest.raises(ValueError, match="optimiser"):
        LAMConfig.from_dict(data)


def test_newer_schema_version_is_refused_with_upgrade_hint() -> None:
    data = preset("tiny").to_dict()
    data["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(ValueError, match="upgrade lam"):
        LAMConfig.from_dict(data)


def test_config_without_schema_version_is_read_as_version_one() -> None:
    data = preset("student").to_dict()
    del data["schema_version"]
    assert LAMConfig.from_dict(data) == preset("student")


def test_unknown_descriptor_kind_and_preset() -> None:
    data = preset("tiny").to_dict()
    data["descriptor"]["kind"] = "mace"
    with pytest.raises(ValueError, match="unknown descriptor kind"):
        LAMConfig.from_dict(data)
    with pytest.raises(ValueError, match="available"):
        preset("huge")


def test_duplicate_head_names_are_rejected() -> None:
    data = preset("tiny").to_dict()
    head = {"name": "pbe", "level_of_theory": "PBE", "datasets": [], "elements": []}
    data["heads"] = [head, dict(head)]
    with pytest.raises(ValueError, match="duplicate head"):
        LAMConfig.from_dict(data)


def test_deepmd_small_matches_deepmd_kit_example() -> None:
    """The like-for-like preset carries DeePMD-kit's input_torch_small.json hyperparameters."""
    d = preset("deepmd-small").descriptor
    assert (d.repinit_cutoff, d.repinit_smooth_start, d.repinit_max_neighbors) == (6.0, 0.5, 120)
    assert (d.repformer_cutoff, d.repformer_smooth_start, d.repformer_max_neighbors) == (4.0, 3.5, 48)
    assert (d.n_repformer_layers, d.atom_dim, d.pair_dim, d.pair_attention) == (3, 128, 32, False)
    assert d.use_three_body and (d.three_body_cutoff, d.three_body_max_neighbors) == (4.0, 48)
    assert preset("small").descriptor.pair_attention  # lam's own preset keeps attention on


@pytest.mark.parametrize("where", ["descriptor", "head", "heads", "top"])
def test_a_saved_config_missing_a_field_is_refused_not_defaulted(where: str) -> None:
    """A deleted ``repinit_cutoff`` once loaded as 6.0 Å instead of 5.0 and predicted other energies."""
    data = preset("tiny").to_dict()
    if where == "descriptor":
        del data["descriptor"]["repinit_cutoff"]
        missing = "repinit_cutoff"
    elif where == "head":
        del data["head"]["hidden_widths"]
        missing = "hidden_widths"
    elif where == "heads":
        del data["heads"][0]["level_of_theory"]
        missing = "level_of_theory"
    else:
        del data["heads"]
        missing = "heads"
    with pytest.raises(ValueError, match=f"missing key.*{missing}"):
        LAMConfig.from_dict(data)


def test_a_version_one_config_gains_the_elements_field() -> None:
    data = preset("student").to_dict()
    data["schema_version"] = 1
    for head in data["heads"]:
        del head["elements"]
    assert LAMConfig.from_dict(data) == preset("student")
