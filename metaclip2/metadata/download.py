"""Download the metadata sources: Wikipedia ``pages-articles`` dumps and hourly page-view files.

Files land in a local copy of the dump site's layout, so a tree downloaded here, a mirror
already on a shared filesystem and the site itself all look the same to
[`metaclip2.pipeline.builds.worldwide.build_all`][metaclip2.pipeline.builds.worldwide.build_all]::

    <out>/<code>wiki/<date>/<code>wiki-<date>-pages-articles.xml.bz2
    <out>/other/pageviews/<YYYY>/<YYYY-MM>/pageviews-<YYYYMMDD>-<HH>0000.gz

Each file is verified against the checksums the dump site publishes: a dump against its
``dumpstatus.json`` (sha1, md5, size), else ``<wiki>-<date>-sha1sums.txt`` / ``md5sums.txt``;
a page-view file against its month's ``md5sums.txt`` / ``sha1sums.txt``. With nothing
published, a ``.bz2`` / ``.gz`` file is decompressed whole instead. A file is written as
``<name>.part`` and renamed only once complete and verified, so an existing final file is a
complete one and is skipped; a ``.part`` left by an interrupted run is resumed with an HTTP
``Range`` request carrying ``If-Range`` (the version in ``<name>.part.json``).

The network is treated as hostile: every body is bounded by its published size (checksum
files by a few MiB) and in time (socket timeout, a minimum rate, a whole-file deadline); an
HTML or text answer, wrong magic bytes, a 206 for another range or version are refused or
restart the file from byte 0 (see [`download_files`][metaclip2.metadata.download.download_files]). Only the standard library's
``urllib`` is used.
"""

from __future__ import annotations

import bz2
import datetime as dt
import hashlib
import http.client
import json
import os
import random
import re
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from metaclip2.core.errors import DataError, ParameterError
from metaclip2.core.atomic import write_json, write_text

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_DUMP_PATH",
    "DEFAULT_DUMP_DATE",
    "DEFAULT_PAGEVIEW_DATES",
    "DEFAULT_CONNECTIONS",
    "DEFAULT_FILE_DEADLINE",
    "DownloadError",
    "FileTask",
    "FileResult",
    "wiki_name",
    "resolve_languages",
    "pageview_hours",
    "dump_tasks",
    "pageview_tasks",
    "download_files",
    "download_sources",
]

DEFAULT_BASE_URL = "https://dumps.wikimedia.org"
#: Where a dump lives below the base URL (the dump site's layout); mirrors/archives may differ.
DEFAULT_DUMP_PATH = "{wiki}/{date}/{name}"
#: The paper's dumps (2024-05-01, 329 languages).
DEFAULT_DUMP_DATE = "20240501"
#: The paper's number of random page-view dates (the authors' release used 37).
DEFAULT_PAGEVIEW_DATES = 40
#: dumps.wikimedia.org allows 2 connections per client address.
DEFAULT_CONNECTIONS = 2
#: Default whole-file deadline in seconds (retries included); a re-run resumes past it.
DEFAULT_FILE_DEADLINE = 24 * 3600.0
_CHUNK = 1 << 20
_HASHES = ("sha1", "md5")
# dumpstatus.json and *sums.txt are kilobytes; more is not a checksum file.
_SMALL_CAP = 4 << 20
# Each --timeout window of a body must bring at least this many bytes a second.
_MIN_RATE = 1024
# A body with no size published and none announced stops here (enwiki's dump is ~22 GB).
_UNSIZED_CAP = 64 << 30
# Answers to a resume that were another version or range, before a file is given up.
_MAX_RESTARTS = 2
_MAGIC = {".bz2": b"BZh", ".gz": b"\x1f\x8b"}


class DownloadError(DataError):
    """A checksum file or listing could not be fetched (the message names the URL and what to do).

    Per-file failures (missing, checksum mismatch, network) are not raised: they are reported
    in each [`FileResult`][metaclip2.metadata.download.FileResult] so that one bad file does not stop the others.
    """


def _user_agent() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        __version__ = version("metaclip2")
    except PackageNotFoundError:  # running from a source tree that is not installed
        __version__ = "dev"
    # Wikimedia's policy asks for an identifying User-Agent.
    return f"metaclip2/{__version__} (metadata downloader; https://github.com/metaclip2/metaclip2)"


@dataclass
class FileTask:
    """One file to fetch.

    Attributes
    ----------
    url : str
    dest : str
        Final local path.
    kind : str
        ``"dump"`` or ``"pageviews"``.
    lang : str
        Wikipedia code of a dump; ``""`` for page views.
    size : int or None
        Expected size in bytes, when published.
    checksums : dict of str -> str
        ``{"sha1"|"md5": hex digest}`` published for the file (may be empty: unverifiable).

    See Also
    --------
    - [`dump_tasks`][metaclip2.metadata.download.dump_tasks] : The tasks of Wikipedia dumps.
    - [`pageview_tasks`][metaclip2.metadata.download.pageview_tasks] : The tasks of page-view files.
    - [`download_files`][metaclip2.metadata.download.download_files] : Runs tasks.

    Examples
    --------
    >>> from metaclip2.metadata.download import FileTask
    >>> task = FileTask(
    ...     url="https://dumps.wikimedia.org/enwiki/20240501/enwiki-20240501-pages-articles.xml.bz2",
    ...     dest="sources/enwiki/20240501/enwiki-20240501-pages-articles.xml.bz2",
    ...     kind="dump",
    ...     lang="en",
    ... )
    >>> task.checksums  # none published: the download cannot be verified
    {}
    """

    url: str
    dest: str
    kind: str
    lang: str = ""
    size: int | None = None
    checksums: dict = field(default_factory=dict)


