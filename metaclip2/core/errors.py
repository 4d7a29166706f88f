"""The package's exceptions: one root, so callers (and the CLI) can catch everything we raise on purpose.

Every exception class metaclip2 defines derives from [`Metaclip2Error`][metaclip2.core.errors.Metaclip2Error], and also from
the builtin it refines (``ValueError``, ``ImportError``, ``LookupError``), so code written
against the builtins keeps working. Messages name the bad input and what to do about it.
"""

from __future__ import annotations

__all__ = ["Metaclip2Error", "MissingExtraError", "missing_extra"]


class Metaclip2Error(Exception):
    """Root of every error metaclip2 raises on purpose."""


class MissingExtraError(Metaclip2Error, ImportError):
    """An optional dependency is not installed; the message names the ``pip install`` that adds it.

    Attributes
    ----------
    extra : str
        The extra to install (``pip install 'metaclip2[<extra>]'``).
    """

    def __init__(self, message: str, extra: str | None = None):
        super().__init__(message)
        self.extra = extra


def missing_extra(cls: type[MissingExtraError], what: str, extra: str, cause: BaseException | None = None) -> MissingExtraError:
    """An instance of `cls` whose message says what needs `extra` and how to install it.

    Examples
    --------
    >>> str(missing_extra(MissingExtraError, "Parquet input", "parquet"))
    "Parquet input needs the 'parquet' extra: pip install 'metaclip2[parquet]'"
    """
    msg = f"{what} needs the {extra!r} extra: pip install 'metaclip2[{extra}]'"
    if cause is not None:
        msg += f" ({cause})"
    return cls(msg, extra=extra)


class ParameterError(Metaclip2Error, ValueError):
    """A parameter is out of its range or of the wrong kind (a usage error: fix the call)."""


class DataError(Metaclip2Error, ValueError):
    """A file or input is damaged, of the wrong kind, or holds nothing to work on."""


class MissingInputError(Metaclip2Error, FileNotFoundError):
    """A file, directory or earlier stage that the call needs does not exist."""


class UnknownLanguageError(Metaclip2Error, KeyError):
    """A language code or label that the tables or the metadata do not know."""

    def __str__(self) -> str:  # KeyError quotes its message; ours is a sentence
        return str(self.args[0]) if self.args else ""


class MetadataError(DataError):
    """An entry list or a metadata file is not usable as given."""


class MatcherMismatchError(MetadataError):
    """A saved matcher, counts or probabilities belong to another entry list."""


class MatcherFileError(MetadataError):
    """A ``.matcher`` file is not a matcher, is damaged or truncated, or uses a format that is never loaded."""


class RunMismatchError(Metaclip2Error, ValueError):
    """The run directory holds outputs made with other metadata, inputs or parameters."""


class OutputError(Metaclip2Error, OSError):
    """A file or directory could not be written; the message names the path and the cause."""
