"""lam: a hub for pretrained large atomic models (DPA-2 style).

The public surface is small; everything else lives in the subpackages (``lam.data``, ``lam.model``,
``lam.train``, ``lam.hub``).
"""

from lam._version import __version__
from lam.calculator import LAMCalculator
from lam.data.graph import AtomicGraph
from lam.hub.models import load_model
from lam.model.config import LAMConfig, preset
from lam.model.lam import LAM

# the function shadows its module's name on the package: ``lam.predict(...)`` is the call, while
# ``from lam.predict import iter_predict`` still finds the module (in sys.modules)
from lam.predict import predict

load = load_model  # lam.load("org/name@v1.0.0"): the short name for notebooks

__all__ = ["LAM", "AtomicGraph", "LAMCalculator", "LAMConfig", "__version__", "load", "load_model", "predict",
           "preset"]