@dataclass
class FileResult:
    """Outcome of one [`FileTask`][metaclip2.metadata.download.FileTask].

    ``status`` is ``"downloaded"``, ``"skipped"`` (already complete), ``"missing"`` (the server
    has no such file), ``"checksum_mismatch"``, ``"invalid"`` (the server's bytes are not the
    file: an HTML page, wrong magic bytes, longer than published, not whole compressed data) or
    ``"error"`` (network, too slow, past the deadline). ``verified`` says what a downloaded file
    was checked with: ``"sha1"`` / ``"md5"`` (the published checksum), ``"size"`` (only a size
    was published), ``"decompressed"`` (nothing was published: it was decompressed whole) or
    None; ``message`` says it in words, or why a file failed (one line).

    See Also
    --------
    - [`download_files`][metaclip2.metadata.download.download_files] : Returns one per task.

    Examples
    --------
    >>> from metaclip2.metadata.download import FileTask, download_files
    >>> import gzip, hashlib, pathlib, tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> served = pathlib.Path(tmp.name, "pageviews-20240105-020000.gz")  # stands in for a server's file
    >>> _ = served.write_bytes(gzip.compress(b"en Dog 3 0\\n", mtime=0))
    >>> task = FileTask(url=served.as_uri(), dest=str(pathlib.Path(tmp.name, "sources", served.name)),
    ...                 kind="pageviews", checksums={"md5": hashlib.md5(served.read_bytes()).hexdigest()})
    >>> result, = download_files([task], progress=False)
    >>> result.status, result.bytes == served.stat().st_size, result.verified, result.message
    ('downloaded', True, 'md5', 'md5 checked')
    >>> tmp.cleanup()
    """

    url: str
    dest: str
    kind: str
    lang: str
    status: str
    bytes: int = 0
    verified: str | None = None
    resumed_from: int = 0
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("downloaded", "skipped")


def wiki_name(code: str) -> str:
    """Dump database name of a Wikipedia code: ``"zh-yue"`` -> ``"zh_yuewiki"``.

    Examples
    --------
    >>> from metaclip2.metadata.download import wiki_name
    >>> wiki_name("en"), wiki_name("zh-yue")
    ('enwiki', 'zh_yuewiki')
    """
    return code.strip().lower().replace("-", "_") + "wiki"


def resolve_languages(languages: str | Iterable[str]) -> list[str]:
    """``"all"`` (every code of the package's Wikipedia table), ``"en,de"`` or a list -> sorted codes.

    Raises
    ------
    ValueError
        For a code that is not a known Wikipedia (the message lists them).

    Examples
    --------
    >>> from metaclip2.metadata.download import resolve_languages
    >>> resolve_languages("en,de")
    ['de', 'en']
    >>> len(resolve_languages("all"))
    330
    >>> resolve_languages("en,xx")
    Traceback (most recent call last):
    ...
    metaclip2.core.errors.ParameterError: not Wikipedia codes: xx (use dump names such as en, zh_yue, be_tarask, or 'all')
    """
    from metaclip2.core.languages import WIKIPEDIA_ALIASES, WIKIPEDIA_LANGUAGES

    if isinstance(languages, str):
        if languages.strip() == "all":
            return sorted(WIKIPEDIA_LANGUAGES)
        languages = [c for c in languages.split(",") if c.strip()]
    known = set(WIKIPEDIA_LANGUAGES)
    out, bad = set(), []
    for code in languages:
        c = code.strip().lower().replace("-", "_")
        c = WIKIPEDIA_ALIASES.get(c, c)
        if c in known:
            out.add(c)
        else:
            bad.append(code)
    if bad:
        raise ParameterError(f"not Wikipedia codes: {', '.join(bad)} (use dump names such as en, zh_yue, be_tarask, or 'all')")
    if not out:
        raise ParameterError("no languages given")
    return sorted(out)


def _parse_date(s: str | dt.date) -> dt.date:
    if isinstance(s, dt.date):
        return s
    s = s.strip().replace("-", "")
    try:
        return dt.datetime.strptime(s, "%Y%m%d").date()
    except ValueError:
        raise ParameterError(f"bad date {s!r}: use YYYYMMDD or YYYY-MM-DD") from None


def pageview_hours(
    n_dates: int,
    seed: int = 0,
    start: str | dt.date | None = None,
    end: str | dt.date | None = None,
    hours_per_date: int = 1,
) -> list[dt.datetime]:
    """Hours of page-view files to sum: `n_dates` distinct dates drawn with `seed`, each with hours drawn too.

    Parameters
    ----------
    n_dates : int
        Distinct dates (the paper: 40).
    seed : int
        Same seed and range -> same hours.
    start, end : date or str, optional
        Inclusive range (``YYYYMMDD``); default the 365 days before [`DEFAULT_DUMP_DATE`][metaclip2.metadata.download.DEFAULT_DUMP_DATE].
    hours_per_date : int
        Hourly files per date (1-24), distinct hours of that day.

    Returns
    -------
    list of datetime
        Sorted.

    See Also
    --------
    - [`pageview_tasks`][metaclip2.metadata.download.pageview_tasks] : The files of these hours.

    Examples
    --------
    >>> from metaclip2.metadata.download import pageview_hours
    >>> pageview_hours(2, seed=1, start="20240101", end="20240131", hours_per_date=2)  # doctest: +NORMALIZE_WHITESPACE
    [datetime.datetime(2024, 1, 5, 2, 0), datetime.datetime(2024, 1, 5, 8, 0),
     datetime.datetime(2024, 1, 19, 3, 0), datetime.datetime(2024, 1, 19, 15, 0)]
    """
    end_d = _parse_date(end) if end is not None else _parse_date(DEFAULT_DUMP_DATE) - dt.timedelta(days=1)
    start_d = _parse_date(start) if start is not None else end_d - dt.timedelta(days=364)
    days = (end_d - start_d).days + 1
    if days < 1:
        raise ParameterError(f"page-view range {start_d}..{end_d} is empty")
    if not 1 <= n_dates <= days:
        raise ParameterError(f"n_dates must be within 1..{days} (days in {start_d}..{end_d}), got {n_dates}")
    if not 1 <= hours_per_date <= 24:
        raise ParameterError(f"hours_per_date must be within 1..24, got {hours_per_date}")
    rng = random.Random(seed)
    out = []
    for offset in sorted(rng.sample(range(days), n_dates)):
        day = start_d + dt.timedelta(days=offset)
        for h in sorted(rng.sample(range(24), hours_per_date)):
            out.append(dt.datetime(day.year, day.month, day.day, h))
    return out


