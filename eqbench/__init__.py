"""eqbench: a benchmark and scale-equivariance analysis suite for arbitrary-scale super-resolution.

The method API is imported lazily (PEP 562) so that `import eqbench` (and `eqbench --help`) does not
import torch."""

__version__ = "0.1.0"

__all__ = ["SRMethod", "__version__", "create_method", "list_methods", "load_method", "register_method", "wrap"]


def __getattr__(name: str):
    """The public API, imported on first use: `import eqbench` (and the CLI's --help) stays torch-free."""
    if name == "wrap":
        from .wrapping import wrap

        return wrap
    if name == "load_method":
        from .loading import load_method

        return load_method
    if name in __all__ and name != "__version__":
        from . import method

        return getattr(method, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
