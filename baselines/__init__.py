"""The methods under test. Importing this package registers them (an explicit list, no folder scan)."""

from . import bicubic, eqsr, eqsr_plugins, liif, lte  # noqa: F401
