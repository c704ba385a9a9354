"""The physics test mixin over the fast student descriptor."""

from lam.model.config import preset
from lam.testing import ModelPhysicsTests


class TestStudentPhysics(ModelPhysicsTests):
    config = preset("student")


class TestFrozenStudentPhysics(ModelPhysicsTests):
    """Frozen weights: energy derivatives from lam.model.two_body_inference, not autograd."""

    config = preset("student")
    frozen = True
