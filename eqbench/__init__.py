"""eqbench: a benchmark and scale-equivariance analysis suite for arbitrary-scale super-resolution."""

__version__ = "0.1.0"

from .method import SRMethod, create_method, list_methods, load_method, register_method  # noqa: E402
from .wrap import wrap  # noqa: E402

__all__ = ["SRMethod", "__version__", "create_method", "list_methods", "load_method", "register_method", "wrap"]
