"""The single version string of lam."""

__version__ = "0.3.0"
