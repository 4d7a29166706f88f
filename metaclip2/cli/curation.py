"""``metaclip2 curate | count | thresholds | sample | report``.

The options are built from [`CurationConfig`][metaclip2.pipeline.run.config.CurationConfig]'s fields, so
each one's default and check live in one place.
"""

from __future__ import annotations

import argparse

import logging

from metaclip2.curation.sampling import UNITS
from metaclip2.cli.config_file import RUN_KEYS, format_config, read_config_file
from metaclip2.cli.logs import attach_run_log
from metaclip2.core.errors import ParameterError
from metaclip2.pipeline.run.config import ENGLISH_MODES, CurationConfig, add_config_arguments, config_from_arguments

__all__ = ["add_subcommands", "DAMAGED_EXIT"]

#: Exit status of a lenient run that finished but skipped damaged inputs (see ``metaclip2 --help``).
DAMAGED_EXIT = 3

log = logging.getLogger(__name__)

_STAGE1, _STAGE2, _STAGE3, _EXEC = 1, 2, 3, "exec"


def _inputs(p: argparse.ArgumentParser) -> None:
    # required, but checked after --config is read (which may give them): see _require
    p.add_argument("--metadata", metavar="DIR", help="per-LID-language metadata directory (<lang>.tsv files); required, here or in --config")
    p.add_argument("--input", nargs="+", metavar="GLOB",
                   help="input shards or glob patterns: .jsonl[.gz] (image or flat form), .parquet, WebDataset .tar; "
                   "required, here or in --config")  # fmt: skip
    p.add_argument("--out", metavar="DIR", help="run directory; required, here or in --config")


def _config_file(p: argparse.ArgumentParser, command: str) -> None:
    """``--config FILE`` and ``--print-config`` (see [`metaclip2.cli.config_file`][metaclip2.cli.config_file])."""
    uses = "metadata, input, out" if command in ("curate", "count") else "out: RUN when none is given"
    p.add_argument("--config", metavar="FILE",
                   help="TOML file of parameters: keys are the options' names with underscores (t_en, text_keys, "
                   f"matcher_memory, ...; {uses}); options given here override it")  # fmt: skip
    p.add_argument("--print-config", action="store_true",
                   help="print the parameters in effect (the file, these options, the defaults) as a TOML config file and exit")  # fmt: skip
    fields = set(CurationConfig.__dataclass_fields__)
    p.set_defaults(prepare=_apply_config_file, config_keys=frozenset(a.dest for a in p._actions if a.dest in fields))


def _apply_config_file(args: argparse.Namespace) -> None:
    """Fill in from ``--config`` what the command line does not give (called before the verb runs)."""
    if not getattr(args, "config", None):
        return
    for key, value in read_config_file(args.config, RUN_KEYS).items():
        if key not in RUN_KEYS:
            # the verb's own options only (thresholds runs no executor, whatever the file says);
            # a config option not given on the command line is absent
            if key in args.config_keys and key not in vars(args):
                setattr(args, key, value)
        elif "run" not in vars(args):  # curate, count: --metadata, --input, --out
            if getattr(args, key) is None:
                setattr(args, key, [value] if key == "input" and isinstance(value, str) else value)
        elif key == "out" and args.run is None:  # thresholds, sample: the run (forked when --out NEW is given)
            args.run = value


def _require(args: argparse.Namespace) -> None:
    missing = [k for k in RUN_KEYS if getattr(args, k, None) is None]
    if missing:
        raise ParameterError(f"{args.command} needs {', '.join('--' + k for k in missing)} (on the command line or in a --config file)")


def _print_config(config: CurationConfig, args: argparse.Namespace) -> int:
    if "run" in vars(args):  # thresholds, sample: the run they write
        run = args.out or args.run
        own = {"out": run} if run is not None else {}
    else:
        own = {k: getattr(args, k, None) for k in RUN_KEYS}
    print(format_config(config, own), end="")
    return 0


