"""Bring your own entry list: a text or JSON file -> one language's metadata file.

Accepted inputs (detected from the first non-blank character, or named with ``list_format``):

* ``text``: UTF-8, one entry per line;
* ``json-list``: a JSON array of strings (e.g. MetaCLIP 1's ``metadata.json``);
* ``json-keys``: a JSON object whose keys are the entries, in file order (entry -> anything).

The entries go through the filters of built metadata ([`metaclip2.metadata.build.clean_source`][metaclip2.metadata.build.clean_source]:
strip; drop empty, over-long, punctuation-only and tab/newline strings) and are deduplicated,
the first occurrence winning, so the result is a valid, deterministic entry list. Their source
column reads ``import``; with ``numbers=True`` the strings ``"0"`` … ``"99"`` come first, as in
built metadata.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from metaclip2.metadata.build import DEFAULT_MAX_LENGTH, MetadataBuild, clean_source, write_language_metadata
from metaclip2.core.entries import MetadataError, entries_digest
from metaclip2.core.errors import ParameterError

__all__ = ["IMPORT_FORMATS", "read_entry_list", "import_metadata"]

IMPORT_FORMATS = ("auto", "text", "json-list", "json-keys")


def read_entry_list(path: str | os.PathLike, list_format: str = "auto") -> tuple[list[str], str]:
    """Read an entry list file as given (no filtering).

    Parameters
    ----------
    path : path
        The file (UTF-8; a byte-order mark is ignored).
    list_format : {"auto", "text", "json-list", "json-keys"}
        ``"auto"``: ``[`` -> JSON list, ``{`` -> JSON object keys, else text.

    Returns
    -------
    (list of str, str)
        The strings in file order and the format used.

    Raises
    ------
    MetadataError
        Undecodable bytes, invalid JSON, a non-string list item, or a JSON value that is
        neither a list nor an object.

    See Also
    --------
    - [`import_metadata`][metaclip2.metadata.importing.import_metadata] : Cleans the list and writes it as metadata.

    Examples
    --------
    >>> import json, pathlib, tempfile
    >>> from metaclip2.metadata.importing import read_entry_list
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     listed = pathlib.Path(tmp, "concepts.json")
    ...     _ = listed.write_text(json.dumps({"dog": 12, "New York": 3}), encoding="utf-8")
    ...     read_entry_list(listed)
    (['dog', 'New York'], 'json-keys')
    """
    if list_format not in IMPORT_FORMATS:
        raise ParameterError(f"list_format must be one of {IMPORT_FORMATS}, got {list_format!r}")
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise MetadataError(f"{path}: not UTF-8 (byte {e.start}); convert it to UTF-8 first") from None
    if list_format == "auto":
        head = text.lstrip()[:1]
        list_format = {"[": "json-list", "{": "json-keys"}.get(head, "text")
    if list_format == "text":
        # Only \n and \r\n end a line: other Unicode line breaks are kept for the filters to see.
        return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")], list_format
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise MetadataError(f"{path}: invalid JSON ({e}); use list_format 'text' for one entry per line") from None
    if list_format == "json-keys":
        if not isinstance(value, dict):
            raise MetadataError(f"{path}: expected a JSON object (entries as keys), found {type(value).__name__}")
        return list(value), list_format
    if not isinstance(value, list):
        raise MetadataError(f"{path}: expected a JSON list of strings, found {type(value).__name__}")
    bad = [i for i, v in enumerate(value) if not isinstance(v, str)]
    if bad:
        raise MetadataError(f"{path}: {len(bad)} list items are not strings (first at index {bad[0]}: {value[bad[0]]!r})")
    return value, list_format


def import_metadata(
    path: str | os.PathLike,
    lang: str,
    out_dir: str | os.PathLike | None = None,
    *,
    list_format: str = "auto",
    numbers: bool = False,
    max_length: int = DEFAULT_MAX_LENGTH,
) -> MetadataBuild:
    """Turn an entry list file into `lang`'s metadata (and write it when `out_dir` is given).

    Parameters
    ----------
    path : path
        Text (one entry per line), JSON list, or JSON object (keys) file; see [`read_entry_list`][metaclip2.metadata.importing.read_entry_list].
    lang : str
        Wikipedia code the list is for; names the output ``<lang>.tsv``.
    out_dir : path, optional
        Receives ``<lang>.tsv`` and ``<lang>.summary.json`` (as built metadata does); put it
        with the other Wikipedia-level files and run ``metaclip2 metadata lid`` to merge.
    list_format : {"auto", "text", "json-list", "json-keys"}
    numbers : bool
        Put ``"0"`` … ``"99"`` first, as built metadata does (off: the list as given).
    max_length : int
        Drop entries longer than this many characters.

    Returns
    -------
    MetadataBuild
        Entries, their sources (``number``/``import``) and a summary: candidates, entries,
        drops per filter rule, duplicates, list_format and input path.

    See Also
    --------
    - [`read_entry_list`][metaclip2.metadata.importing.read_entry_list] : Reads the file.
    - [`build_metadata`][metaclip2.metadata.build.build_metadata] : Builds metadata from sources instead.
    - [`build_lid_metadata`][metaclip2.matching.lid_metadata.build_lid_metadata] : Merges it with the other languages.

    Examples
    --------
    An entry list of one's own: blanks and repeats are dropped, the rest kept in order:

    >>> import json, os, pathlib, tempfile
    >>> from metaclip2.metadata.importing import import_metadata
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     listed = pathlib.Path(tmp, "concepts.json")
    ...     _ = listed.write_text(json.dumps(["dog", "cat", "dog", " ", "New York"]), encoding="utf-8")
    ...     built = import_metadata(listed, "en", out_dir=pathlib.Path(tmp, "wiki"))
    ...     print(sorted(os.listdir(pathlib.Path(tmp, "wiki"))))
    ['en.summary.json', 'en.tsv']
    >>> built.entries, built.summary["duplicates"], built.summary["dropped_by_filter"]["empty"]
    (['dog', 'cat', 'New York'], 1, 1)
    """
    if not lang or any(c in lang for c in "/\\\t\n") or lang.startswith("."):
        raise ParameterError(f"lang must be a plain language code such as 'en', got {lang!r}")
    raw, used = read_entry_list(path, list_format)
    if used == "text" and raw and raw[-1] == "":
        raw = raw[:-1]  # the final newline ends the last line; it is not an empty entry
    kept, dropped = clean_source(raw, max_length=max_length)
    entries: list[str] = [str(i) for i in range(100)] if numbers else []
    sources: list[str] = ["number"] * len(entries)
    seen = set(entries)
    duplicates = 0
    for s in kept:
        if s in seen:
            duplicates += 1
            continue
        seen.add(s)
        entries.append(s)
        sources.append("import")
    if not entries:
        raise MetadataError(f"{path}: no entry left after the filters ({dropped}); is it the right file and list_format?")
    summary = {
        "lang": lang,
        "entries": len(entries),
        "digest": entries_digest(entries),
        "entries_per_source": {"number": sources.count("number"), "import": sources.count("import")},
        "imported_from": Path(path).name,
        "list_format": used,
        "candidates": len(raw),
        "dropped_by_filter": dropped,
        "duplicates": duplicates,
        "numbers": bool(numbers),
        "max_length": max_length,
    }
    result = MetadataBuild(lang=lang, entries=entries, sources=sources, summary=summary)
    if out_dir is not None:
        write_language_metadata(result, out_dir)
    return result
