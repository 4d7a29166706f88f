"""The run directory: its layout, ``run.json`` and the per-shard "done" markers.

::

    run.json                          parameters and metadata digests, one section per stage
    stage1/<shard>.index.bin          matched pairs: n, id, k, lang, ids, text (pipeline/io/index.py)
    stage1/<shard>.counts.bin         the shard's EntryCounts
    stage1/<shard>.images.bin         the shard's image ids, hashed (pipeline/stages/split.py)
    stage1/<shard>.stats.json         the shard's accounting — written last, the "done" marker
    stage2/counts.bin                 merged EntryCounts
    stage2/probabilities.bin          EntryProbabilities (what an OnlineSampler loads)
    stage2/thresholds.json            {"p", "t_en", "english", "t"} — written last
    stage2/split.index.bin            rows of the images found in several shards
    stage2/split.json                 its record (digests) — written after it
    stage3/<shard>.jsonl|.parquet     the curated subset
    stage3/<shard>.stats.json         the shard's sampling accounting — written last
    datacard.json                     see metaclip2.pipeline.run.datacard
    plots/                            see metaclip2.pipeline.report.plots
    run.lock                          the run's lock (empty while no whole-run command runs)
    metaclip2.log                     the command line's log (appended by every verb run here)

A section of ``run.json`` is recorded the first time its stage runs and checked on every
later run: a directory never mixes outputs made with other metadata, inputs or parameters.
A command checks every parameter against ``run.json`` ([`RunDir.check`][metaclip2.pipeline.run.rundir.RunDir.check]) before it
records anything ([`RunDir.claim`][metaclip2.pipeline.run.rundir.RunDir.claim]), so a refused command leaves the directory as it was.

One run per directory ([`RunDir.lock`][metaclip2.pipeline.run.rundir.RunDir.lock]): a whole-run command (``curate``, ``count``,
``thresholds``, ``sample`` over all shards) holds an exclusive ``flock`` on ``run.lock`` for
its whole length; the jobs of an array (``--shard-index``) run side by side by design and
share a lock, as does ``report``. A command that cannot get its lock fails at once, naming
the holder's pid and host. Only under the exclusive lock are the temporary files of killed
writers deleted, since no other writer can then be running.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import threading
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from metaclip2.core.atomic import make_directory, output_error, remove_temporaries, write_json
from metaclip2.core.jsonfile import read_json, seal, unseal
from metaclip2.core.errors import Metaclip2Error, MissingInputError, ParameterError, RunMismatchError

__all__ = ["RunDir", "RunBusyError", "RUN_FORMAT", "LOCK_NAME", "RUN_LOG", "load_json"]

RUN_FORMAT = "metaclip2-run/1"
LOCK_NAME = "run.lock"
#: The command line's log in a run directory (allowed, like the lock, before run.json).
RUN_LOG = "metaclip2.log"

log = logging.getLogger(__name__)


class RunBusyError(Metaclip2Error, RuntimeError):
    """Another process holds the run directory's lock (the message names its pid and host)."""


# Locks this process holds, by run directory: [fd, exclusive, depth]. flock locks belong to
# an open file, so a nested command (curate -> count) must reuse the outer one, not reopen.
_held: dict[str, list] = {}
_held_guard = threading.Lock()