def _run_and_out(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("run", nargs="?", metavar="RUN", help=what)
    p.add_argument("--out", metavar="NEW", help="fork: a new run directory reusing RUN's stage 1 (without RUN: the run directory itself)")


def _run_dirs(args: argparse.Namespace) -> tuple[str, str | None]:
    """(the run to write, the run to fork from or None) of ``RUN [--out NEW]``."""
    if args.run is None and args.out is None:
        raise ParameterError("give the run directory: RUN (or --out DIR)")
    if args.run is None or args.out is None:
        return args.run or args.out, None
    from pathlib import Path

    return (args.out, None) if Path(args.run).resolve() == Path(args.out).resolve() else (args.out, args.run)


def _logging_of(p: argparse.ArgumentParser) -> None:
    """``-q`` for verbs whose options do not come from the config (which adds its own)."""
    p.add_argument("-q", "--quiet", dest="progress", action="store_false", default=argparse.SUPPRESS, help="only warnings and errors")


def _shard_selection(p: argparse.ArgumentParser, plan: bool) -> None:
    p.add_argument("--shard-index", type=int, action="append", default=None, metavar="I",
                   help="run only shard I (its position in the sorted input list; repeatable), "
                   "e.g. $SLURM_ARRAY_TASK_ID in an array job")  # fmt: skip
    if plan:
        p.add_argument("--plan", action="store_true",
                       help="only record the run's parameters in OUT/run.json (once, before an array of --shard-index jobs)")  # fmt: skip


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``curate``, ``count``, ``thresholds``, ``sample`` and ``report``."""
    fmt = argparse.RawDescriptionHelpFormatter
    p = subparsers.add_parser(
        "curate", formatter_class=fmt,
        help="curate a pool of image alt-texts end to end (Algorithm 1): match, threshold, sample, report",
        description="Run stages 1-3 over the input shards into the run directory OUT, then write its datacard and plots.\n"
        "Re-running the same command resumes a killed run: finished shards are verified (sizes and sha256 of their\n"
        "outputs, fingerprints of their inputs) and skipped, damaged ones redone. OUT refuses other metadata, inputs\n"
        "or parameters, a changed input (unless --redo-changed), and a second command while one runs in it.",
        epilog="example:\n  metaclip2 curate --metadata metadata/lid --input 'pool/*.jsonl' --out runs/pool --t-en 20000 --workers 8",
    )  # fmt: skip
    _inputs(p)
    add_config_arguments(p, (_STAGE1, _STAGE2, _STAGE3, _EXEC))
    _config_file(p, "curate")
    p.set_defaults(func=run_curate)

    p = subparsers.add_parser(
        "count", formatter_class=fmt,
        help="curation stage 1 alone: LID, matching and per-shard entry counts",
        description="Stage 1 of Algorithm 1 over the input shards: language identification, matching against the\n"
        "metadata, and per-shard entry counts, into OUT/stage1. Finished shards are verified and skipped.",
        epilog="examples:\n  metaclip2 count --metadata metadata/lid --input 'pool/*.parquet' --out runs/pool --workers 8\n"
        "  metaclip2 count ... --plan            # once, before a Slurm array of:\n"
        "  metaclip2 count ... --shard-index $SLURM_ARRAY_TASK_ID",
    )  # fmt: skip
    _inputs(p)
    add_config_arguments(p, (_STAGE1, _EXEC))
    _config_file(p, "count")
    _shard_selection(p, plan=True)
    p.set_defaults(func=run_count)

    p = subparsers.add_parser(
        "thresholds", formatter_class=fmt,
        help="curation stage 2 alone: merged counts, thresholds, entry probabilities (or a fork with another t_en)",
        description="Stage 2 of Algorithm 1: sum the shards' entry counts, derive the tail share p from English at t_en,\n"
        "a threshold per language, and the entry probabilities (RUN/stage2/probabilities.bin).\n"
        "With --out NEW, NEW becomes a new run that reuses RUN's finished stage 1 by reference (checked by\n"
        "digest on every use) and gets its own stages 2-3: try another t_en without redoing stage 1.\n"
        "A failed stage 2 (e.g. a pool without English and no --p) records nothing: retry with other options.",
        epilog="examples:\n  metaclip2 thresholds runs/pool --t-en 20000\n"
        "  metaclip2 thresholds runs/pool --t-en 5000 --out runs/pool-t5000   # fork; then:\n"
        "  metaclip2 sample runs/pool-t5000\n"
        "  metaclip2 thresholds runs/pool-no-en --p 0.06                      # a pool without English",
    )  # fmt: skip
    _run_and_out(p, "run directory with a finished stage 1")
    add_config_arguments(p, (_STAGE2,))
    _config_file(p, "thresholds")
    _logging_of(p)
    p.set_defaults(func=run_thresholds)

    p = subparsers.add_parser(
        "sample", formatter_class=fmt,
        help="curation stage 3 alone: keep decisions and the curated subset (or a fork with other parameters)",
        description="Stage 3 of Algorithm 1: a keep decision for every matched pair (epoch 0, the same as an\n"
        "OnlineSampler's), and the curated subset in RUN/subset. Finished shards are verified and skipped.\n"
        "With --out NEW, NEW reuses RUN's stage 1 by reference and runs its own stage 2 (with RUN's stage-2\n"
        "options unless given here) and stage 3.",
        epilog="examples:\n  metaclip2 sample runs/pool --seed 0 --unit image --output-format parquet\n"
        "  metaclip2 sample runs/pool --out runs/pool-seed1 --seed 1              # fork: stage 1 reused\n"
        "  metaclip2 sample runs/pool --out runs/pool-t5000 --t-en 5000",
    )  # fmt: skip
    _run_and_out(p, "run directory with a finished stage 2 (or stage 1, with --out)")
    add_config_arguments(p, (_STAGE2, _STAGE3, _EXEC))
    _config_file(p, "sample")
    _shard_selection(p, plan=False)
    p.set_defaults(func=run_sample)

    p = subparsers.add_parser(
        "sweep", formatter_class=fmt,
        help="preview stages 2-3 for many t_en from stage 1 alone: expected kept pairs and images per language",
        description="For each candidate t_en, the exact expected number of kept pairs and images (sums of keep\n"
        "probabilities, no sampling; ± one standard deviation), per language, and the tail share p, from the\n"
        "stage-1 outputs alone (counts merged on the fly when stage 2 has not run). --target-size N finds the\n"
        "t_en whose expected kept size is N. A pool without English sweeps --p instead (several values).\n"
        "Defaults for --unit, --english and --p are the run's own when it recorded them.",
        epilog="examples:\n  metaclip2 sweep runs/pool --t-en 1000,5000,20000,50000,170000\n"
        "  metaclip2 sweep runs/pool --t-en 1000,5000,20000 --csv sweep.csv --plot sweep.png\n"
        "  metaclip2 sweep runs/pool --target-size 1000000          # then: metaclip2 thresholds runs/pool --t-en T --out NEW\n"
        "  metaclip2 sweep runs/pool-no-en --p 0.02,0.06,0.1",
    )  # fmt: skip
    p.add_argument("run", metavar="RUN", help="run directory with a finished stage 1")
    p.add_argument("--t-en", dest="t_en_list", metavar="T[,T...]", help="candidate English thresholds, comma-separated")
    p.add_argument("--target-size", type=float, metavar="N", help="find the t_en whose expected kept size is N")
    p.add_argument("--measure", choices=("pairs", "images"), default="pairs", help="what --target-size counts (default: pairs)")
    p.add_argument("--p", dest="p_list", metavar="P[,P...]", help="a fixed tail share, or several to sweep instead of t_en")
    p.add_argument("--english", choices=ENGLISH_MODES, default=None, help="keep t_en for English or recompute it from p (default: the run's, else keep)")
    p.add_argument("--unit", choices=UNITS, default=None, help="sampling unit (default: the run's, else image)")
    p.add_argument("--csv", metavar="FILE", help="also write the table as CSV (one line per t_en and language)")
    p.add_argument("--json", metavar="FILE", help="also write the table as JSON")
    p.add_argument("--plot", metavar="FILE", help="also plot kept size against t_en (PNG; pip install 'metaclip2[plot]')")
    _logging_of(p)
    p.set_defaults(func=run_sweep)

    p = subparsers.add_parser(
        "report", formatter_class=fmt,
        help="datacard JSON, plots and a self-contained HTML report of a curation run",
        description="Write RUN_DIR/datacard.json (what went in, matched and was kept, per language and shard),\n"
        "RUN_DIR/report.html (one self-contained page to browse the run: accounting, languages, entries with\n"
        "examples kept and not kept, a t_en control; opens from file://, fetches nothing) and, with matplotlib\n"
        "installed, PNG plots in RUN_DIR/plots.",
        epilog="examples:\n  metaclip2 report runs/pool\n  metaclip2 report runs/pool --html /tmp/pool-report.html",
    )  # fmt: skip
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--no-plots", action="store_true", help="no PNG plots")
    p.add_argument("--html", metavar="PATH", default=None, help="write the HTML report here instead of RUN_DIR/report.html")
    p.add_argument("--no-html", action="store_true", help="no HTML report")
    p.set_defaults(func=run_report)


def _shards(args: argparse.Namespace):
    return [] if getattr(args, "plan", False) else args.shard_index


def run_curate(args: argparse.Namespace) -> int:
    """``metaclip2 curate``."""
    from metaclip2.pipeline.report.card import write_report
    from metaclip2.pipeline.run.api import curate

    config = config_from_arguments(args)
    if args.print_config:
        return _print_config(config, args)
    _require(args)
    attach_run_log(args.out)
    with _workers(config) as ex:  # one pool for the stages and the report
        res = curate(args.metadata, args.input, args.out, config if ex is None else config.replace(executor=ex))
        rep = write_report(res.out, html=True, executor=ex)
    t = res.datacard["totals"]
    print(f"{t['pairs']} pairs in ({t['invalid']} invalid, {t['no_metadata']} without metadata, {t['unmatched']} unmatched), "
          f"{t['matched']} matched, {t['kept']} kept")  # fmt: skip
    print(f"curated subset: {res.out / 'subset'}/*.{config.output_format}")
    print(f"probabilities:  {res.probabilities}")
    print(f"datacard:       {rep['datacard']}")
    print(f"report:         {rep['html']}")
    for p in rep["plots"]:
        print(f"plot:           {p}")
    total = _stage1_total(res.out)
    return _damage_status(total.invalid, getattr(total, "damaged", None), config.strict)


def _workers(config):
    """Local worker processes for a whole ``curate``, started at once in the background (they get
    ready while the inputs are checked and sampled) and kept for the report, whose plots one of
    them draws while the HTML report is written; a null context (curate makes its own executor)
    for one worker or Ray."""
    import contextlib

    if config.executor != "local" or config.workers < 2:
        return contextlib.nullcontext()
    from metaclip2.execution import get_executor

    return get_executor(config.executor, config.workers, config.ray_address, config.progress).start(wait=False)  # curate's own


def _stage1_total(out):
    """The run's stage-1 stats, summed over its shards."""
    from metaclip2.pipeline.run.rundir import RunDir, load_json
    from metaclip2.pipeline.stages.files import stage1_paths
    from metaclip2.pipeline.stages.stats import Stage1Stats

    run = RunDir(out)
    paths = [stage1_paths(run.stage1, n)["stats"] for n in run.read()["stage1"]["shards"]]
    return sum((Stage1Stats.from_json(load_json(p), str(p)) for p in paths), Stage1Stats())


def _damage_status(invalid_by_reason: dict, damaged, strict: bool) -> int:
    """[`DAMAGED_EXIT`][metaclip2.cli.curation.DAMAGED_EXIT] when a lenient run skipped damaged inputs, else 0.

    Damage is an invalid reason starting with ``damaged``, or a ``damaged`` entry in the stats
    (a list of damaged stretches, a number, or a mapping of numbers), whichever the readers report.
    """
    n = sum(v for k, v in (invalid_by_reason or {}).items() if str(k).startswith("damaged"))
    if isinstance(damaged, list):  # damaged stretches of containers (their pairs are in invalid["damaged"])
        n = max(n, len(damaged))
    elif isinstance(damaged, dict):
        n += sum(v for v in damaged.values() if isinstance(v, (int, float)))
    elif isinstance(damaged, (int, float)) and not isinstance(damaged, bool):
        n += damaged
    if n and not strict:
        log.warning("%d pairs were lost to damaged inputs and skipped (see the datacard's invalid_by_reason); "
                    "exit status %d. Repair the inputs and re-run, or accept the loss", n, DAMAGED_EXIT)  # fmt: skip
        return DAMAGED_EXIT
    return 0


def run_count(args: argparse.Namespace) -> int:
    """``metaclip2 count``."""
    from metaclip2.pipeline.run.api import count

    config = config_from_arguments(args)
    if args.print_config:
        return _print_config(config, args)
    _require(args)
    attach_run_log(args.out)
    stats = count(args.metadata, args.input, args.out, config, shards=_shards(args))
    pairs = sum(s.pairs for s in stats)
    matched = sum(s.matched for s in stats)
    print(f"stage 1: {len(stats)} shards, {pairs} pairs, {matched} matched -> {args.out}/stage1")
    total = sum(stats[1:], stats[0]) if stats else None
    return _damage_status(total.invalid, getattr(total, "damaged", None), config.strict) if total else 0


def run_thresholds(args: argparse.Namespace) -> int:
    """``metaclip2 thresholds``."""
    from metaclip2.pipeline.run.api import compute_thresholds

    config = config_from_arguments(args)
    if args.print_config:
        return _print_config(config, args)
    out, source = _run_dirs(args)
    attach_run_log(out, create=source is not None)
    info = compute_thresholds(out, config, source=source)
    print(f"p = {info['p']}")
    for lang, t in info["t"].items():
        print(f"{lang}\t{t}")
    return 0


def run_sample(args: argparse.Namespace) -> int:
    """``metaclip2 sample``."""
    from metaclip2.pipeline.run.rundir import RunDir
    from metaclip2.pipeline.run.api import sample

    out, source = _run_dirs(args)
    config = config_from_arguments(args)
    given = sorted(k for k in vars(args) if k in CurationConfig().section(2))  # on the command line or in --config
    recorded = RunDir(source or out).read().get("stage2", {})
    if source is None:
        # a run's stage 2 is done once: a stage-2 value may repeat it (e.g. from a shared --config), not change it
        changed = [k for k in given if k in recorded and config.section(2)[k] != recorded[k]]
        if changed:
            k = changed[0]
            raise ParameterError(f"{k} = {config.section(2)[k]} (given here or in --config) changes stage 2, which this run has done "
                                 f"with {k} = {recorded[k]}: fork with --out NEW (stage 1 reused), or use `metaclip2 thresholds`")  # fmt: skip
    # the stage-2 choices the run recorded (a fork: its source's) hold unless given here
    config = config.replace(**{k: v for k, v in recorded.items() if k not in given})
    if args.print_config:
        return _print_config(config, args)
    attach_run_log(out, create=source is not None)
    # a fork takes its source's output options (output_format, keys_list) unless given here
    given_outputs = {k: getattr(config, k) for k in ("output_format", "keys_list") if k in vars(args)}
    stats = sample(out, config, shards=_shards(args), source=source, **given_outputs)
    kept = sum(s.kept for s in stats)
    matched = sum(s.matched for s in stats)
    print(f"stage 3: {kept} of {matched} matched pairs kept -> {out}/subset")
    return 0


def _floats(text: str | None, name: str) -> list[float]:
    if text is None:
        return []
    try:
        return [float(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise ParameterError(f"{name} takes comma-separated numbers, got {text!r}") from None


def run_sweep(args: argparse.Namespace) -> int:
    """``metaclip2 sweep``."""
    from metaclip2.pipeline.run.guidance import suggest_t_en
    from metaclip2.pipeline.run.rundir import RunDir
    from metaclip2.pipeline.report.sweep import load_sweep_data, sweep, target_size

    t_values = _floats(args.t_en_list, "--t-en")
    p_values = _floats(args.p_list, "--p")
    if not t_values and args.target_size is None and len(p_values) < 2:
        raise ParameterError("give candidate thresholds (--t-en 1000,5000,20000), several --p values, or --target-size N")
    recorded = RunDir(args.run).read()
    english = args.english or recorded.get("stage2", {}).get("english", "keep")
    unit = args.unit or recorded.get("stage3", {}).get("unit", "image")
    if args.p_list is None and recorded.get("stage2", {}).get("p") is not None:
        p_values = [recorded["stage2"]["p"]]
    p = None if not p_values else (p_values[0] if len(p_values) == 1 else p_values)
    data = load_sweep_data(args.run)
    if args.target_size is not None:
        if isinstance(p, list):
            raise ParameterError("--target-size searches one knob: give at most one --p")
        row = target_size(data, args.target_size, english=english, p=p, unit=unit, measure=args.measure)
        rows = [row] + ([] if not t_values else sweep(data, t_values, english=english, p=p, unit=unit).rows)
        print(f"expected {args.measure} kept = {row[args.measure]:,.1f} ± {row[args.measure + '_std']:,.1f} "
              f"(target {args.target_size:,.0f}) at {row['searched']} = {row[row['searched']]:g}"
              f"{'' if row['searched'] == 'p' else f' (p = {row[chr(112)]:.4f})'}")  # fmt: skip
        if row["searched"] == "t_en":
            print(f"use it: metaclip2 thresholds {args.run} --t-en {row['t_en']:g} --out NEW")
        else:
            print(f"use it: metaclip2 thresholds {args.run} --p {row['p']:.6g} --out NEW")
        table = sweep(data, [row["t_en"]], english=english, p=p if row["searched"] == "t_en" else row["p"], unit=unit)
        table.rows = rows
    else:
        table = sweep(data, t_values, english=english, p=p, unit=unit)
    print(table)
    odd = [r for r in table.rows if not 0.01 < r["p"] < 0.99]
    if odd and data.english:
        sug = suggest_t_en(data)
        log.warning("%d candidate(s) give a tail share p outside (0.01, 0.99), where t_en does not fit the pool's size; "
                    "the paper's p ~ 0.055-0.06 is at t_en = %s (docs/choosing_t_en.md)",
                    len(odd), ", ".join(f"{t:,}" for t in sorted(set(sug.values()))))  # fmt: skip
    if args.csv:
        table.to_csv(args.csv)
        print(f"csv:  {args.csv}")
    if args.json:
        from metaclip2.core.atomic import write_json

        write_json(args.json, table.to_dict())
        print(f"json: {args.json}")
    if args.plot:
        print(f"plot: {table.plot(args.plot)}")
    return 0


def run_report(args: argparse.Namespace) -> int:
    """``metaclip2 report``."""
    from metaclip2.pipeline.report.card import write_report

    rep = write_report(args.run_dir, plots=not args.no_plots, html=False if args.no_html else (args.html or True))
    print(f"datacard: {rep['datacard']}")
    if rep["html"] is not None:
        print(f"report:   {rep['html']}")
    for p in rep["plots"]:
        print(f"plot:     {p}")
    return 0
