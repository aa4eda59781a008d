"""The version of convlens (the ground floor: any module may read it)."""

__version__ = "0.1.0"
