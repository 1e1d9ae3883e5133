"""See the package docstring of ``sim``."""
