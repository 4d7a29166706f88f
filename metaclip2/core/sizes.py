"""Byte sizes as people write them: ``512M``, ``2GiB``, ``128MB``, ``1.5g``, or a plain number."""

from __future__ import annotations

import re

from metaclip2.core.errors import ParameterError

__all__ = ["parse_bytes"]

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)")


def parse_bytes(value: str | int, name: str = "size") -> int:
    """Bytes from an int or a size string; suffixes k, M, G, T (with or without ``B``/``iB``) are powers of 1024.

    Parameters
    ----------
    value : int or str
    name : str
        What the size is, for the error message.

    Raises
    ------
    ParameterError
        Unreadable or negative.

    Examples
    --------
    >>> from metaclip2.core.sizes import parse_bytes
    >>> parse_bytes("512M"), parse_bytes("2GiB"), parse_bytes("128MB"), parse_bytes(4096)
    (536870912, 2147483648, 134217728, 4096)
    """
    if isinstance(value, bool):
        raise ParameterError(f"{name} must be a size such as 512M or 2GiB, got {value!r}")
    if isinstance(value, int):
        n = value
    else:
        m = _SIZE.fullmatch(str(value).strip().lower()) if isinstance(value, str) else None
        if not m or ("." in m.group(1) and not m.group(2)):  # a fraction of a byte means a typo
            raise ParameterError(f"{name} {value!r}: give a size such as 512M, 2GiB or 128MB")
        n = int(float(m.group(1)) * 1024 ** " kmgt".index(m.group(2) or " "))
    if n < 0:
        raise ParameterError(f"{name} must not be negative, got {value!r}")
    return n
