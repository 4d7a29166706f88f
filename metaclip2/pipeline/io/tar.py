"""Reading WebDataset tar shards (``.tar``, ``.tar.gz``, ``.tgz``): members grouped by key, a
``.json`` record and/or a ``.txt`` alt-text per key; other members (images) are never read;
concatenated archives are read through and damaged headers counted.
"""

from __future__ import annotations

import json
import posixpath
import tarfile
import zlib
from collections import OrderedDict
from typing import Any, Iterator

from metaclip2.pipeline.io import records
from metaclip2.pipeline.io.inputs import _open_maybe_gzip
from metaclip2.pipeline.io.records import (
    _SLOW,
    _UNDECODABLE,
    Image,
    _check_id,
    _damaged,
    _Damage,
    _decode,
    _extra,
    _flat_image,
    _Layout,
    _layout_error,
    _loads_fast,
    _records,
    _Resolver,
    _not_downloaded,
    _unreadable,
    check_text,
    record_cap,
)

__all__: list[str] = []


def _split_key(name: str) -> tuple[str, str]:
    """WebDataset key and extension of a member name (split at the first dot of the file name)."""
    if "/" not in name:  # the common case: a flat archive
        stem, dot, ext = name.partition(".")
        return stem, ext.lower() if dot else ""
    head, _, base = name.rpartition("/")
    stem, dot, ext = base.partition(".")
    return (f"{head}/{stem}" if head else stem), ext.lower() if dot else ""


def _member_text(data: bytes) -> Any:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return _decode(data)


def _tar_layout(fields, resolver: _Resolver) -> _Layout | None:
    """Layout of a tar sample's ``.json`` record (its id defaults to the key), or None (no text in it)."""
    spec = resolver.spec
    if spec.text_keys:
        ok = all(k in fields for k in spec.text_keys)
        return _Layout("named keys", spec.id_key or "id", spec.text_keys, spec.lang_key) if ok else None
    # one layout object per kind of record: built once, and a cheap key for the resolver's caches
    kind = ("texts" in fields, "text" in fields, "caption" in fields)
    cache = resolver.__dict__.get("tar_layouts")
    if cache is None:
        cache = resolver.__dict__["tar_layouts"] = {}
    if kind in cache:
        return cache[kind]
    found = []
    if "texts" in fields or "text" in fields:
        found.append(_Layout("metaclip2", spec.id_key or "id", ("texts",) if "texts" in fields else ("text",), spec.lang_key or "lang"))
    if "caption" in fields:
        found.append(_Layout("img2dataset", spec.id_key or "key", ("caption",), spec.lang_key))
    if len(found) > 1:
        raise _layout_error(resolver.path, set(fields), found)
    cache[kind] = found[0] if found else None
    return cache[kind]


def _tar_sample(key: str, files: dict, max_chars: int, resolver: _Resolver) -> Image:
    spec = resolver.spec
    obj = None
    if "json" in files:
        where = f"{key}.json"
        if files["json"] is None:
            return _unreadable("too_long", where)
        data = files["json"]
        obj = _loads_fast(data[3:] if data.startswith(b"\xef\xbb\xbf") else data)
        if obj is _SLOW:
            raw = _member_text(data)
            if raw is _UNDECODABLE:
                return _unreadable("undecodable", where)
            try:
                obj = json.loads(raw)
            except (ValueError, RecursionError):
                return _unreadable("malformed", where)
        if type(obj) is not dict:  # the common case skips these checks
            if isinstance(obj, (list, str)):
                obj = {"texts": obj if isinstance(obj, list) else [obj]}
            if not isinstance(obj, dict):
                return _unreadable("malformed", where)
        lay = _tar_layout(obj, resolver)  # a dict answers `in` like the set of its keys
        if lay is not None:
            if resolver.report["layout"] is None:  # fix() reports the first layout only: no key sets after it
                resolver.fix(lay, set(obj) | ({".txt"} if "txt" in files else set()))
            if records._FAST and (image := _flat_image(obj, where, lay, resolver, max_chars, None if spec.id_key else key)) is not None:
                return image  # the common case: a flat record, without a _records generator
            saved, resolver.layout = resolver.layout, lay
            try:
                return next(_records(((obj, where),), resolver, max_chars, default_id=None if spec.id_key else key))
            finally:
                resolver.layout = saved
    if "txt" in files:
        where = f"{key}.txt"
        lay = _Layout("webdataset-txt" if obj is None else "img2dataset", spec.id_key or "key", (".txt",), None)
        if resolver.report["layout"] is None:
            resolver.fix(lay, (set(obj) if obj else set()) | {".txt"})
        data = files["txt"]
        if data is None:
            return _unreadable("too_long", where)
        text = _member_text(data)
        if isinstance(text, str):
            text = text.rstrip("\r\n")
        image_id = key
        if obj is not None and _not_downloaded(obj):
            return _unreadable("not_downloaded", where)
        if obj is not None and spec.id_key:
            image_id, reason = _check_id(obj.get(spec.id_key))
            if reason is not None:
                return _unreadable(reason, where)
        image = Image(image_id, extra=_extra(obj, (lay.id_key, "key", "id", "caption", "text", "texts"), spec, resolver.nested) if obj else {})
        image.add(text, None, check_text(text, max_chars), where)
        return image
    if obj is not None:
        resolver.fix(None, set(obj))
        return _unreadable("missing_text", f"{key}.json")
    return _unreadable("missing_text", key)


