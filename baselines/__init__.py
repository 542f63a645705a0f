"""The methods under test. Importing this package registers them (an explicit list, no folder scan)."""

from . import bicubic  # noqa: F401
from . import metasr  # noqa: F401
from . import arbsr  # noqa: F401