class RunDir:
    """One curation run's directory.

    Parameters
    ----------
    path : path
        The directory (made absolute: tasks may run on other nodes or in other working
        directories).

    See Also
    --------
    - [`curate`][metaclip2.pipeline.run.api.curate] : All three stages and the datacard in one call.
    - [`fork_run`][metaclip2.pipeline.run.fork.fork_run] : Another stage 2 and 3 on the same stage 1.

    Examples
    --------
    >>> import json, os, tempfile
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> from metaclip2.pipeline.builds.demo import write_example_pool
    >>> _ = write_example_pool(d)  # metadata/ (en, de) and pool.jsonl: six images
    >>> from metaclip2.pipeline import RunDir, curate
    >>> _ = curate(f"{d}/metadata", f"{d}/pool.jsonl", out=f"{d}/run", t_en=2)
    >>> run = RunDir(f"{d}/run")
    >>> sorted(run.read())
    ['format', 'stage1', 'stage2', 'stage3']
    >>> run.read()["stage2"]
    {'english': 'keep', 'p': None, 't_en': 2}
    >>> run.probabilities.relative_to(run.path).as_posix()
    'stage2/probabilities.bin'
    >>> tmp.cleanup()
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).resolve()
        self.stage1 = self.path / "stage1"
        self.stage2 = self.path / "stage2"
        self.stage3 = self.path / "stage3"
        self.run_json = self.path / "run.json"
        self.counts = self.stage2 / "counts.bin"
        self.probabilities = self.stage2 / "probabilities.bin"
        self.thresholds = self.stage2 / "thresholds.json"
        self.datacard = self.path / "datacard.json"

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # -- run.json ----------------------------------------------------------------------------

    def read(self) -> dict[str, Any]:
        """``run.json``'s content; ``{"format": ...}`` for a new or empty directory.

        Raises
        ------
        RunMismatchError
            The directory holds other files but no run.json, or run.json is not ours.
        ParameterError
            The path is a file.
        """
        _check_writable_location(self.path)
        if self.run_json.exists():
            hint = "it records the run's parameters: restore it, or start again in a new directory"
            run = unseal(load_json(self.run_json, hint=hint), str(self.run_json), hint)
            if run.get("format") != RUN_FORMAT:
                raise RunMismatchError(f"{self.run_json} is not a metaclip2 run file")
            return run
        if self.path.exists() and any(p.name not in (LOCK_NAME, RUN_LOG) for p in self.path.iterdir()):
            raise RunMismatchError(f"{self.path} is not empty and holds no run.json: choose a new or empty directory")
        return {"format": RUN_FORMAT}

    def check(self, section: str, values: dict[str, Any], ignore: Sequence[str] = ()) -> dict[str, Any]:
        """Raise if run.json records `section` with other values; writes nothing.

        Returns
        -------
        dict
            run.json's content (``{"format": ...}`` for a new directory).

        Raises
        ------
        RunMismatchError
            run.json records other values; the message lists each difference (for metadata
            digests, the languages whose entry lists changed).
        """
        run = self.read()
        old = run.get(section)
        if old is None:
            return run
        diffs = [
            _difference(k, old.get(k), values.get(k))
            for k in sorted(set(old) | set(values))
            if k not in ignore and old.get(k) != values.get(k)
        ]
        if diffs:
            raise RunMismatchError(
                f"{self.path} holds a run made with other {section} settings ({'; '.join(diffs)}); "
                "outputs of different runs cannot be mixed: use another output directory (or delete this one)"
            )
        return run

    def claim(self, section: str, values: dict[str, Any], ignore: Sequence[str] = ()) -> dict[str, Any]:
        """Record `values` as run.json's `section`, or check that they equal what is recorded.

        Raises
        ------
        RunMismatchError
            run.json records other values; the message lists each difference.
        """
        run = self.check(section, values, ignore)
        if section not in run:
            run[section] = values
            write_json(self.run_json, seal(run))
        return run

    def update(self, section: str, values: dict[str, Any]) -> dict[str, Any]:
        """Record `values` as run.json's `section`, replacing what it recorded (a grown run's
        inputs: the caller has checked that only they changed)."""
        run = self.read()
        if run.get(section) != values:
            run[section] = values
            write_json(self.run_json, seal(run))
        return run

    def require(self, section: str, hint: str) -> dict[str, Any]:
        """run.json's `section`, or [`MissingInputError`][metaclip2.core.errors.MissingInputError] with `hint` (what to run first)."""
        run = self.read()
        if section not in run:
            raise MissingInputError(f"{self.path} has no {section} yet: {hint}")
        return run[section]

    # -- lock --------------------------------------------------------------------------------

    @property
    def lock_file(self) -> Path:
        return self.path / LOCK_NAME

    @contextlib.contextmanager
    def lock(self, exclusive: bool = True) -> Iterator["RunDir"]:
        """Hold the run's lock for the length of a ``with`` block (made if missing).

        Parameters
        ----------
        exclusive : bool
            True for a whole-run command (no other process may use the directory; temporary
            files of killed writers are deleted on entry, and again when the block ends without
            error: a task lost with its Ray worker or node and run again elsewhere left one);
            False for a job of an array or a report (other shared holders allowed, no exclusive one).

        Raises
        ------
        RunBusyError
            Another process holds a conflicting lock: raised at once, naming it.
        """
        key = str(self.path)
        with _held_guard:
            held = _held.get(key)
            if held is not None:
                if exclusive and not held[1]:
                    raise RunBusyError(f"{self.path}: this process holds a shared lock and cannot take an exclusive one")
                held[2] += 1
        if held is not None:  # nested in a command of this process that holds it already
            try:
                yield self
            finally:
                with _held_guard:
                    held[2] -= 1
            return
        import fcntl

        make_directory(self.path)
        try:
            fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise output_error(e, self.lock_file) from None
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                # e.g. Lustre without -o flock: run unlocked rather than not at all
                log.warning("%s: the file system does not support locks (%s); the run directory is not locked", self.path, e)
            else:
                holder = _holder(fd, self.lock_file)
                os.close(fd)
                raise RunBusyError(
                    f"{self.path} is in use by {holder}: wait for it to finish (or stop it), or use another output directory"
                ) from None
        try:
            # Who holds it, for the message of a refused command; a shared holder only clears
            # what a killed exclusive holder left (no exclusive holder can exist now).
            os.ftruncate(fd, 0)
            if exclusive:
                os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        except OSError:
            pass  # a read-only lock file still locks; the message will lack the pid
        with _held_guard:
            _held[key] = [fd, exclusive, 1]
        try:
            if exclusive:
                self.remove_temporaries()
            yield self
            if exclusive:
                # Every task has returned, so no writer of this run is left; a retried task's
                # first attempt, killed mid-write, left its temporary file (not on error: a
                # cancelled Ray task may still be writing).
                self.remove_temporaries()
        finally:
            with _held_guard:
                del _held[key]
            try:
                if exclusive:
                    os.ftruncate(fd, 0)  # an idle run's lock file is empty: equal runs, equal files
            except OSError:
                pass
            finally:
                os.close(fd)  # releases the flock

    def remove_temporaries(self) -> int:
        """Delete killed writers' temporary files in the run directory, its stage folders and plots.

        Only safe while no writer runs: [`lock`][metaclip2.pipeline.run.rundir.RunDir.lock] calls it under the exclusive lock.
        """
        return sum(remove_temporaries(d) for d in (self.path, self.stage1, self.stage2, self.stage3, self.path / "plots"))


