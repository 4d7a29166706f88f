"""A Ray worker node lost mid-run (issue 21): the curation still ends with the bytes of an uninterrupted run.

A real two-node Ray cluster on this machine: a head and a worker node, each a ``ray start
--block`` process in its own session and temporary directory, 1 CPU each. The driver is
``metaclip2 curate --executor ray --ray-address HEAD`` in a subprocess, as a user runs it
(so every wait is bounded, and a hung run is killed, not the test). The test makes the loss
land mid-task, whatever the machine's speed: it holds the head's tasks of the stage
(``SIGSTOP``) until the worker node runs one, freezes that one at a moment it has the
stage's file open (its input shard in stage 1, its output's temporary file in stage 3), lets
the head go on, waits until the head has finished a shard of that stage, then ``SIGKILL``s every process of the worker node: the
node is gone, as if its machine died. Ray runs the lost task again on the head; the run directory must then equal,
file for file, that of an uninterrupted run (local executor, same command; only
``metaclip2.log``, with its timestamps, is left out of the comparison). A last test kills
the driver itself mid-stage-1 (the whole run dies) and runs the same command again.

The processes are found through ``/proc`` (Linux only); every one the test started is
killed by its id at the end, even on failure (never by name: other Ray instances may run
on the machine).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

import metaclip2

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds a Ray node's processes through /proc (Linux only)"),
]

# Before ray is imported: no usage-stats reporting, no auth token written to $HOME.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

pytest.importorskip("ray", reason="Ray is not installed (pip install 'metaclip2[ray]')")

from test_ray import _make_pool, _tree  # noqa: E402  (the same generated pool as the other Ray tests)

WAIT = 120  # seconds: the bound of every wait (node start, a shard finishing, a process exiting)
N_SHARDS = 6
T_EN = 400


# -- processes of one node, through /proc -----------------------------------------------------


def _processes() -> dict[int, tuple[int, int]]:
    """``pid -> (parent pid, start time)`` of every live process of this machine (zombies left
    out; the start time tells a reused pid apart)."""
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except OSError:  # exited meanwhile
                continue
            fields = stat[stat.rindex(")") + 2 :].split()  # from field 3 (state) on
            if fields[0] not in "ZX":
                out[int(d)] = (int(fields[1]), int(fields[19]))
    return out


def _open_files(pid: int) -> list[str]:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return []
    paths = []
    for fd in fds:
        try:
            paths.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue
    return paths


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Node:
    """One ``ray start --block`` process (and the Ray processes it starts), in its own session."""

    def __init__(self, name: str, args: list[str], root: Path):
        self.name = name
        self.temp_dir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=root))
        self.log = self.temp_dir / "ray-start.log"
        # The Ray workers import the metaclip2 under test, wherever it is.
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(metaclip2.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]))
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ray.scripts.scripts", "start", "--block", "--num-cpus=1",
                 f"--object-store-memory={80 << 20}", "--disable-usage-stats", f"--temp-dir={self.temp_dir}", *args],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        # pid -> start time: ours, and only these (None if it is gone already: nothing to kill)
        self.known = {self.proc.pid: _processes().get(self.proc.pid, (0, None))[1]}

    def wait_started(self) -> None:
        deadline = time.monotonic() + WAIT
        while b"Ray runtime started." not in self.log.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Ray {self.name} node did not start:\n{self.log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)

    def processes(self) -> list[int]:
        """The node's live processes: the ``ray start`` process and its descendants, remembered
        (with their start times) so that `kill` reaches those reparented meanwhile, and never
        a process that merely got one of their pids again."""
        table = _processes()
        live = [p for p, start in self.known.items() if p in table and table[p][1] == start]
        todo = list(live)
        while todo:
            parent = todo.pop()
            for pid, (ppid, start) in table.items():
                if ppid == parent and pid not in self.known:
                    self.known[pid] = start
                    live.append(pid)
                    todo.append(pid)
        return live

    def kill(self) -> None:
        """``SIGKILL`` every process of the node, as if its machine died; bounded wait for them to go."""
        deadline = time.monotonic() + WAIT
        while alive := self.processes():
            for pid in alive:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if time.monotonic() > deadline:
                pytest.fail(f"processes of the Ray {self.name} node survive SIGKILL: {alive}")
            time.sleep(0.1)
        self.proc.wait(timeout=WAIT)


# Run as a short-lived driver: is the node whose files live under argv[2] alive in the cluster?
_WAIT_FOR_NODE = """
import sys, time, ray
ray.init(address=sys.argv[1], log_to_driver=False, logging_level="ERROR")
deadline = time.monotonic() + float(sys.argv[3])
while not any(n["Alive"] and n["ObjectStoreSocketName"].startswith(sys.argv[2]) for n in ray.nodes()):
    if time.monotonic() > deadline:
        sys.exit(f"no live node under {sys.argv[2]}: {ray.nodes()}")
    time.sleep(0.2)
