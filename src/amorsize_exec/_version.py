"""The installed distribution's version (``importlib.metadata`` is slow to import: read lazily)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("amorsize-exec")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0+unknown"
