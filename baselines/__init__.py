"""The methods under test. Importing this package registers them (an explicit list, no folder scan)."""

from . import bicubic, liif, lte  # noqa: F401
