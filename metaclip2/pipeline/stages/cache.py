"""Per-process caches of loaded metadata (matchers) and entry probabilities, keyed by path and
file stamps, so that a worker process that handles many shards loads them once.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Iterable

from metaclip2.core.fingerprint import file_digest
from metaclip2.curation.sampling import EntryProbabilities

__all__ = ["cached_store", "cached_probabilities", "known_language_code", "clear"]


_cache_lock = threading.Lock()
_stores: dict = {}
_probabilities: dict = {}  # key -> (EntryProbabilities, sha256 of the file)
_codes: dict = {}  # language code -> whether it is one


def _stamp(paths: Iterable[Path]) -> tuple:
    out = []
    for p in sorted(paths):
        st = p.stat()
        out.append((p.name, st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(out)


def cached_store(metadata: str | os.PathLike, engine: str = "trie", matcher_memory: int | None = None, strict: bool = False):
    """The [`MetadataStore`][metaclip2.matching.store.MetadataStore] of a directory, one per process.

    `engine` is the store's matcher engine (``"trie"`` or ``"aho-corasick"``).

    Reloaded when the directory's ``.tsv``/``.matcher`` files change (size, mtime, inode). An
    fsspec URL is read through a local copy ([`local_metadata`][metaclip2.pipeline.io.remote.local_metadata]).
    `matcher_memory` (bytes of loaded matchers kept) is the store's budget; None: its default.
    `strict`: a damaged ``.matcher`` is refused instead of rebuilt from its ``.tsv``.

    See Also
    --------
    - [`MetadataStore`][metaclip2.matching.store.MetadataStore] : What is cached.
    - [`cached_probabilities`][metaclip2.pipeline.stages.cache.cached_probabilities] : The same for stage 2's probabilities.

    Examples
    --------
    >>> import os, tempfile
    >>> from metaclip2.core import write_metadata
    >>> from metaclip2.pipeline.stages.cache import cached_store
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> _ = write_metadata(f"{d}/en.tsv", ["dog", "cat", "red"], ["wordnet"] * 3, lang="en")
    >>> store = cached_store(d)
    >>> store.languages, cached_store(d) is store          # the second call is a cache hit
    (['en'], True)
    >>> _ = write_metadata(f"{d}/de.tsv", ["Hund", "Katze"], ["wordnet"] * 2, lang="de")
    >>> cached_store(d).languages                           # the directory changed: reloaded
    ['de', 'en']
    >>> tmp.cleanup()
    """
    from metaclip2.matching.store import MetadataStore
    from metaclip2.pipeline.io.remote import is_url, local_metadata

    d = local_metadata(os.fspath(metadata)) if is_url(metadata) else Path(metadata).resolve()
    key = (str(d), engine, _stamp(list(d.glob("*.tsv")) + list(d.glob("*.matcher"))), matcher_memory, strict)
    with _cache_lock:
        store = _stores.get(key)
        if store is None:
            _stores.clear()  # one metadata directory at a time per worker
            budget = {} if matcher_memory is None else {"matcher_memory": int(matcher_memory)}
            store = _stores[key] = MetadataStore(d, engine=engine, strict=strict, **budget)
    return store


def cached_probabilities(path: str | os.PathLike) -> EntryProbabilities:
    """[`EntryProbabilities.load`][metaclip2.curation.sampling.EntryProbabilities.load] of `path`, one per process (reloaded when the file changes).

    See Also
    --------
    - [`compute_probabilities`][metaclip2.pipeline.stages.merge.compute_probabilities] : Stage 2b, which writes the file.
    - [`EntryProbabilities`][metaclip2.curation.sampling.EntryProbabilities] : What is cached.

    Examples
    --------
    >>> import tempfile
    >>> from metaclip2.curation import EntryCounts
    >>> from metaclip2.pipeline.stages.cache import cached_probabilities
    >>> from metaclip2.pipeline.stages.merge import compute_probabilities
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> EntryCounts.from_arrays({"en": [3, 1, 2]}, {"en": "e" * 64}).save(f"{d}/counts.bin")
    >>> _ = compute_probabilities(f"{d}/counts.bin", d, t_en=2)
    >>> probs = cached_probabilities(f"{d}/probabilities.bin")
    >>> probs.t, probs.q["en"].tolist()
    ({'en': 2}, [0.6666666666666666, 1.0, 1.0])
    >>> cached_probabilities(f"{d}/probabilities.bin") is probs
    True
    >>> tmp.cleanup()
    """
    return _cached_probabilities(path)[0]


def _cached_probabilities(path: str | os.PathLike) -> tuple[EntryProbabilities, str]:
    p = Path(path).resolve()
    key = (str(p), _stamp([p]))
    with _cache_lock:
        hit = _probabilities.get(key)
        if hit is None:
            _probabilities.clear()
            hit = _probabilities[key] = (EntryProbabilities.load(p), file_digest(p)["sha256"])
    return hit


def known_language_code(code: str) -> bool:
    """Whether `code` is a language code the package reads (memoised per process; `clear()` empties it).

    Examples
    --------
    >>> from metaclip2.pipeline.stages.cache import known_language_code
    >>> known_language_code("eng_Latn"), known_language_code("xx-nonsense")
    (True, False)
    """
    from metaclip2.core.languages import normalize_language_code

    known = _codes.get(code)  # a dict lookup is atomic: no lock on this per-pair path
    if known is None:
        known = _codes[code] = normalize_language_code(code) is not None
    return known


def clear() -> None:
    """Empty every per-process cache of the pipeline (metadata stores, entry probabilities, language codes).

    The next [`cached_store`][metaclip2.pipeline.stages.cache.cached_store] or [`cached_probabilities`][metaclip2.pipeline.stages.cache.cached_probabilities] call loads from disk again.

    See Also
    --------
    - [`cached_store`][metaclip2.pipeline.stages.cache.cached_store] : The metadata stores cached.
    - [`cached_probabilities`][metaclip2.pipeline.stages.cache.cached_probabilities] : The probabilities cached.

    Examples
    --------
    >>> import tempfile
    >>> from metaclip2.core import write_metadata
    >>> from metaclip2.pipeline.stages.cache import cached_store, clear
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> _ = write_metadata(f"{d}/en.tsv", ["dog", "cat"], ["wordnet"] * 2, lang="en")
    >>> store = cached_store(d)
    >>> clear()
    >>> cached_store(d) is store                            # loaded again after clear()
    False
    >>> tmp.cleanup()
    """
    with _cache_lock:
        _stores.clear()
        _codes.clear()
        _probabilities.clear()