# ---------------------------------------------------------------------------------------------
# HTTP: every body is bounded in bytes and in time


class _Interrupted(Exception):
    """The transfer stopped early (connection closed, socket timeout, too slow): resume it."""


class _Deadline(Exception):
    """The file's whole-file deadline passed: stop it, keep the ``.part``."""


class _Invalid(Exception):
    """The server's bytes are not the file (an HTML page, wrong magic, longer than published)."""


class _Restart(Exception):
    """A resume was answered with another version or another range: fetch from byte 0."""


def _open(url: str, offset: int = 0, timeout: float = 60.0, validator: str | None = None):
    # identity: the bytes on disk must be the file's, not a transfer encoding of them.
    headers = {"User-Agent": _user_agent(), "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if validator:
            # The server sends the rest only if the file is still this version, else all of it.
            headers["If-Range"] = validator
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


class _Clock:
    """Stops a body that trickles or runs too long.

    A socket timeout alone is reset by every byte, so one byte every few seconds would hold a
    connection forever: each `timeout`-long window must bring at least `_MIN_RATE`
    bytes a second, and nothing may run past `deadline` (``time.monotonic()`` seconds).
    """

    def __init__(self, timeout: float, deadline: float):
        self.timeout, self.deadline = timeout, deadline
        self.start, self.n = time.monotonic(), 0

    def begin(self) -> None:
        """Start the rate window where the body starts (the deadline stays)."""
        self.start, self.n = time.monotonic(), 0

    def tick(self, n: int) -> None:
        now = time.monotonic()
        if now > self.deadline:
            raise _Deadline()
        self.n += n
        elapsed = now - self.start
        if elapsed >= self.timeout:
            if self.n < _MIN_RATE * elapsed:
                raise _Interrupted(f"slower than {_MIN_RATE} bytes/s ({self.n} bytes in {elapsed:.1f} s)")
            self.start, self.n = now, 0


class _TooLong(Exception):
    """A body went past its bound."""


def _read_body(r, write, limit: int, clock: _Clock) -> int:
    """Pass the body of `r` to `write` until it ends; returns its length.

    Raises `_TooLong` before writing past `limit` bytes, `_Interrupted` when reading fails.
    """
    # read1 returns what one socket read brings, so the clock runs between trickled bytes too
    # (read(n) would wait for all n).
    read = getattr(r, "read1", None) or r.read
    got = 0
    clock.begin()
    while True:
        try:
            chunk = read(_CHUNK)
        except (http.client.HTTPException, OSError) as e:
            raise _Interrupted(str(e) or type(e).__name__) from None
        if not chunk:
            return got
        if got + len(chunk) > limit:
            raise _TooLong()
        got += len(chunk)
        write(chunk)
        clock.tick(len(chunk))


def _fetch_small(url: str, timeout: float = 60.0, retries: int = 3) -> bytes | None:
    """Body of a small file (at most `_SMALL_CAP` bytes), or None on 404."""
    for attempt in range(retries + 1):
        try:
            with _open(url, timeout=timeout) as r:
                buf = bytearray()
                _read_body(r, buf.extend, _SMALL_CAP, _Clock(timeout, time.monotonic() + 3 * timeout))
                return bytes(buf)
        except _TooLong:
            raise DownloadError(f"{url}: the server sent more than {_SMALL_CAP >> 20} MiB for a checksum file; "
                                "check --base-url (a mirror of the dump site), then re-run") from None  # fmt: skip
        except urllib.error.HTTPError as e:
            if e.code in (404, 410):
                return None
            err: Exception = e
        except _Deadline:
            err = Exception(f"not complete within {3 * timeout:g} s")
        except (_Interrupted, urllib.error.URLError, OSError, http.client.HTTPException) as e:
            err = e
        if attempt < retries:
            time.sleep(min(2**attempt, 10) * 0.5)
    raise DownloadError(f"{url}: {err}; check --base-url and the network, then re-run")


def _parse_sums(text: str) -> dict[str, str]:
    """``<hex>  <name>`` lines -> name -> hex (other lines, e.g. of an HTML page, are ignored)."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and _hash_name(parts[0]) and all(c in "0123456789abcdefABCDEF" for c in parts[0]):
            out[parts[1].lstrip("*")] = parts[0].lower()
    return out


def _hash_name(hexdigest: str) -> str:
    return {40: "sha1", 32: "md5"}.get(len(hexdigest), "")


def _published(status: bytes, name: str) -> tuple[int | None, dict[str, str]]:
    """(size, checksums) of `name` in a ``dumpstatus.json`` body; (None, {}) when absent or malformed."""
    try:
        jobs = json.loads(status.decode("utf-8")).get("jobs", {})
        for job in jobs.values():
            info = (job.get("files") or {}).get(name)
            if info:
                size = info.get("size")
                size = int(size) if size is not None else None
                sums = {h: str(info[h]).lower() for h in _HASHES if info.get(h)}
                return (size if size is None or size >= 0 else None), {h: v for h, v in sums.items() if _hash_name(v) == h}
    except (UnicodeDecodeError, ValueError, AttributeError, TypeError):
        pass
    return None, {}


# ---------------------------------------------------------------------------------------------
# Planning: what to fetch, with which checksums


def _dump_task(code: str, date: str, base_url: str, out: Path, timeout: float, dump_path: str = DEFAULT_DUMP_PATH) -> FileTask:
    wiki = wiki_name(code)
    name = f"{wiki}-{date}-pages-articles.xml.bz2"
    url = f"{base_url.rstrip('/')}/{dump_path.format(wiki=wiki, date=date, name=name).lstrip('/')}"
    root = url.rsplit("/", 1)[0]  # the checksum files sit beside the dump
    # The local tree always has the dump site's layout, whatever the mirror's.
    task = FileTask(url=url, dest=str(out / wiki / date / name), kind="dump", lang=code.replace("-", "_"))
    status = _fetch_small(f"{root}/dumpstatus.json", timeout)
    if status is not None:
        task.size, task.checksums = _published(status, name)
    if not task.checksums:
        for h in _HASHES:
            sums = _fetch_small(f"{root}/{wiki}-{date}-{h}sums.txt", timeout)
            if sums is not None and name in (parsed := _parse_sums(sums.decode("utf-8", "replace"))):
                task.checksums = {h: parsed[name]}
                break
    return task


def _check_dump_path(dump_path: str) -> None:
    try:
        dump_path.format(wiki="w", date="d", name="n")
    except (KeyError, IndexError, ValueError) as e:
        raise ParameterError(f"dump_path {dump_path!r} may only use {{wiki}}, {{date}} and {{name}} ({e})") from None


def dump_tasks(
    languages: Sequence[str],
    date: str = DEFAULT_DUMP_DATE,
    out_dir: str | os.PathLike = ".",
    base_url: str = DEFAULT_BASE_URL,
    connections: int = DEFAULT_CONNECTIONS,
    timeout: float = 60.0,
    dump_path: str = DEFAULT_DUMP_PATH,
) -> list[FileTask]:
    """One task per language: its ``pages-articles.xml.bz2`` of `date`, with published size and checksums.

    The checksum files (``dumpstatus.json``, else ``*-sha1sums.txt`` / ``*-md5sums.txt``, in the
    dump's directory) are fetched here, `connections` at a time. `dump_path` places a dump below
    `base_url` (fields ``{wiki}``, ``{date}``, ``{name}``), for mirrors with another layout.

    See Also
    --------
    - [`download_files`][metaclip2.metadata.download.download_files] : Fetches the tasks.
    - [`download_sources`][metaclip2.metadata.download.download_sources] : Plans and fetches dumps and page views.

    Examples
    --------
    Planning against a local mirror (``base_url`` takes any URL ``urllib`` opens):

    >>> import bz2, hashlib, json, pathlib, tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> mirror = pathlib.Path(tmp.name, "mirror")  # a local copy of the dump site's layout
    >>> dump = mirror / "enwiki" / "20240501" / "enwiki-20240501-pages-articles.xml.bz2"
    >>> dump.parent.mkdir(parents=True)
    >>> _ = dump.write_bytes(bz2.compress(b"<mediawiki>\\n</mediawiki>\\n"))
    >>> published = {dump.name: {"size": dump.stat().st_size, "sha1": hashlib.sha1(dump.read_bytes()).hexdigest()}}
    >>> _ = (dump.parent / "dumpstatus.json").write_text(json.dumps({"jobs": {"articlesdump": {"files": published}}}))
    >>> from metaclip2.metadata.download import dump_tasks
    >>> task, = dump_tasks(["en"], out_dir="sources", base_url=mirror.as_uri())
    >>> task.dest, task.size, task.checksums["sha1"] == published[dump.name]["sha1"]
    ('sources/enwiki/20240501/enwiki-20240501-pages-articles.xml.bz2', 59, True)
    >>> tmp.cleanup()
    """
    date = _parse_date(date).strftime("%Y%m%d")
    _check_dump_path(dump_path)
    out = Path(out_dir)
    with ThreadPoolExecutor(max(1, connections)) as pool:
        return list(pool.map(lambda c: _dump_task(c, date, base_url, out, timeout, dump_path), languages))


def pageview_tasks(
    hours: Iterable[dt.datetime],
    out_dir: str | os.PathLike = ".",
    base_url: str | None = None,
    timeout: float = 60.0,
) -> list[FileTask]:
    """One task per hour: ``pageviews-YYYYMMDD-HH0000.gz``, with its month's published checksum.

    `base_url` is the page-view root (default ``<DEFAULT_BASE_URL>/other/pageviews``); files land
    in ``<out_dir>/other/pageviews/YYYY/YYYY-MM/``.

    See Also
    --------
    - [`pageview_hours`][metaclip2.metadata.download.pageview_hours] : Which hours.
    - [`download_files`][metaclip2.metadata.download.download_files] : Fetches the tasks.

    Examples
    --------
    Planning against a local mirror whose month directory publishes no checksums:

    >>> import datetime, pathlib, tempfile
    >>> from metaclip2.metadata.download import pageview_tasks
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     month = pathlib.Path(tmp, "pageviews", "2024", "2024-01")
    ...     month.mkdir(parents=True)
    ...     _ = (month / "md5sums.txt").write_text("")
    ...     task, = pageview_tasks([datetime.datetime(2024, 1, 5, 2)], out_dir="sources",
    ...                            base_url=pathlib.Path(tmp, "pageviews").as_uri())
    >>> task.dest, task.checksums
    ('sources/other/pageviews/2024/2024-01/pageviews-20240105-020000.gz', {})
    """
    base = (base_url or f"{DEFAULT_BASE_URL}/other/pageviews").rstrip("/")
    out = Path(out_dir) / "other" / "pageviews"
    sums_by_month: dict[str, dict[str, str]] = {}
    tasks = []
    for h in sorted(set(hours)):
        month = f"{h:%Y}/{h:%Y-%m}"
        if month not in sums_by_month:
            sums: dict[str, str] = {}
            for alg in ("md5", "sha1"):
                body = _fetch_small(f"{base}/{month}/{alg}sums.txt", timeout)
                if body is not None:
                    sums = _parse_sums(body.decode("utf-8", "replace"))
                    break
            sums_by_month[month] = sums
        name = f"pageviews-{h:%Y%m%d-%H}0000.gz"
        digest = sums_by_month[month].get(name)
        tasks.append(
            FileTask(
                url=f"{base}/{month}/{name}",
                dest=str(out / month / name),
                kind="pageviews",
                checksums={_hash_name(digest): digest} if digest and _hash_name(digest) else {},
            )
        )
    return tasks


# ---------------------------------------------------------------------------------------------
# Fetching

#: What each ``FileResult.verified`` value means, as results and the CLI say it.
_CHECKED = {
    "sha1": "sha1 checked",
    "md5": "md5 checked",
    "size": "size checked",
    "decompressed": "decompressed whole",
    None: "not verified: no checksum or size published",
}
# A dump or page-view file is never text: these types are an error page, not the file.
_TEXT_TYPES = ("text/", "application/xhtml+xml", "application/json", "application/xml")


def _magic(dest: str | os.PathLike) -> bytes | None:
    return _MAGIC.get(Path(dest).suffix)


def _starts_with(path: Path, magic: bytes) -> bool:
    with open(path, "rb") as f:
        return f.read(len(magic)) == magic


def _not_magic(head: bytes, suffix: str) -> str:
    return f"starts with {bytes(head[:16])!r}, not {suffix.lstrip('.')} data"


def _type_problem(task: FileTask, headers) -> str | None:
    """Why the response's Content-Type says it is not the file, or None."""
    if _magic(task.dest) is None or not task.url.lower().startswith(("http:", "https:")):
        return None  # a local file's type is only a guess from its name
    ctype = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    encoding = (headers.get("Content-Encoding") or "identity").strip().lower()
    # A server may label x.xml.bz2 "application/xml" with "Content-Encoding: x-bzip2": the body is still the bz2 file.
    if ctype.startswith(_TEXT_TYPES) and (encoding == "identity" or "html" in ctype):
        return f"the server sent Content-Type {ctype}, not a {Path(task.dest).suffix.lstrip('.')} file"
    return None


def _validator(headers) -> str | None:
    """The version tag If-Range can carry: a strong ETag, else Last-Modified."""
    etag = (headers.get("ETag") or "").strip()
    if etag and not etag.startswith("W/"):  # If-Range allows only strong ETags
        return etag
    return (headers.get("Last-Modified") or "").strip() or None


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total size) of ``Content-Range: bytes a-b/n``; None for what is absent."""
    m = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", value or "")
    if not m:
        return None, None
    return int(m.group(1)), (int(m.group(3)) if m.group(3) != "*" else None)


def _int_header(value: str | None) -> int | None:
    try:
        n = int(value) if value is not None else None
    except ValueError:
        return None
    return n if n is None or n >= 0 else None


def _read_meta(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _discard(*paths: Path) -> None:
    for p in paths:
        p.unlink(missing_ok=True)


def _file_digest(path: Path, alg: str) -> str:
    h = hashlib.new(alg)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _decompression_problem(path: Path, suffix: str) -> str | None:
    """Why `path` is not whole bz2 (`suffix` ``.bz2``) or gzip data (streams back to back, nothing after), or None.

    Decompresses in `_CHUNK` steps and drops the output, so memory stays bounded.
    """
    gz = suffix == ".gz"

    def new():
        return zlib.decompressobj(wbits=31) if gz else bz2.BZ2Decompressor()

    d, fed, streams = new(), False, 0
    try:
        with open(path, "rb") as f:
            while data := f.read(_CHUNK):
                while data:
                    d.decompress(data, _CHUNK)
                    fed, data = True, b""
                    # Drain what the decompressor holds back without growing memory.
                    while not d.eof and (d.unconsumed_tail if gz else not d.needs_input):
                        d.decompress(d.unconsumed_tail if gz else b"", _CHUNK)
                    if d.eof:  # one stream done; what follows must be another one
                        streams, data = streams + 1, d.unused_data
                        d, fed = new(), False
        if fed and gz:
            d.flush()
            if d.eof:
                streams, fed = streams + 1, bool(d.unused_data)
    except (OSError, EOFError, zlib.error) as e:
        return f"does not decompress ({e})"
    if fed:
        return "ends in the middle of a compressed stream (truncated)"
    if not streams:
        return "holds no compressed stream"
    return None


def _verify(path: Path, task: FileTask) -> tuple[str | None, str | None, str]:
    """(what was checked, the problem or None, the status a problem gives)."""
    magic = _magic(task.dest)
    if magic and not _starts_with(path, magic):
        with open(path, "rb") as f:
            return None, _not_magic(f.read(16), Path(task.dest).suffix), "invalid"
    size = path.stat().st_size
    if task.size is not None and size != task.size:
        return "size", f"{size} bytes, {task.size} published", "invalid"
    for alg in _HASHES:
        if alg in task.checksums:
            if _file_digest(path, alg) != task.checksums[alg]:
                return alg, f"{alg} of the downloaded file differs from the published one", "checksum_mismatch"
            return alg, None, ""
    if task.size is not None:
        return "size", None, ""
    if magic:  # nothing published: the file must at least be whole compressed data
        return "decompressed", _decompression_problem(path, Path(task.dest).suffix), "invalid"
    return None, None, ""


def _transfer(task: FileTask, part: Path, timeout: float, clock: _Clock, bar) -> tuple[int, int]:
    """Append the rest of the file to `part`; returns (bytes fetched, offset resumed from).

    Raises `_Interrupted` when the body stops early or too slowly (resume), `_Restart` when a
    resume was answered with another version or range, `_Invalid` when the body is not the
    file, `_Deadline` past the file's deadline, HTTPError for HTTP errors.
    """
    magic = _magic(task.dest)
    meta = part.with_name(part.name + ".json")  # the version the .part holds, for If-Range
    offset = part.stat().st_size if part.exists() else 0
    validator = None
    if offset:
        saved = _read_meta(meta)
        validator = saved.get("validator") if saved.get("url") == task.url else None
        if magic and offset >= len(magic) and not _starts_with(part, magic):
            offset, validator = 0, None  # the .part is not this kind of file: resuming it cannot help
    try:
        r = _open(task.url, offset, timeout, validator)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:
            return 0, offset  # already whole: verification decides
        raise
    with r:
        status = getattr(r, "status", None) or 200  # a file: URL has no status
        if status not in (200, 206):
            raise _Interrupted(f"HTTP {status}")
        current = _validator(r.headers)
        total = None
        if status == 206:
            start, total = _content_range(r.headers.get("Content-Range"))
            if start != offset:
                where = "no valid Content-Range" if start is None else f"bytes from {start}"
                raise _Restart(f"asked for bytes from {offset}, the server's 206 has {where}")
            if validator and current and current != validator:
                raise _Restart(f"the file changed on the server between requests ({validator} -> {current})")
        elif offset:
            offset = 0  # a 200 to a Range request is the whole file, maybe a new version: start over
        if problem := _type_problem(task, r.headers):
            raise _Invalid(problem)
        length = _int_header(r.headers.get("Content-Length"))
        announced = offset + length if length is not None else total
        if task.size is not None and announced is not None and announced != task.size:
            raise _Invalid(f"the server announces {announced} bytes, {task.size} are published")
        bound = task.size if task.size is not None else announced if announced is not None else _UNSIZED_CAP
        if offset == 0:
            write_json(meta, {"url": task.url, "validator": current})
        elif bar is not None:
            bar.update(offset)
        head = bytearray()
        with open(part, "ab" if offset else "wb") as f:

            def write(chunk: bytes) -> None:
                if magic and offset == 0 and len(head) < len(magic):
                    head.extend(chunk[: len(magic)])
                    if len(head) >= len(magic) and not head.startswith(magic):
                        raise _Invalid(_not_magic(head + chunk[len(magic) :], Path(task.dest).suffix))
                f.write(chunk)
                if bar is not None:
                    bar.update(len(chunk))

            try:
                got = _read_body(r, write, bound - offset, clock)
            except _TooLong:
                raise _Invalid(f"the server sent more than the {bound} bytes {'published' if task.size is not None else 'it announced'}") from None
        if announced is not None and offset + got < announced:
            raise _Interrupted(f"connection closed after {offset + got} of {announced} bytes")
    return got, offset


def _download_one(task: FileTask, retries: int, timeout: float, file_deadline: float, bar) -> FileResult:
    dest = Path(task.dest)
    res = FileResult(task.url, task.dest, task.kind, task.lang, status="error")
    magic = _magic(dest)
    if dest.exists():
        if (task.size is None or dest.stat().st_size == task.size) and (magic is None or _starts_with(dest, magic)):
            # Only a verified file is ever renamed to its final name.
            res.status, res.bytes = "skipped", dest.stat().st_size
            if bar is not None:
                bar.update(res.bytes)
            return res
        dest.unlink()  # not the published file (another size, or not this kind of data): fetch it again
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    meta = part.with_name(part.name + ".json")
    deadline = time.monotonic() + file_deadline
    fresh_retry = True  # one restart from zero after a failed verification (a bad earlier resume)
    attempt = restarts = 0
    first_offset = None
    while True:
        try:
            if time.monotonic() > deadline:
                raise _Deadline()
            got, offset = _transfer(task, part, timeout, _Clock(timeout, deadline), bar)
            first_offset = offset if first_offset is None else first_offset
            res.bytes += got
        except urllib.error.HTTPError as e:
            if e.code in (404, 410):
                _discard(part, meta)
                res.status = "missing"
                res.message = (f"HTTP {e.code}: not on the server. dumps.wikimedia.org keeps only the last few dump dates; "
                               "for an older --date use a mirror or archive that keeps it (--base-url, --dump-path)")  # fmt: skip
                return res
            err = f"HTTP {e.code}"
        except _Deadline:
            res.message = f"not complete within {file_deadline:g} s (--file-deadline); the .part file is kept and a re-run resumes it"
            return res
        except _Restart as e:
            _discard(part, meta)
            restarts += 1
            if restarts > _MAX_RESTARTS:
                res.message = f"{e} ({restarts} times; nothing kept, re-run later or try another --base-url)"
                return res
            continue  # at once: the request from byte 0 carries no Range, so it cannot be answered wrongly again
        except _Invalid as e:
            _discard(part, meta)
            if fresh_retry:
                fresh_retry = False
                continue
            res.status, res.message = "invalid", f"{e} (twice; nothing kept, re-run later or try another --base-url)"
            return res
        except _Interrupted as e:
            err = f"interrupted: {e}"
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            err = str(e)
        else:
            verified, problem, status = _verify(part, task)
            if problem is None:
                os.replace(part, dest)
                _discard(meta)
                res.status, res.verified, res.resumed_from = "downloaded", verified, first_offset or 0
                res.message = _CHECKED[verified]
                return res
            _discard(part, meta)
            if fresh_retry:
                fresh_retry = False
                continue
            res.status, res.verified = status, verified
            res.message = f"{problem} (twice; file removed, re-run later or try another --base-url)"
            return res
        attempt += 1
        if attempt > retries:
            res.message = f"{err} (after {retries} retries; the .part file is kept and a re-run resumes it)"
            return res
        time.sleep(max(0.0, min(min(2**attempt, 30) * 0.25, deadline - time.monotonic())))


def _check_limits(connections: int, timeout: float, file_deadline: float) -> None:
    if connections < 1:
        raise ParameterError(f"connections must be at least 1, got {connections}")
    if not timeout > 0 or not file_deadline > 0:
        raise ParameterError(f"timeout and file_deadline must be positive seconds, got {timeout} and {file_deadline}")


def download_files(
    tasks: Sequence[FileTask],
    connections: int = DEFAULT_CONNECTIONS,
    retries: int = 5,
    timeout: float = 60.0,
    progress: bool = True,
    file_deadline: float = DEFAULT_FILE_DEADLINE,
) -> list[FileResult]:
    """Fetch every task, `connections` at a time, resuming, verifying and skipping complete files.

    Every body is bounded by the file's published size (else its announced one) and in time:
    `timeout` per socket read, at least 1 KiB/s over each `timeout` window, and
    `file_deadline` seconds per file, retries included. A ``.bz2`` / ``.gz`` file must start
    with its magic bytes and must not come as text or HTML; with no checksum and no size
    published it is decompressed whole before it is kept. A resume carries ``If-Range`` with
    the first response's ETag (else Last-Modified); an answer of another version or another
    range restarts the file from byte 0.

    Parameters
    ----------
    tasks : list of FileTask
    connections : int
        Files fetched at once.
    retries : int
        Per-file retries after a network error or a too slow body (each resumes).
    timeout : float
        Socket timeout in seconds, and the window of the minimum rate.
    progress : bool
        Byte progress bar (stderr); failures are printed one line each.
    file_deadline : float
        Seconds one file may take, retries included; past it the ``.part`` is kept for a re-run.

    Returns
    -------
    list of FileResult
        In the order of `tasks`. Failures do not stop the other files; see ``status``.

    See Also
    --------
    - [`dump_tasks`][metaclip2.metadata.download.dump_tasks] : Tasks of Wikipedia dumps.
    - [`pageview_tasks`][metaclip2.metadata.download.pageview_tasks] : Tasks of page-view files.

    Examples
    --------
    A file is verified against its published checksum when fetched, and skipped once there
    (only verified files ever get their final name, so it is not hashed again):

    >>> from metaclip2.metadata.download import FileTask, download_files
    >>> import gzip, hashlib, pathlib, tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> served = pathlib.Path(tmp.name, "pageviews-20240105-020000.gz")  # stands in for a server's file
    >>> _ = served.write_bytes(gzip.compress(b"en Dog 3 0\\n", mtime=0))
    >>> task = FileTask(url=served.as_uri(), dest=str(pathlib.Path(tmp.name, "sources", served.name)),
    ...                 kind="pageviews", checksums={"md5": hashlib.md5(served.read_bytes()).hexdigest()})
    >>> [(r.status, r.verified) for r in download_files([task], progress=False)]
    [('downloaded', 'md5')]
    >>> [(r.status, r.verified) for r in download_files([task], progress=False)]
    [('skipped', None)]

    With nothing published, the file must decompress whole; a cut one is not kept:

    >>> cut = pathlib.Path(tmp.name, "pageviews-20240105-030000.gz")
    >>> _ = cut.write_bytes(served.read_bytes()[:-4])
    >>> bare = FileTask(url=cut.as_uri(), dest=str(pathlib.Path(tmp.name, "sources", cut.name)), kind="pageviews")
    >>> r, = download_files([bare], progress=False)
    >>> r.status, r.message
    ('invalid', 'ends in the middle of a compressed stream (truncated) (twice; file removed, re-run later or try another --base-url)')
    >>> pathlib.Path(bare.dest).exists()
    False
    >>> tmp.cleanup()
    """
    _check_limits(connections, timeout, file_deadline)
    from tqdm.auto import tqdm

    known = [t.size for t in tasks if t.size is not None]
    bar = tqdm(
        total=sum(known) if len(known) == len(tasks) else None,
        desc=f"download ({len(tasks)} files)",
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        disable=not progress,
    )
    lock = threading.Lock()

    def run(task: FileTask) -> FileResult:
        r = _download_one(task, retries, timeout, file_deadline, bar)
        if progress and not r.ok:
            with lock:
                bar.write(f"{r.status}: {r.url} {r.message}", file=sys.stderr)
        return r

    try:
        with ThreadPoolExecutor(connections) as pool:
            return list(pool.map(run, tasks))
    finally:
        bar.close()


def download_sources(
    out_dir: str | os.PathLike,
    languages: str | Iterable[str] = "all",
    date: str = DEFAULT_DUMP_DATE,
    pageview_dates: int = DEFAULT_PAGEVIEW_DATES,
    hours_per_date: int = 1,
    seed: int = 0,
    pageviews_from: str | None = None,
    pageviews_to: str | None = None,
    base_url: str = DEFAULT_BASE_URL,
    pageviews_base_url: str | None = None,
    dump_path: str = DEFAULT_DUMP_PATH,
    connections: int = DEFAULT_CONNECTIONS,
    retries: int = 5,
    timeout: float = 60.0,
    progress: bool = True,
    file_deadline: float = DEFAULT_FILE_DEADLINE,
) -> dict:
    """Download the dumps of `languages` of `date` and page views of `pageview_dates` random dates.

    Parameters
    ----------
    out_dir : path
        Root of the local tree (see the module docstring); ``download.json`` records the run.
    languages : ``"all"``, ``"en,de"`` or list of str
        Wikipedia codes; ``"all"``: the package's table of Wikipedias.
    date : str
        Dump date ``YYYYMMDD`` (the paper: 20240501).
    pageview_dates, hours_per_date, seed, pageviews_from, pageviews_to :
        See [`pageview_hours`][metaclip2.metadata.download.pageview_hours]; the range defaults to the 365 days before `date`.
        ``pageview_dates=0`` fetches no page views.
    base_url : str
        Dump site or mirror with the same layout.
    pageviews_base_url : str, optional
        Page-view root (default ``<base_url>/other/pageviews``).
    dump_path : str
        A dump's path below `base_url` (see [`dump_tasks`][metaclip2.metadata.download.dump_tasks]).
    connections : int
        Parallel HTTP connections (the dump site allows 2 per address).
    retries, timeout : int, float
        Per-file retries after a network error (each resumes), socket timeout in seconds.
    progress : bool
        Byte progress bar with transfer rate (stderr).
    file_deadline : float
        Seconds one file may take, retries included (see [`download_files`][metaclip2.metadata.download.download_files]).

    Returns
    -------
    dict
        The content of ``download.json``: parameters, page-view hours, and one result per file.

    See Also
    --------
    - [`dump_tasks`][metaclip2.metadata.download.dump_tasks] : The dump tasks alone.
    - [`write_dump_ngrams`][metaclip2.metadata.ngrams.write_dump_ngrams] : Counts a downloaded dump.

    Examples
    --------
    From a local mirror, dumps only (``pageview_dates=0``):

    >>> import bz2, hashlib, json, pathlib, tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> mirror = pathlib.Path(tmp.name, "mirror")  # a local copy of the dump site's layout
    >>> dump = mirror / "enwiki" / "20240501" / "enwiki-20240501-pages-articles.xml.bz2"
    >>> dump.parent.mkdir(parents=True)
    >>> _ = dump.write_bytes(bz2.compress(b"<mediawiki>\\n</mediawiki>\\n"))
    >>> published = {dump.name: {"size": dump.stat().st_size, "sha1": hashlib.sha1(dump.read_bytes()).hexdigest()}}
    >>> _ = (dump.parent / "dumpstatus.json").write_text(json.dumps({"jobs": {"articlesdump": {"files": published}}}))
    >>> from metaclip2.metadata.download import download_sources
    >>> record = download_sources(pathlib.Path(tmp.name, "sources"), languages="en", pageview_dates=0,
    ...                           base_url=mirror.as_uri(), progress=False)
    >>> [(f["lang"], f["status"], f["verified"]) for f in record["files"]]
    [('en', 'downloaded', 'sha1')]
    >>> sorted(p.name for p in pathlib.Path(tmp.name, "sources").rglob("*") if p.is_file())
    ['download.json', 'enwiki-20240501-pages-articles.xml.bz2']
    >>> tmp.cleanup()
    """
    langs = resolve_languages(languages)
    day = _parse_date(date)
    hours: list[dt.datetime] = []
    if pageview_dates:
        end = pageviews_to if pageviews_to is not None else day - dt.timedelta(days=1)
        start = pageviews_from if pageviews_from is not None else _parse_date(end) - dt.timedelta(days=364)
        hours = pageview_hours(pageview_dates, seed, start, end, hours_per_date)
    _check_limits(connections, timeout, file_deadline)
    _check_dump_path(dump_path)
    out = Path(out_dir)
    tasks = dump_tasks(langs, day.strftime("%Y%m%d"), out, base_url, connections, timeout, dump_path)
    tasks += pageview_tasks(hours, out, pageviews_base_url or f"{base_url.rstrip('/')}/other/pageviews", timeout)
    results = download_files(tasks, connections, retries, timeout, progress, file_deadline)
    record = {
        "date": day.strftime("%Y%m%d"),
        "languages": langs,
        "base_url": base_url,
        "pageviews_base_url": pageviews_base_url,
        "dump_path": dump_path,
        "seed": seed,
        "pageview_hours": [f"{h:%Y%m%d-%H}" for h in hours],
        "files": [asdict(r) for r in results],
    }
    write_text(out / "download.json", json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return record
