"""`import`: text lines, JSON list and JSON object keys -> a language's metadata, with the build filters."""

from __future__ import annotations

import argparse
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metaclip2.metadata.build import clean_source
from metaclip2.core.entries import MetadataError, read_metadata
from metaclip2.metadata.importing import import_metadata, read_entry_list

RAW = ["dog", " cat ", "", "dog", "!!", "a\tb", "x" * 300, "New York", "42", "猫", "C++"]
KEPT = ["dog", "cat", "New York", "42", "猫", "C++"]


def _write(tmp_path, form: str, items=RAW):
    if form == "text":
        p = tmp_path / "list.txt"
        p.write_text("\n".join(s.replace("\t", "\t") for s in items) + "\n", encoding="utf-8")
    elif form == "json-list":
        p = tmp_path / "metadata.json"
        p.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    else:
        p = tmp_path / "metadata_obj.json"
        p.write_text(json.dumps({s: i for i, s in enumerate(items)}, ensure_ascii=False), encoding="utf-8")
    return p


@pytest.mark.parametrize("form", ["text", "json-list", "json-keys"])
def test_three_forms_same_result(tmp_path, form):
    p = _write(tmp_path, form)
    r = import_metadata(p, "en", tmp_path / "out")
    items = list(dict.fromkeys(RAW)) if form == "json-keys" else RAW  # object keys are unique already
    assert r.entries == KEPT and r.sources == ["import"] * len(KEPT)
    s = r.summary
    assert s["list_format"] == form and s["candidates"] == len(items)
    assert s["dropped_by_filter"] == {"empty": 1, "too_long": 1, "punctuation": 1, "control": 1}
    assert s["duplicates"] == (1 if form != "json-keys" else 0)
    entries, sources = read_metadata(tmp_path / "out" / "en.tsv", with_sources=True)
    assert entries == KEPT and set(sources) == {"import"}
    assert json.loads((tmp_path / "out" / "en.summary.json").read_text())["digest"] == r.digest


def test_numbers_first_and_crlf_bom(tmp_path):
    p = tmp_path / "l.txt"
    p.write_bytes("\ufeffdog\r\n7\r\ncat".encode("utf-8"))  # BOM, CRLF, no final newline
    r = import_metadata(p, "xx", numbers=True)
    assert r.entries == [str(i) for i in range(100)] + ["dog", "cat"]
    assert r.summary["duplicates"] == 1 and r.summary["entries_per_source"] == {"number": 100, "import": 2}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8), max_size=30))
def test_equals_filter_then_first_occurrence(tmp_path_factory, items):
    d = tmp_path_factory.mktemp("h")
    p = d / "m.json"
    p.write_text(json.dumps(items), encoding="utf-8")
    expected = list(dict.fromkeys(clean_source(items)[0]))
    if not expected:
        with pytest.raises(MetadataError, match="no entry left"):
            import_metadata(p, "xx")
        return
    assert import_metadata(p, "xx").entries == expected


def test_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('["a", 3]', encoding="utf-8")
    with pytest.raises(MetadataError, match="index 1"):
        import_metadata(bad, "en")
    bad.write_text("[1, 2", encoding="utf-8")
    with pytest.raises(MetadataError, match="invalid JSON"):
        import_metadata(bad, "en")
    bad.write_text('"x"', encoding="utf-8")
    with pytest.raises(MetadataError, match="JSON list"):
        read_entry_list(bad, "json-list")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("café\n".encode("latin-1"))
    with pytest.raises(MetadataError, match="UTF-8"):
        import_metadata(latin, "en")
    with pytest.raises(ValueError):
        import_metadata(latin, "../en")
    with pytest.raises(ValueError):
        read_entry_list(latin, "csv")
    assert not list(tmp_path.glob("*.tsv"))


def test_cli_and_lid_merge(tmp_path, capsys):
    from metaclip2.cli.metadata import add_subcommands
    from metaclip2.matching.lid_metadata import build_lid_metadata

    parser = argparse.ArgumentParser(prog="metaclip2")
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    p = _write(tmp_path, "json-list")
    args = parser.parse_args(["metadata", "import", str(p), "--lang", "simple", "--out-dir", str(tmp_path / "wiki"), "--numbers"])
    assert args.func(args) == 0
    assert "105 entries" in capsys.readouterr().out
    index = build_lid_metadata(tmp_path / "wiki", tmp_path / "lid", progress=False)
    assert index["en"]["wikipedia"] == ["simple"] and index["en"]["entries"] == 105  # "42" is one of the numbers
