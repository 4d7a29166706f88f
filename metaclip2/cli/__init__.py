"""Layer 6: the ``metaclip2`` command, a thin layer over the library (one module per verb group)."""

from metaclip2.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
