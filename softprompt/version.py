"""The one place the library version lives (read by pyproject.toml and written into prompt files)."""

__version__ = "0.1.0"
