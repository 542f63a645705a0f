"""eqbench: a benchmark and scale-equivariance analysis suite for arbitrary-scale super-resolution.

The method API is imported lazily (PEP 562) so that `import eqbench` (and `eqbench --help`) does not
import torch."""

__version__ = "0.1.0"

__all__ = ["SRMethod", "__version__", "create_method", "list_methods", "register_method"]


def __getattr__(name: str):
    if name in ("SRMethod", "create_method", "list_methods", "register_method"):
        from . import method

        return getattr(method, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
