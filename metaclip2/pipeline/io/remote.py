"""Metadata directories on object stores or HTTP (fsspec URLs), mirrored into a local cache.

Matching needs random access to every entry list of a metadata directory, many times per
process, so a ``s3://…``/``gs://…``/``hf://…``/``https://…`` directory is copied once into a local
cache (``$METACLIP2_CACHE``, default ``~/.cache/metaclip2``) and read from there. A file is
copied again when its fsspec key (size, modification time, ETag, as the protocol reports them)
changes; runs record the entry lists' digests anyway, so a stale copy can never pass unseen.

Inputs are read from URLs directly ([`open_input`][metaclip2.pipeline.io.inputs.open_input]); run
directories are local paths.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from metaclip2.core.atomic import AtomicFile
from metaclip2.core.errors import MissingExtraError, MissingInputError
from metaclip2.core.fingerprint import is_url  # the one URL test, here for the pipeline's callers

__all__ = ["is_url", "local_metadata"]


def _cache_root() -> Path:
    return Path(os.environ.get("METACLIP2_CACHE") or Path.home() / ".cache" / "metaclip2")


def local_metadata(url: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """A local copy of the metadata directory at `url` (its ``<lang>.tsv`` and ``<lang>.matcher`` files).

    Parameters
    ----------
    url : str
        An fsspec directory URL; a local path is returned as it is.
    cache_dir : path, optional
        Where the copy goes (default: ``$METACLIP2_CACHE/metadata/<hash of url>``).

    Returns
    -------
    Path

    Raises
    ------
    MissingInputError
        The directory holds no ``.tsv`` file.
    MissingExtraError
        fsspec is not installed.
    """
    if not is_url(url):
        return Path(os.fspath(url).removeprefix("file://"))
    try:
        import fsspec
    except ImportError as err:
        raise MissingExtraError(f"metadata at {url} needs fsspec: pip install 'metaclip2[fsspec]'") from err
    fs, root = fsspec.core.url_to_fs(url.rstrip("/"))
    names = sorted(p for p in fs.glob(f"{root}/*.tsv") + fs.glob(f"{root}/*.matcher"))
    if not any(n.endswith(".tsv") for n in names):
        raise MissingInputError(f"metadata directory {url} has no <lang>.tsv files")
    local = Path(cache_dir) if cache_dir else _cache_root() / "metadata" / hashlib.sha1(url.encode()).hexdigest()[:16]
    local.mkdir(parents=True, exist_ok=True)
    for name in names:
        base = name.rsplit("/", 1)[-1]
        target, stamp = local / base, local / f".{base}.ukey"
        key = fs.ukey(name)
        if target.exists() and stamp.exists() and stamp.read_text() == key:
            continue
        with fs.open(name, "rb") as src:
            out = AtomicFile(target)
            try:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
                out.commit()
            except BaseException:
                out.abort()
                raise
        with AtomicFile(stamp) as f:
            f.write(key.encode())
    return local
