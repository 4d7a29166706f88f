"""Download the metadata sources: Wikipedia ``pages-articles`` dumps and hourly page-view files.

Files land in a local copy of the dump site's layout, so a tree downloaded here, a mirror
already on a shared filesystem and the site itself all look the same to
:func:`metaclip2.metadata.worldwide.build_all`::

    <out>/<code>wiki/<date>/<code>wiki-<date>-pages-articles.xml.bz2
    <out>/other/pageviews/<YYYY>/<YYYY-MM>/pageviews-<YYYYMMDD>-<HH>0000.gz

Each file is verified against the checksums the dump site publishes: a dump against its
``dumpstatus.json`` (sha1, md5, size), else ``<wiki>-<date>-sha1sums.txt`` / ``md5sums.txt``;
a page-view file against its month's ``md5sums.txt`` / ``sha1sums.txt``. A file is written as
``<name>.part`` and renamed only once complete and verified, so an existing final file is a
complete one and is skipped; a ``.part`` left by an interrupted run is resumed with an HTTP
``Range`` request. Only the standard library's ``urllib`` is used.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import json
import os
import random
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from metaclip2.core.errors import DataError, ParameterError
from metaclip2.core.atomic import write_text

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_DUMP_PATH",
    "DEFAULT_DUMP_DATE",
    "DEFAULT_PAGEVIEW_DATES",
    "DEFAULT_CONNECTIONS",
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
_CHUNK = 1 << 20
_HASHES = ("sha1", "md5")


class DownloadError(DataError):
    """A checksum file or listing could not be fetched (the message names the URL and what to do).

    Per-file failures (missing, checksum mismatch, network) are not raised: they are reported
    in each :class:`FileResult` so that one bad file does not stop the others.
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
    """Outcome of one :class:`FileTask`.

    ``status`` is ``"downloaded"``, ``"skipped"`` (already complete), ``"missing"`` (the server
    has no such file), ``"checksum_mismatch"`` or ``"error"``; ``verified`` names the hash that
    matched (None: nothing was published to check against).

    See Also
    --------
    - [`download_files`][metaclip2.metadata.download.download_files] : Returns one per task.

    Examples
    --------
    >>> from metaclip2.metadata.download import FileTask, download_files
    >>> import hashlib, pathlib, tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> served = pathlib.Path(tmp.name, "pageviews-20240105-020000.gz")  # stands in for a server's file
    >>> _ = served.write_bytes(b"en Dog 3 0")
    >>> task = FileTask(url=served.as_uri(), dest=str(pathlib.Path(tmp.name, "sources", served.name)),
    ...                 kind="pageviews", checksums={"md5": hashlib.md5(b"en Dog 3 0").hexdigest()})
    >>> result, = download_files([task], progress=False)
    >>> result.status, result.bytes, result.verified
    ('downloaded', 10, 'md5')
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
        Inclusive range (``YYYYMMDD``); default the 365 days before :data:`DEFAULT_DUMP_DATE`.
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
# HTTP


def _open(url: str, offset: int = 0, timeout: float = 60.0):
    headers = {"User-Agent": _user_agent()}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def _fetch_small(url: str, timeout: float = 60.0, retries: int = 3) -> bytes | None:
    """Body of a small file, or None on 404."""
    for attempt in range(retries + 1):
        try:
            with _open(url, timeout=timeout) as r:
                return r.read()
        except urllib.error.HTTPError as e:
            if e.code in (404, 410):
                return None
            err: Exception = e
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            err = e
        if attempt < retries:
            time.sleep(min(2**attempt, 10) * 0.5)
    raise DownloadError(f"{url}: {err}; check --base-url and the network, then re-run")


def _parse_sums(text: str) -> dict[str, str]:
    """``<hex>  <name>`` lines -> name -> hex."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            out[parts[1].lstrip("*")] = parts[0].lower()
    return out


def _hash_name(hexdigest: str) -> str:
    return {40: "sha1", 32: "md5"}.get(len(hexdigest), "")


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
        try:
            jobs = json.loads(status.decode("utf-8")).get("jobs", {})
        except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            jobs = {}
        for job in jobs.values():
            info = (job.get("files") or {}).get(name)
            if info:
                task.size = int(info["size"]) if info.get("size") is not None else None
                task.checksums = {h: info[h].lower() for h in _HASHES if info.get(h)}
                break
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


class _Interrupted(Exception):
    pass


def _file_digest(path: Path, alg: str) -> str:
    h = hashlib.new(alg)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _verify(path: Path, task: FileTask) -> tuple[bool, str | None]:
    for alg in _HASHES:
        if alg in task.checksums:
            return _file_digest(path, alg) == task.checksums[alg], alg
    return True, None


