"""Fault injection for the resume tests: SIGKILL a process just before it commits a chosen file.

Put this folder on PYTHONPATH of a subprocess and set ``METACLIP2_KILL_BEFORE_COMMIT`` to
``PATTERN[:N]``: the N-th time (default 1st) this process is about to rename a finished
temporary file into a path matching the glob ``PATTERN`` (relative to the run directory, e.g.
``stage1/*.stats.json``), it kills itself. The temporary file is left behind, as a real
crash would leave it. Lives with the tests, so the package carries no test hooks.
"""

import fnmatch
import os
import signal

_SPEC = os.environ.get("METACLIP2_KILL_BEFORE_COMMIT")

if _SPEC:
    from metaclip2.core import atomic

    _pattern, _, _nth = _SPEC.rpartition(":")
    if not _nth.isdigit():
        _pattern, _nth = _SPEC, "1"
    _seen = [0]
    _commit = atomic.AtomicFile.commit

    def _commit_or_die(self):
        target = os.path.join(self.path.parent.name, self.path.name)
        if fnmatch.fnmatch(target, _pattern):
            _seen[0] += 1
            if _seen[0] == int(_nth):
                self._f.flush()
                os.kill(os.getpid(), signal.SIGKILL)
        return _commit(self)

    atomic.AtomicFile.commit = _commit_or_die
