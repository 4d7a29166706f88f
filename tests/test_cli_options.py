"""The command line's options: --log-level, unknown options, help defaults, --config/--print-config, sizes, exit codes."""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path

import pytest

from metaclip2.cli import main
from metaclip2.cli.config_file import read_config_file
from metaclip2.cli.main import _leaves, build_parser
from metaclip2.pipeline.run.config import CurationConfig


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    from metaclip2.pipeline.builds.demo import write_example_pool

    d = tmp_path_factory.mktemp("clipool")
    write_example_pool(d)  # metadata/ (en, de) and pool.jsonl: six images
    return {"meta": str(d / "metadata"), "input": str(d / "pool.jsonl"), "dir": d}


def _base(pool, out) -> list[str]:
    return ["--metadata", pool["meta"], "--input", pool["input"], "--out", str(out)]


def _last_error(err: str) -> str:
    return err.strip().splitlines()[-1]


# -- --log-level ---------------------------------------------------------------------------------


@pytest.mark.parametrize("level", ["DEBUG", "debug", "Debug", "WARNING"])
def test_log_level_takes_any_case(level):
    args = build_parser().parse_args(["report", "run", "--log-level", level])
    assert args.log_level == level.lower()


def test_log_level_refuses_an_unknown_level(capsys):
    assert main(["report", "run", "--log-level", "loud"]) == 2
    assert "invalid choice: 'loud'" in capsys.readouterr().err


def test_debug_line_printed_once(pool, tmp_path, capsys):
    """One debug record, one line: on stderr (even with a root handler set and main run twice in
    one process), and in the run log."""
    root_stream = io.StringIO()
    root_handler = logging.StreamHandler(root_stream)
    logging.getLogger().addHandler(root_handler)
    try:
        for i in range(2):
            out = tmp_path / f"run{i}"
            assert main(["count", *_base(pool, out), "--log-level", "DEBUG"]) == 0
            err = capsys.readouterr().err
            assert err.count("language sample of the pool") == 1, err  # count samples the languages once
            assert (out / "metaclip2.log").read_text().count("language sample of the pool") == 1
    finally:
        logging.getLogger().removeHandler(root_handler)
    assert "language sample" not in root_stream.getvalue()  # the metaclip2 logger does not propagate


def test_curate_debug_line_printed_once(pool, tmp_path, capsys):
    assert main(["curate", *_base(pool, tmp_path / "run"), "--t-en", "2", "--log-level", "debug"]) == 0
    assert capsys.readouterr().err.count("language sample of the pool") == 1


