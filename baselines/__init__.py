"""The methods under test. Importing this package registers them (an explicit list, no folder scan)."""

from . import arbsr, bicubic, eqsr, eqsr_plugins, liif, lte, metasr  # noqa: F401
