"""Files checked once per machine: open only regular files, and remember which versions passed a full check.

A large data file that many processes of a machine map (matchers) is hashed once, not by every
process: a version that passed is recorded under a key of its identity and its recorded checksum,
``(st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns, sha256)``, in a per-machine cache directory
(``$METACLIP2_CACHE``, else ``$XDG_CACHE_HOME/metaclip2``, else ``~/.cache/metaclip2``) and in
this process. Any change to the file (a rewrite, a rename over it, a touch) changes the key, so
the new version is checked again. The cache is only a record of passed checks: losing it costs
one more check, and a cache that cannot be written is ignored.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from metaclip2.core.atomic import write_json
from metaclip2.core.errors import OutputError

__all__ = ["verified_key", "is_verified", "mark_verified", "verified_cache_dir"]

_MEMO: set[str] = set()


def verified_key(st: os.stat_result, sha256: str) -> str:
    """The key of one version of a file: its identity, size, times and recorded checksum.

    Examples
    --------
    >>> import os
    >>> from metaclip2.core.verified import verified_key
    >>> len(verified_key(os.stat("."), "0" * 64))
    64
    """
    ident = f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{sha256}"
    return hashlib.sha256(ident.encode()).hexdigest()


def verified_cache_dir() -> Path:
    """The per-machine directory recording verified file versions.

    Examples
    --------
    >>> from metaclip2.core.verified import verified_cache_dir
    >>> verified_cache_dir().name
    'verified'
    """
    root = os.environ.get("METACLIP2_CACHE")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = os.path.join(xdg if xdg else os.path.join(os.path.expanduser("~"), ".cache"), "metaclip2")
    return Path(root) / "verified"


def is_verified(key: str) -> bool:
    """Whether the file version `key` passed its check on this machine (or in this process).

    Examples
    --------
    >>> from metaclip2.core.verified import is_verified
    >>> is_verified("0" * 64)
    False
    """
    if key in _MEMO:
        return True
    try:
        if (verified_cache_dir() / key[:2] / key).is_file():
            _MEMO.add(key)
            return True
    except OSError:
        pass
    return False


def mark_verified(key: str, path: str | os.PathLike) -> None:
    """Record that the file version `key` (of `path`) passed its check; a cache that cannot be written is ignored.

    Examples
    --------
    >>> import os, tempfile
    >>> from metaclip2.core.verified import is_verified, mark_verified
    >>> old, tmp = os.environ.get("METACLIP2_CACHE"), tempfile.TemporaryDirectory()
    >>> os.environ["METACLIP2_CACHE"] = tmp.name
    >>> mark_verified("ab" * 32, "x.matcher")
    >>> is_verified("ab" * 32), os.listdir(os.path.join(tmp.name, "verified", "ab"))
    (True, ['abababababababababababababababababababababababababababababababab'])
    >>> if old is None: del os.environ["METACLIP2_CACHE"]
    ... else: os.environ["METACLIP2_CACHE"] = old
    >>> tmp.cleanup()
    """
    _MEMO.add(key)
    try:
        write_json(verified_cache_dir() / key[:2] / key, {"path": str(path)})
    except (OutputError, OSError):
        pass