"""


class _Cluster:
    def __init__(self, root: Path):
        self.root = root
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.nodes: list[_Node] = []

    def start_head(self) -> None:
        head = _Node("head", ["--head", f"--port={self.port}", "--include-dashboard=false", "--node-ip-address=127.0.0.1"], self.root)
        self.nodes.append(head)
        head.wait_started()
        self.head = head

    def add_worker(self) -> _Node:
        worker = _Node("worker", [f"--address={self.address}", "--node-ip-address=127.0.0.1"], self.root)
        self.nodes.append(worker)
        worker.wait_started()
        # Registered with the head (tasks may go there), asked through Ray's public API.
        check = subprocess.run([sys.executable, "-c", _WAIT_FOR_NODE, self.address, str(worker.temp_dir), str(WAIT)],
                               capture_output=True, text=True, timeout=2 * WAIT)  # fmt: skip
        assert check.returncode == 0, check.stderr[-3000:]
        return worker

    def retried_tasks(self) -> dict[tuple[str, str], float]:
        """``(task id, attempt) -> when`` (epoch s) of every task the drivers' Ray core resubmitted so far (from its log)."""
        found = {}
        for log in self.head.temp_dir.glob("session_*/logs/python-core-driver-*.log"):
            for when, task, attempt in re.findall(r"^\[([\d-]+ [\d:,]+) .*Will resubmit task .*?task_id=(\w+).*?attempt_number=(\d+)",
                                                  log.read_text(errors="replace"), re.M):  # fmt: skip
                found[task, attempt] = time.mktime(time.strptime(when[:19], "%Y-%m-%d %H:%M:%S")) + int(when[20:]) / 1000
        return found

    def close(self) -> None:
        for node in reversed(self.nodes):
            node.kill()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The head node, up for the module; each test adds (and loses) its own worker node."""
    # A short root: Ray's socket paths live under it and are limited to ~100 characters.
    root = Path(tempfile.mkdtemp(prefix="mc2-ray-"))
    c = _Cluster(root)
    try:
        c.start_head()
        yield c
    finally:
        c.close()
        shutil.rmtree(root, ignore_errors=True)


def _curate_command(root: Path, *executor: str) -> list[str]:
    """`metaclip2 curate` of the module's pool into ``root/run``, as a user types it."""
    return [sys.executable, "-m", "metaclip2", "curate", "--metadata", str(root / "metadata"), "--input",
            str(root / "pool" / "*.jsonl"), "--out", str(root / "run"), "--t-en", str(T_EN), "--seed", "3", "-q",
            *executor]  # fmt: skip