class _TarFile(tarfile.TarFile):
    """Records the header blocks ``ignore_zeros`` skips (damage), not the zero blocks between archives."""

    def _dbg(self, level, msg):  # next() reports "0x<offset>: <header error>" for each skipped block
        offset, _, error = str(msg).partition(": ")
        if "end of file header" in error:
            return
        try:
            self.__dict__.setdefault("damage_events", []).append((int(offset, 16), error))
        except ValueError:
            pass


_LINK_MEMORY = 1024  # text members remembered for hard links to them


def _skipped(tar: _TarFile) -> _Damage | None:
    """The header blocks skipped since the last member, as one damage, or None."""
    events = tar.__dict__.pop("damage_events", None)
    if not events:
        return None
    (first, error), n = events[0], len(events)
    return _Damage(f"offset {first}", f"tar header: {error} ({n} block{'s' * (n > 1)} skipped before the next valid header)")


def _tar_members(path: str, max_chars: int):
    """``(key, ext, bytes or None)`` of the members, and damage as ``_Damage``; bounded memory.

    Text members are read up to a cap (longer ones give None: too long), other members not at all.
    """
    caps = {"txt": 4 * max_chars + 8, "json": record_cap(max_chars)}
    f, damage = _open_maybe_gzip(path, path.lower())
    if damage is not None:
        yield damage
        return
    recent: OrderedDict = OrderedDict()
    tar = None
    try:
        with f:
            tar = _TarFile.open(fileobj=f, mode="r|", ignore_zeros=True)
            state = tar.__dict__
            while (member := tar.next()) is not None:
                tar.members.clear()  # the stream reader would keep every header otherwise
                if "damage_events" in state and (d := _skipped(tar)) is not None:
                    yield d
                k, ext = _split_key(member.name)
                if ext not in caps:
                    if member.isfile() or member.islnk() or member.issym():
                        yield (k, ext, b"")  # the key is present (an image without text counts)
                    continue
                if member.islnk() or member.issym():
                    # a hard link names an earlier member; a symbolic one is relative to its directory
                    target = member.linkname if member.islnk() else posixpath.normpath(posixpath.join(posixpath.dirname(member.name), member.linkname))
                    if target not in recent:
                        kind = "hard" if member.islnk() else "symbolic"
                        yield _Damage(member.name, f"{kind} link to {member.linkname}, which is not among the last {_LINK_MEMORY} text members read")
                        continue
                    data = recent[target]
                elif member.isfile():
                    # the member's own size when under the cap: no cap-sized buffer per member
                    size = min(member.size, caps[ext] + 1)
                    if member.sparse is None:  # read straight from the stream (no file object per member)
                        stream = tar.fileobj
                        if stream.pos != member.offset_data:  # where the header just read leaves it, mostly
                            stream.seek(member.offset_data)
                        data = stream.read(size)
                        if len(data) != size:
                            raise tarfile.ReadError("unexpected end of data")  # as extractfile() reports it
                    else:
                        fh = tar.extractfile(member)
                        data = fh.read(size) if fh is not None else b""
                    if len(data) > caps[ext]:
                        data = None  # too long: the rest is skipped by the tar reader, never held
                    recent[member.name] = data
                    if len(recent) > _LINK_MEMORY:
                        recent.popitem(last=False)
                else:
                    continue
                yield (k, ext, data)
            if (d := _skipped(tar)) is not None:
                yield d
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        offset = getattr(tar, "offset", 0) if tar is not None else 0
        yield _Damage(f"offset {offset}", f"{type(e).__name__}: {e}; the rest of the archive is lost", final=True)


def _missing_text_only(image: Image) -> bool:
    return image.id is None and image.invalid == ["missing_text"]


def _read_tar(path: str, max_chars: int, resolver: _Resolver) -> Iterator[Image]:
    """Samples in order. A damaged stretch counts one pair (its records are unknown); a sample
    it left without its text (the sample open when it was met, or the next one) is that pair,
    not a second one (``missing_text``)."""
    key, files = None, {}
    watch: set = set()  # keys whose missing text the last damage already counts
    watch_next = False

    def done(k: str, f: dict) -> Image | None:
        image = _tar_sample(k, f, max_chars, resolver)
        if watch and k in watch:
            if _missing_text_only(image):
                watch.clear()  # one sample per damage
                return None
            watch.discard(k)
        return image

    for item in _tar_members(path, max_chars):
        if type(item) is not tuple:  # damage
            if item.final and key is not None:  # the sample read so far is complete, unless the damage cut its text
                image = _tar_sample(key, files, max_chars, resolver)
                if not _missing_text_only(image):
                    yield image
                key = None
            yield _damaged(item)
            watch.clear()
            if key is not None:
                watch.add(key)
            watch_next = True
            continue
        k, ext, data = item
        if k != key:
            if key is not None and (image := done(key, files)) is not None:
                yield image
            key, files = k, {}
            if watch_next:
                watch.add(k)
                watch_next = False
        if ext in ("json", "txt"):
            files[ext] = data
    if key is not None and (image := done(key, files)) is not None:
        yield image
