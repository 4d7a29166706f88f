"""Logging for the command line: one ``metaclip2`` logger hierarchy, on stderr and in the run directory.

Library modules log through ``logging.getLogger(__name__)`` (all under ``metaclip2``) and never
configure handlers; the command does, once per process ([`setup_logging`][metaclip2.cli.logs.setup_logging]): messages on
stderr at ``--log-level`` (``-q``: warnings and errors only), and, for the verbs that write a
run directory, every message at INFO or finer appended to ``<run>/metaclip2.log``
([`attach_run_log`][metaclip2.cli.logs.attach_run_log]), with timestamps, so a Slurm job's history stays with its run.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from metaclip2.pipeline.run.rundir import RUN_LOG

__all__ = ["LOG_LEVELS", "RUN_LOG", "setup_logging", "attach_run_log", "to_run_log"]

LOG_LEVELS = ("debug", "info", "warning", "error")

_ROOT = "metaclip2"
_HANDLER_ATTR = "_metaclip2_cli"


class _ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        if record.exc_info:  # only a debug record carries one: the traceback behind an error line
            msg = f"{msg}\n{self.formatException(record.exc_info)}"
        if record.levelno >= logging.WARNING:
            return f"metaclip2: {record.levelname.lower()}: {msg}"
        return msg


def setup_logging(level: str | None = None, quiet: bool = False) -> logging.Logger:
    """Configure the ``metaclip2`` logger for a command-line run (replacing an earlier setup).

    Parameters
    ----------
    level : {"debug", "info", "warning", "error"}, optional
        Threshold of the messages on stderr; default ``info`` (``warning`` with `quiet`).
    quiet : bool
        ``-q``: warnings and errors only (an explicit `level` wins).
    """
    logger = logging.getLogger(_ROOT)
    for h in list(logger.handlers):
        if getattr(h, _HANDLER_ATTR, False):
            logger.removeHandler(h)
            h.close()
    console_level = getattr(logging, (level or ("warning" if quiet else "info")).upper())
    h = logging.StreamHandler(sys.stderr)
    h.setFormatter(_ConsoleFormatter())
    h.setLevel(console_level)
    setattr(h, _HANDLER_ATTR, True)
    logger.addHandler(h)
    logger.setLevel(min(console_level, logging.INFO))
    logger.propagate = False
    return logger


class _RunLogHandler(logging.Handler):
    """Appends to ``<run>/metaclip2.log`` once the run exists (has run.json) and the command logs
    something; the command line and earlier records are held till then.

    So a command refused before it starts (bad options, a foreign directory, a missing extra)
    leaves no directory and no file behind.
    """

    def __init__(self, run_dir: Path):
        super().__init__()
        self.run_dir = run_dir
        self.path = run_dir / RUN_LOG
        self._held: list[str] = []
        self._stream = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = self.format(record) + "\n"
            if self._stream is None:
                if getattr(record, "header", False) or not (self.run_dir / "run.json").is_file():
                    self._held.append(msg)
                    return
                self._stream = open(self.path, "a", encoding="utf-8")
                self._stream.write("".join(self._held))
                self._held = []
            self._stream.write(msg)
            self._stream.flush()
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        super().close()


def attach_run_log(run_dir: str | os.PathLike, create: bool = True) -> Path | None:
    """Append the ``metaclip2`` log to ``<run_dir>/metaclip2.log`` from now on.

    The file is opened only once the run's ``run.json`` exists (earlier records are held till
    then), so a refused command writes nothing. Nothing is attached (None returned) where the
    run will refuse to go (a file, or a directory holding other things than a run), nor, unless
    `create`, where there is no run yet.
    """
    path = Path(run_dir).resolve()
    if not create and not (path / "run.json").is_file():
        return None
    if path.exists():
        if not path.is_dir():
            return None
        names = {p.name for p in path.iterdir()}
        if names - {RUN_LOG} and "run.json" not in names:
            return None
    logger = logging.getLogger(_ROOT)
    for h in logger.handlers:
        if isinstance(h, _RunLogHandler) and h.path == path / RUN_LOG:
            return h.path
    fh = _RunLogHandler(path)
    fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    fh.setLevel(min(logger.level or logging.INFO, logging.INFO))
    setattr(fh, _HANDLER_ATTR, True)
    logger.addHandler(fh)
    # the command itself, in the file only
    fh.handle(logger.makeRecord(logger.name, logging.INFO, __file__, 0, "metaclip2 %s (pid %d)",
                                (" ".join(sys.argv[1:]) or "(API)", os.getpid()), None, extra={"header": True}))  # fmt: skip
    return fh.path


def to_run_log(level: int, msg: str) -> None:
    """Write `msg` to the attached run logs only (what the console already shows another way)."""
    logger = logging.getLogger(_ROOT)
    record = logger.makeRecord(logger.name, level, __file__, 0, "%s", (msg,), None)
    for h in logger.handlers:
        if isinstance(h, _RunLogHandler) and h._stream is not None:  # a refused command leaves no file
            h.handle(record)
