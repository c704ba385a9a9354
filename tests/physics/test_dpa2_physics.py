"""The physics test mixin over DPA-2 configurations: the tiny preset and every optional branch."""

import dataclasses

from lam.model.config import preset
from lam.testing import ModelPhysicsTests

TINY = preset("tiny")


class TestTinyDPA2Physics(ModelPhysicsTests):
    config = TINY


class TestDPA2AllBranchesPhysics(ModelPhysicsTests):
    """Three-body block, atom attention and the pair self-product switched on (off in `tiny`)."""

    config = dataclasses.replace(
        TINY,
        descriptor=dataclasses.replace(
            TINY.descriptor,
            use_three_body=True,
            three_body_max_neighbors=24,
            atom_attention=True,
            atom_attention_hidden=16,
            atom_attention_heads=2,
            pair_self_product=True,
        ),
    )


class TestFrozenTinyDPA2Physics(ModelPhysicsTests):
    """Frozen weights: the repinit block takes its hand-written inference derivatives."""

    config = TINY
    frozen = True
