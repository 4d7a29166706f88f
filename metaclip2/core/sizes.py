"""Byte sizes as people write them: ``512M``, ``2GiB``, ``128MB``, ``1.5g``, or a plain number.

Units are binary, the convention for memory budgets: ``K``/``KB``/``KiB`` is 2^10 bytes,
``M``/``MB``/``MiB`` 2^20, ``G``/``GB``/``GiB`` 2^30, ``T``/``TB``/``TiB`` 2^40 (so ``128MB`` is
134,217,728 bytes, not 128,000,000); case does not matter.
"""

from __future__ import annotations

import re

from metaclip2.core.errors import ParameterError

__all__ = ["parse_bytes"]

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)")


def parse_bytes(value: str | int, name: str = "size") -> int:
    """Bytes from an int or a size string; suffixes K, M, G, T (with or without ``B`` or ``iB``) are powers of 1024.

    ``MB`` and ``MiB`` both mean 2^20 bytes, ``GB`` and ``GiB`` 2^30 (binary units, as memory
    budgets are counted); ``B`` alone or no suffix is bytes.

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
    >>> parse_bytes("64KiB"), parse_bytes("1 TiB"), parse_bytes("1.5g"), parse_bytes("100B")
    (65536, 1099511627776, 1610612736, 100)
    """
    if isinstance(value, bool):
        raise ParameterError(f"{name} must be a size such as 512M or 2GiB, got {value!r}")
    if isinstance(value, int):
        n = value
    else:
        m = _SIZE.fullmatch(str(value).strip().lower()) if isinstance(value, str) else None
        # a fraction of a byte, or "iB" without a unit, means a typo
        if not m or (not m.group(2) and ("." in m.group(1) or m.group(3).startswith("i"))):
            raise ParameterError(f"{name} {value!r}: give a size such as 512M, 2GiB or 128MB")
        n = int(float(m.group(1)) * 1024 ** " kmgt".index(m.group(2) or " "))
    if n < 0:
        raise ParameterError(f"{name} must not be negative, got {value!r}")
    return n