def load_json(path: str | os.PathLike, hint: str = "delete it and run the stage that writes it again") -> Any:
    """A JSON file's content; a damaged or unreadable file raises one error naming it.

    The file is read bounded ([`read_json`][metaclip2.core.jsonfile.read_json]): a regular file
    only, of limited size and nesting depth.

    Raises
    ------
    MissingInputError
        The file does not exist.
    DataError
        It is not UTF-8 JSON (e.g. cut short), nested too deep, too large, not a regular file
        (a directory, pipe or device), or cannot be read; `hint` says what to do.

    See Also
    --------
    - [`write_json`][metaclip2.core.atomic.write_json] : Writes JSON atomically, so that a reader never sees half a file.

    Examples
    --------
    >>> import tempfile
    >>> from metaclip2.core.atomic import write_json
    >>> from metaclip2.pipeline.run.rundir import load_json
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> _ = write_json(f"{d}/thresholds.json", {"t": {"de": 1, "en": 2}})
    >>> load_json(f"{d}/thresholds.json")
    {'t': {'de': 1, 'en': 2}}
    >>> with open(f"{d}/cut.json", "w") as f:
    ...     _ = f.write('{"t": {"de": 1,')
    >>> load_json(f"{d}/cut.json", hint="run stage 2 again")
    Traceback (most recent call last):
    ...
    metaclip2.core.errors.DataError: .../cut.json is damaged (Expecting property name ...): run stage 2 again
    >>> load_json(f"{d}/missing.json")
    Traceback (most recent call last):
    ...
    metaclip2.core.errors.MissingInputError: .../missing.json does not exist
    >>> tmp.cleanup()
    """
    return read_json(Path(path), hint=hint)


def _check_writable_location(path: Path) -> None:
    """Refuse, before anything is written, a run directory that is a file, lies in one, or cannot be written."""
    if path.exists():
        if not path.is_dir():
            raise ParameterError(f"run directory {path} is a file: choose a new or empty directory")
        return
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ParameterError(f"run directory {path} lies inside {parent}, which is a file: choose another directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        from metaclip2.core.errors import OutputError

        raise OutputError(f"cannot write {path}: {parent} is read-only or not writable by you; choose another directory")


def _holder(fd: int, path: Path) -> str:
    """Who holds the lock on `fd`: what the holder wrote, else (Linux) the pids in /proc/locks."""
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    if text:
        return f"another metaclip2 run ({text}; lock file {path})"
    pids = _lock_pids(fd)
    if pids:
        return f"metaclip2 process(es) with a shared lock, e.g. per-shard jobs or a report (pid {', '.join(map(str, pids))})"
    return f"another metaclip2 process (lock file {path})"


def _lock_pids(fd: int) -> list[int]:
    st = os.fstat(fd)
    dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    pids = []
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            for line in f:
                fields = line.split()
                if "->" not in fields and len(fields) >= 6 and fields[5] == dev and fields[4].isdigit():
                    pids.append(int(fields[4]))
    except OSError:
        return []
    return sorted(set(pids))


def _difference(key: str, old: Any, new: Any) -> str:
    """One difference between run.json and now, for a refusal message (for a mapping such as the
    metadata digests: which keys (languages) changed, were added or removed)."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        parts = [
            f"{', '.join(map(str, keys))} {what}"
            for keys, what in (
                (sorted(k for k in set(old) & set(new) if old[k] != new[k]), "changed"),
                (sorted(set(new) - set(old)), "added"),
                (sorted(set(old) - set(new)), "removed"),
            )
            if keys
        ]
        return f"{key}: {'; '.join(parts)}"
    return f"{key}: {_show(old)} in run.json, {_show(new)} now"


def _show(v: Any) -> str:
    s = json.dumps(v, ensure_ascii=False, sort_keys=True)
    return s if len(s) <= 80 else s[:77] + "..."