class _Command:
    """The command in a subprocess (the driver), with a bounded wait."""

    def __init__(self, argv: list[str], log: Path):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(metaclip2.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]))
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)

    def wait(self) -> int:
        try:
            return self.proc.wait(timeout=4 * WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=WAIT)
            pytest.fail(f"the command did not end within {4 * WAIT} s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@pytest.fixture(scope="module")
def pool_and_reference(tmp_path_factory):
    """A 6-shard pool and the files of an uninterrupted curation of it (local executor).

    Every run of the module writes to the same ``run`` path (stats files record paths) and
    is then moved aside.
    """
    root = tmp_path_factory.mktemp("node-loss")
    _make_pool(root, n_shards=N_SHARDS, images_per_shard=5_000, seed=11)
    cmd = _Command(_curate_command(root, "--workers", "1"), root / "reference.log")
    assert cmd.wait() == 0, cmd.output()
    reference = _tree(root / "run")
    (root / "run").rename(root / "reference")
    return root, reference


def _title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return ""


class _Saboteur(threading.Thread):
    """Freeze a task of a stage on the worker node mid-file, then kill the node once the head has finished a shard of it.

    A Ray worker process is titled ``ray::_call`` while it runs one of the executor's tasks
    (``ray::IDLE`` between tasks); stage 2 runs on the driver, so a task running before
    ``stage2/probabilities.bin`` exists is stage 1's, after it stage 3's. Until a worker-node
    task is caught, the head's tasks are held stopped too, so that the driver has to send the
    next tasks to the worker node however fast the head would have been. The worker-node task
    is stopped at once, then let run on in small steps until it has the stage's file open (its
    input shard in stage 1, its output's temporary file in stage 3) and stopped there; the
    head's tasks then go on.
    """

    def __init__(self, head: _Node, node: _Node, run: Path, stage: str, target: Path):
        super().__init__(daemon=True)
        self.head, self.node, self.run_dir, self.stage, self.target = head, node, run, stage, str(target)
        self.held: set[int] = set()  # head processes stopped while a worker-node task is awaited
        self.frozen: int | None = None  # pid of the worker node's frozen task process
        self.open_file: str | None = None  # the stage's file it has open
        self.killed_at = 0.0  # wall clock, to compare with Ray's log
        self.stop = threading.Event()

    def in_stage(self) -> bool:
        return (self.run_dir / "stage2" / "probabilities.bin").exists() == (self.stage == "stage3")

    def _target_open(self, pid: int) -> str | None:
        return next((f for f in _open_files(pid) if f.startswith(self.target)), None)

    def _stop_mid_file(self, pid: int, deadline: float) -> bool:
        """`pid` is stopped in a task: step it on until it has the target file open (False: the task ended first)."""
        while time.monotonic() < deadline and not self.stop.is_set():
            if self._target_open(pid):
                self.open_file = self._target_open(pid)
                return True
            os.kill(pid, signal.SIGCONT)
            while not self._target_open(pid):
                if not _title(pid).startswith("ray::_call") or time.monotonic() > deadline:
                    return False  # the task finished (or the process is gone) meanwhile
            os.kill(pid, signal.SIGSTOP)
        return False

    def _release_head(self) -> None:
        for pid in self.held:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.held.clear()

    def run(self) -> None:
        try:
            self._run()
        finally:
            self._release_head()  # never leave the head stopped, whatever happened

    def _run(self) -> None:
        deadline = time.monotonic() + WAIT
        heads, pids, listed = [], [], 0.0
        while self.frozen is None and not self.stop.is_set() and time.monotonic() < deadline:
            if time.monotonic() - listed > 0.2:  # the process trees, now and then; titles at every turn
                heads, pids, listed = self.head.processes(), self.node.processes(), time.monotonic()
            if self.in_stage():
                for pid in heads:
                    if pid not in self.held and _title(pid).startswith("ray::_call"):
                        os.kill(pid, signal.SIGSTOP)
                        self.held.add(pid)
                for pid in pids:
                    if _title(pid).startswith("ray::_call"):
                        os.kill(pid, signal.SIGSTOP)
                        if self._stop_mid_file(pid, deadline):
                            self.frozen = pid  # for as long as the node lives
                        break
            time.sleep(0.001)
        self._release_head()
        while self.frozen is not None and not self.stop.is_set() and time.monotonic() < deadline:
            if any((self.run_dir / self.stage).glob("*.stats.json")):  # the head has finished a shard of the stage
                self.killed_at = time.time()
                self.node.kill()
                return
            time.sleep(0.02)


@pytest.mark.parametrize("stage", ["stage1", "stage3"])
def test_worker_node_lost_mid_stage_is_retried_and_outputs_equal(cluster, pool_and_reference, stage):
    """The worker node dies mid-task in stage 1 (or 3); the same command completes with the reference's bytes."""
    root, reference = pool_and_reference
    run = root / "run"
    worker = cluster.add_worker()
    saboteur = _Saboteur(cluster.head, worker, run, stage, target=root / "pool" if stage == "stage1" else run / "stage3")
    retried_before = cluster.retried_tasks()
    started = time.monotonic()
    cmd = _Command(_curate_command(root, "--executor", "ray", "--ray-address", cluster.address), root / f"{stage}.log")
    saboteur.start()
    try:
        status = cmd.wait()
    finally:
        saboteur.stop.set()
        saboteur.join(timeout=WAIT)
        worker.kill()
    retried = {k: t for k, t in cluster.retried_tasks().items() if k not in retried_before}
    delays = ", ".join(f"{t - saboteur.killed_at:.1f}" for t in sorted(retried.values()))
    print(f"\n{stage}: worker node killed while its task was frozen with {saboteur.open_file} open; the command "
          f"took {time.monotonic() - started:.1f} s; Ray retried {len(retried)} task(s), {delays} s after the kill")  # fmt: skip
    assert saboteur.frozen is not None and saboteur.killed_at, f"the worker node never ran a task of {stage}"
    # No re-run needed: the frozen task died with its node, yet its shard is done (the trees
    # below are equal), so Ray ran it again on the head. (`retried`, read from Ray's log, whose
    # wording is no API, is only reported.)
    assert status == 0, cmd.output()
    got = _tree(run)
    run.rename(root / f"done-{stage}")
    for name in ("stage1/part-00.index.bin", "stage1/part-05.counts.bin", "stage2/counts.bin",
                 "stage2/probabilities.bin", "stage3/part-05.jsonl", "datacard.json"):  # fmt: skip
        assert name in reference
    assert sorted(got) == sorted(reference)  # nothing missing, no temporary file of the lost attempt left
    assert [f for f in reference if got[f] != reference[f]] == []


def test_whole_run_lost_resumes_with_the_same_command(cluster, pool_and_reference):
    """The driver is killed mid-stage-1 (the whole run dies): the same command again ends with the reference's bytes."""
    root, reference = pool_and_reference
    run = root / "run"
    worker = cluster.add_worker()
    try:
        argv = _curate_command(root, "--executor", "ray", "--ray-address", cluster.address)
        first = _Command(argv, root / "killed.log")
        deadline = time.monotonic() + WAIT
        while not any((run / "stage1").glob("*.stats.json")) and first.proc.poll() is None:
            assert time.monotonic() < deadline, "stage 1 never finished a shard"
            time.sleep(0.02)
        first.proc.kill()
        first.proc.wait(timeout=WAIT)
        assert not (run / "datacard.json").exists()  # it was killed mid-run
        again = _Command(argv, root / "resumed.log")
        assert again.wait() == 0, again.output()
    finally:
        worker.kill()
    assert "already done (verified), skipped" in (run / "metaclip2.log").read_text()
    got = _tree(run)
    run.rename(root / "done-resumed")
    assert sorted(got) == sorted(reference)
    assert [f for f in reference if got[f] != reference[f]] == []
