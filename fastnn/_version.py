"""The version of fastnn (one place: the package and show_config read it here)."""

__version__ = "0.1.0"