def _transfer(task: FileTask, part: Path, timeout: float, bar) -> tuple[int, int]:
    """Append the rest of the file to `part`; returns (bytes fetched, offset resumed from).

    Raises `_Interrupted` when the connection ends early, HTTPError for HTTP errors.
    """
    offset = part.stat().st_size if part.exists() else 0
    try:
        r = _open(task.url, offset, timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:
            return 0, offset  # already whole: the checksum decides
        raise
    with r:
        if offset and r.status != 206:
            offset = 0  # the server ignored Range: start over
        if offset and bar is not None:
            bar.update(offset)
        total = r.headers.get("Content-Length")
        expected = offset + int(total) if total is not None else task.size
        got = 0
        with open(part, "ab" if offset else "wb") as f:
            try:
                while chunk := r.read(_CHUNK):
                    f.write(chunk)
                    got += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
            except (http.client.IncompleteRead, ConnectionError, socket.timeout, OSError) as e:
                raise _Interrupted(str(e) or type(e).__name__) from None
        if expected is not None and offset + got < expected:
            raise _Interrupted(f"connection closed after {offset + got} of {expected} bytes")
    return got, offset


def _download_one(task: FileTask, retries: int, timeout: float, bar) -> FileResult:
    dest = Path(task.dest)
    res = FileResult(task.url, task.dest, task.kind, task.lang, status="error")
    if dest.exists() and (task.size is None or dest.stat().st_size == task.size):
        # Only a verified file is ever renamed to its final name.
        res.status, res.bytes = "skipped", dest.stat().st_size
        if bar is not None:
            bar.update(res.bytes)
        return res
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    fresh_retry = True  # one restart from zero after a checksum mismatch (a bad earlier resume)
    attempt = 0
    first_offset = None
    while True:
        try:
            got, offset = _transfer(task, part, timeout, bar)
            first_offset = offset if first_offset is None else first_offset
            res.bytes += got
        except urllib.error.HTTPError as e:
            if e.code in (404, 410):
                res.status = "missing"
                res.message = (f"HTTP {e.code}: not on the server. dumps.wikimedia.org keeps only the last few dump dates; "
                               "for an older --date use a mirror or archive that keeps it (--base-url, --dump-path)")  # fmt: skip
                return res
            err = f"HTTP {e.code}"
        except _Interrupted as e:
            err = f"interrupted: {e}"
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            err = str(e)
        else:
            ok, alg = _verify(part, task)
            if ok:
                os.replace(part, dest)
                res.status, res.verified, res.resumed_from = "downloaded", alg, first_offset or 0
                return res
            part.unlink()
            if fresh_retry:
                fresh_retry = False
                continue
            res.status = "checksum_mismatch"
            res.message = f"{alg} of the downloaded file differs from the published one twice; file removed, re-run later or try another --base-url"
            return res
        attempt += 1
        if attempt > retries:
            res.message = f"{err} (after {retries} retries; the .part file is kept and a re-run resumes it)"
            return res
        time.sleep(min(2**attempt, 30) * 0.25)


def download_files(
    tasks: Sequence[FileTask],
    connections: int = DEFAULT_CONNECTIONS,
    retries: int = 5,
    timeout: float = 60.0,
    progress: bool = True,
) -> list[FileResult]:
    """Fetch every task, `connections` at a time, resuming, verifying and skipping complete files.

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
    >>> import hashlib, pathlib, tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> served = pathlib.Path(tmp.name, "pageviews-20240105-020000.gz")  # stands in for a server's file
    >>> _ = served.write_bytes(b"en Dog 3 0")
    >>> task = FileTask(url=served.as_uri(), dest=str(pathlib.Path(tmp.name, "sources", served.name)),
    ...                 kind="pageviews", checksums={"md5": hashlib.md5(b"en Dog 3 0").hexdigest()})
    >>> [(r.status, r.verified) for r in download_files([task], progress=False)]
    [('downloaded', 'md5')]
    >>> [(r.status, r.verified) for r in download_files([task], progress=False)]
    [('skipped', None)]
    >>> tmp.cleanup()
    """
    if connections < 1:
        raise ParameterError(f"connections must be at least 1, got {connections}")
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
        r = _download_one(task, retries, timeout, bar)
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
        See :func:`pageview_hours`; the range defaults to the 365 days before `date`.
        ``pageview_dates=0`` fetches no page views.
    base_url : str
        Dump site or mirror with the same layout.
    pageviews_base_url : str, optional
        Page-view root (default ``<base_url>/other/pageviews``).
    dump_path : str
        A dump's path below `base_url` (see :func:`dump_tasks`).
    connections : int
        Parallel HTTP connections (the dump site allows 2 per address).
    retries, timeout : int, float
        Per-file retries after a network error (each resumes), socket timeout in seconds.
    progress : bool
        Byte progress bar with transfer rate (stderr).

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
    if connections < 1:
        raise ParameterError(f"connections must be at least 1, got {connections}")
    _check_dump_path(dump_path)
    out = Path(out_dir)
    tasks = dump_tasks(langs, day.strftime("%Y%m%d"), out, base_url, connections, timeout, dump_path)
    tasks += pageview_tasks(hours, out, pageviews_base_url or f"{base_url.rstrip('/')}/other/pageviews", timeout)
    results = download_files(tasks, connections, retries, timeout, progress)
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
