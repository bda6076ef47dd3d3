"""burnlink: self-destructing, end-to-end encrypted links for sharing credentials."""

__version__ = "0.1.0"

__all__ = ["__version__"]
