"""The physics test mixin over the fast student descriptor."""

from lam.model.config import preset
from lam.testing import ModelPhysicsTests


class TestStudentPhysics(ModelPhysicsTests):
    config = preset("student")
