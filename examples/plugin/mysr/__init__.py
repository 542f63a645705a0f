"""mysr: an example of a package that brings its own super-resolution networks to eqbench."""

__version__ = "0.1.0"