def test_debug_shows_the_traceback_behind_an_error_line(pool, tmp_path, capsys):
    assert main(["curate", *_base(pool, tmp_path / "run"), "--lid-model", str(tmp_path / "none.ftz"), "--log-level", "debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "lid_model" in _last_error(err)
    assert main(["curate", *_base(pool, tmp_path / "run"), "--lid-model", str(tmp_path / "none.ftz")]) == 2
    assert "Traceback" not in capsys.readouterr().err


# -- unknown options -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (["curate", "--metdata", "x", "--input", "p.jsonl", "--out", "r"], "unknown option --metdata; did you mean --metadata?"),
        (["curate", "--metdata=x", "--input", "p.jsonl", "--out", "r"], "unknown option --metdata; did you mean --metadata?"),
        (["sweep", "r", "--t-em", "5"], "unknown option --t-em; did you mean --t-en?"),
        (["thresholds", "r", "--zzz", "5"], "unknown option --zzz"),
        (["metadata", "ngrams", "d.bz2", "--lang", "en", "-o", "x", "--memory-limt", "1GB"],
         "unknown option --memory-limt; did you mean --memory-limit?"),
        (["lid", "--jsnl"], "unknown option --jsnl; did you mean --jsonl?"),
        (["report", "r1", "r2"], "unrecognized arguments: r2"),
        (["curat", "--t-en", "5"], "argument COMMAND: invalid choice: 'curat' (choose from ...); did you mean 'curate'?"),
        (["sample", "r", "--unit", "imgae"], "argument --unit: invalid choice: 'imgae' (choose from ...); did you mean 'image'?"),
    ],
)  # fmt: skip
def test_unknown_option_names_the_closest(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    line = re.sub(r"\(choose from [^)]*\)", "(choose from ...)", _last_error(err))  # quoting varies with Python
    assert line.endswith(f"error: {message}"), err
    assert "required" not in err
    verb = "" if argv[0] == "curat" else " " + (" ".join(argv[:2]) if argv[0] == "metadata" else argv[0])
    assert line.startswith(f"metaclip2{verb}: error:"), err  # the verb's own usage, not the top level's


def test_abbreviations_still_work(pool, tmp_path):
    args = build_parser().parse_args(["curate", "--meta", "m", "--input", "p", "--out", "o", "--output-f", "parquet"])
    assert args.metadata == "m" and args.output_format == "parquet"


# -- help: one default, once ---------------------------------------------------------------------


def test_every_help_line_says_its_default_once():
    parser = build_parser()
    checked = 0
    for leaf in _leaves(parser):
        text = leaf.format_help()  # expands %(default)s; fails on a broken help string
        assert not re.search(r"\(default[^)]*\)\s*\(default", text), leaf.prog
        for action in leaf._actions:
            if not action.help:
                continue
            expanded = action.help % {**vars(action), "prog": leaf.prog}
            assert len(re.findall(r"\bdefault", expanded, re.I)) <= 1, (leaf.prog, action.option_strings, expanded)
            checked += 1
    assert checked > 100  # every verb's options were seen


def test_size_options_say_the_units_are_binary():
    sizes = [(leaf.prog, a) for leaf in _leaves(build_parser()) for a in leaf._actions if a.metavar == "SIZE"]
    assert {a.dest for _, a in sizes} >= {"memory_limit", "matcher_memory", "split_bytes"}
    for prog, action in sizes:
        assert "2^20" in action.help and "2^30" in action.help, (prog, action.option_strings)


def test_sizes_are_binary():
    from metaclip2.core.errors import ParameterError
    from metaclip2.core.sizes import parse_bytes

    assert parse_bytes("128MB") == parse_bytes("128MiB") == parse_bytes("128m") == 134_217_728
    assert parse_bytes("1KiB") == 1024 and parse_bytes("2GiB") == 2 << 30 and parse_bytes("1TiB") == 1 << 40
    for bad in ("128iB", "1.5", "12 MQ", "-1MB"):
        with pytest.raises(ParameterError):
            parse_bytes(bad)
    args = build_parser().parse_args(["metadata", "all", "--languages", "all", "--tree", "t", "--out", "o", "--split-bytes", "1GiB"])
    assert args.split_bytes == 1 << 30


# -- --config and --print-config -----------------------------------------------------------------


def _write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_config_file_with_command_line_override(pool, tmp_path, capsys):
    out = tmp_path / "run"
    config = _write(tmp_path / "run.toml", f'metadata = "{pool["meta"]}"\ninput = "{pool["input"]}"\nout = "{out}"\n'
                    't_en = 2\nseed = 7\nunit = "pair"\nprogress = false\n')  # fmt: skip
    assert main(["curate", "--config", config, "--seed", "3"]) == 0
    recorded = json.loads((out / "run.json").read_text())
    assert recorded["stage2"]["t_en"] == 2 and recorded["stage3"]["seed"] == 3 and recorded["stage3"]["unit"] == "pair"
    assert "stage 1:" not in capsys.readouterr().err  # progress = false quiets the notes, as -q


def test_one_config_file_serves_the_stage_verbs(pool, tmp_path, capsys):
    out = tmp_path / "run"
    config = _write(tmp_path / "run.toml", f'metadata = "{pool["meta"]}"\ninput = ["{pool["input"]}"]\nout = "{out}"\nt_en = 2\n'
                    'seed = 5\nexecutor = "ray"\nray_address = "127.0.0.1:1"\n')  # seed, executor: not thresholds' options
    assert main(["thresholds", "--config", config, "--print-config"]) == 0
    printed = capsys.readouterr().out
    assert re.search("^seed = 0$", printed, re.M) and re.search('^executor = "local"$', printed, re.M)
    config = _write(tmp_path / "run.toml", f'metadata = "{pool["meta"]}"\ninput = ["{pool["input"]}"]\nout = "{out}"\nt_en = 2\n')
    assert main(["count", "--config", config, "-q"]) == 0
    assert main(["thresholds", "--config", config, "--print-config"]) == 0
    assert re.search("^t_en = 2$", capsys.readouterr().out, re.M)
    assert main(["thresholds", "--config", config]) == 0  # out: the run
    assert main(["sample", "--config", config, "-q"]) == 0  # t_en repeats the run's stage 2: fine
    assert json.loads((out / "run.json").read_text())["stage2"]["t_en"] == 2
    capsys.readouterr()
    assert main(["sample", "--config", config, "--t-en", "3"]) == 2  # changes stage 2: refused
    assert "t_en = 3" in _last_error(capsys.readouterr().err)
    fork = tmp_path / "fork"
    assert main(["thresholds", "--config", config, "--t-en", "3", "--out", str(fork)]) == 0  # a fork of the file's run
    assert json.loads((fork / "run.json").read_text())["source"]["run"] == str(out)
    assert json.loads((out / "run.json").read_text())["stage2"]["t_en"] == 2


@pytest.mark.parametrize(
    "text, message",
    [
        ("t_em = 5\n", "unknown key 't_em'; did you mean 't_en'?"),
        ("metdata = 'm'\n", "unknown key 'metdata'; did you mean 'metadata'?"),
        ('t_en = "many"\n', "t_en must be a positive count, got 'many'"),
        ('script_check = "yes"\n', "script_check must be true or false, got 'yes'"),
        ("lid_model = 5\n", "lid_model must be a string, got 5"),
        ('unit = "caption"\n', "unit must be one of ('image', 'pair'), got 'caption'"),
        ("text_keys = [1]\n", "text_keys must be a string or a list of strings"),
        ("t_en = [\n", "is not valid TOML"),
    ],
)
def test_bad_config_file_names_key_and_file(text, message, tmp_path, capsys):
    config = _write(tmp_path / "bad.toml", text)
    assert main(["curate", "--config", config, "--print-config"]) == 2
    line = _last_error(capsys.readouterr().err)
    assert message in line and config in line, line


def test_missing_config_file_and_missing_run_keys_are_usage_errors(tmp_path, capsys):
    assert main(["curate", "--config", str(tmp_path / "none.toml")]) == 2
    assert "none.toml does not exist" in _last_error(capsys.readouterr().err)
    assert main(["curate", "--t-en", "2"]) == 2
    assert "curate needs --metadata, --input, --out" in _last_error(capsys.readouterr().err)


def test_print_config_round_trips_and_runs_nothing(pool, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["curate", *_base(pool, out), "--t-en", "2.5", "--seed", "4", "--text-key", 'alt,"odd" key', "--keep-keys", "url",
            "--matcher-memory", "64MiB", "--no-script-check", "--unit", "pair", "--workers", "2"]  # fmt: skip
    assert main([*argv, "--print-config"]) == 0
    printed = capsys.readouterr().out
    assert not out.exists()  # nothing ran
    for field in CurationConfig.__dataclass_fields__:  # every field, defaults included (unset ones as comments)
        assert re.search(rf"^(# )?{field} = ", printed, re.M), field
    path = _write(tmp_path / "printed.toml", printed)
    settings = read_config_file(path, ("metadata", "input", "out"))
    assert settings["metadata"] == pool["meta"] and settings["input"] == [pool["input"]] and settings["out"] == str(out)
    from metaclip2.pipeline.run.config import config_from_arguments

    expected = config_from_arguments(build_parser().parse_args(argv))
    assert CurationConfig(**{k: v for k, v in settings.items() if k in CurationConfig.__dataclass_fields__}) == expected
    assert expected.matcher_memory == 64 << 20 and expected.text_keys == ("alt", '"odd" key')
    assert main(["curate", "--config", path, "--print-config"]) == 0
    assert capsys.readouterr().out == printed  # printing the printed file gives it back


def test_print_config_of_the_stage_verbs(pool, tmp_path, capsys):
    for verb, shown in ((["count", *_base(pool, tmp_path / "r")], "seed = 0"),
                        (["thresholds", str(tmp_path / "r"), "--t-en", "9"], "t_en = 9"),
                        (["sample", str(tmp_path / "r"), "--seed", "5"], "seed = 5")):  # fmt: skip
        assert main([*verb, "--print-config"]) == 0
        printed = capsys.readouterr().out
        assert f'out = "{tmp_path / "r"}"' in printed and re.search(rf"^{shown}$", printed, re.M), (verb, printed)
    assert not (tmp_path / "r").exists()


# -- exit codes ----------------------------------------------------------------------------------


def test_exit_codes_follow_one_rule(pool, tmp_path, capsys):
    """2: fix the command (a bad value, a path naming nothing, a missing extra); 1: the data or the run."""
    (tmp_path / "model.ftz").write_text("not a model")
    usage = [
        ["curate", *_base(pool, tmp_path / "a"), "--lid-model", "/missing/model.ftz"],
        ["count", *_base(pool, tmp_path / "b"), "--lid-model", "/missing/model.ftz"],
        ["lid", "--lid-model", "/missing/model.ftz", str(pool["input"])],
        ["lid", str(tmp_path / "none.txt")],
        ["curate", "--metadata", pool["meta"], "--input", str(tmp_path / "none-*.jsonl"), "--out", str(tmp_path / "c")],
        ["curate", "--metadata", str(tmp_path / "no_meta"), "--input", pool["input"], "--out", str(tmp_path / "d")],
        ["sweep", str(tmp_path / "nowhere"), "--t-en", "2"],
        ["curate", *_base(pool, tmp_path / "e"), "--t-en", "-5"],
        ["metadata", "all", "en", "--languages", "de", "--out", str(tmp_path / "f")],
    ]
    for argv in usage:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, (argv, err)
    assert main(["curate", *_base(pool, tmp_path / "g"), "--lid-model", str(tmp_path / "model.ftz")]) == 1  # a file, not a model
    assert "not a fastText model" in capsys.readouterr().err


def test_readme_states_the_exit_codes():
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    assert "**2** a usage error" in readme and "names that does not exist" in readme.replace("\n", " ")
