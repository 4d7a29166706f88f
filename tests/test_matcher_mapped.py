"""The mapped .matcher format (version 3): arrays used in place from a memory map, the whole file
verified once per machine and file version, every damaged or crafted file refused in one line."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import random
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from test_matcher import _random_corpus, check_csr, ref_lib

from metaclip2.core.entries import entries_digest, write_metadata
from metaclip2.core.errors import DataError, MatcherFileError, MatcherMismatchError, MetadataError
from metaclip2.matching import matcher as matcher_module
from metaclip2.matching.lid_metadata import build_lid_metadata
from metaclip2.matching.matcher import MATCHER_ENGINES, Matcher
from metaclip2.matching.store import MetadataStore

EN = ["cat", "New York", "of univ", "univ", "0", "(planet)", "Mercury (planet)", "'tween", "U.S", "a . b", "tower 東京", "東京", "กข"]
ZH = ["東京", "大学", "0", "北京大学", "京", "学 x"]
TEXTS = ["A cat in New York, 0.", "of univ of universe", "Mercury (planet) 'tween a.b", "我在東京大学 tower 東京x", "北京大学 学 x", "", "กขค กข"]


def _verifications() -> int:
    return matcher_module._VERIFICATIONS[0]


def _header(data: bytes) -> tuple[dict, int]:
    n = int.from_bytes(data[12:16], "little")
    return json.loads(data[16 : 16 + n]), n


def _reseal(data: bytes | bytearray) -> bytes:
    """`data` with a correct checksum: what someone crafting a file can always make."""
    out = bytearray(data)
    at = 16 + len(b'{"sha256": "')
    out[at : at + 64] = b"0" * 64
    out[at : at + 64] = hashlib.sha256(out).hexdigest().encode()
    return bytes(out)


def _with_header(data: bytes, header: dict) -> bytes:
    """`data` with its header replaced (padded to the same length) and resealed."""
    _, n = _header(data)
    rest = {k: v for k, v in header.items() if k != "sha256"}
    raw = (f'{{"sha256": "{header["sha256"]}", ' + json.dumps(rest, separators=(",", ":"))[1:]).encode()  # compact: it fits
    assert len(raw) <= n, "the crafted header must fit the original's room"
    return _reseal(data[:16] + raw + b" " * (n - len(raw)) + data[16 + n :])


def _section(data: bytes, name: str) -> tuple[int, str, int]:
    header, _ = _header(data)
    for got_name, dtype, offset, count in header["sections"]:
        if got_name == name:
            return offset, dtype, count
    raise KeyError(name)


# --- round trip ----------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", MATCHER_ENGINES)
def test_round_trip_gives_the_reference_results(tmp_path, engine):
    entries, texts = _random_corpus(3, 700, 800)
    texts[5] = "x\x00y 東京"  # the NUL fallback path too
    built = Matcher(entries, engine=engine)
    path = tmp_path / "m.matcher"
    built.save(path)
    assert path.read_bytes()[8:12] == (3).to_bytes(4, "little")
    m = Matcher.load(path, digest=entries_digest(entries), engine=engine)
    expected = [ref_lib(entries, t) for t in texts]
    assert sum(map(len, expected)) > 2000
    for batch_size in (61, 8192):
        got = m.match_many(texts, batch_size=batch_size)
        assert check_csr(*got, len(texts)) == expected
        want = built.match_many(texts, batch_size=batch_size)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    assert [m.match(t) for t in texts[:200]] == expected[:200]
    assert m.entries == entries and m.unmatchable == built.unmatchable and len(m) == len(entries)
    assert Matcher.read_digest(path) == entries_digest(entries)


def test_trie_engine_uses_the_map_in_place_and_decodes_entries_lazily(tmp_path):
    path = tmp_path / "en.matcher"
    Matcher(EN, lang="en").save(path)
    m = Matcher.load(path, lang="en")
    assert m._entries is None  # nothing decoded yet
    assert [m.match(t) for t in TEXTS] == [ref_lib(EN, t) for t in TEXTS]
    assert m._entries is None  # matching never needs the entry strings
    eng = m._engine
    arrays = [eng._hashes, eng._slot_words, eng._word_entry, eng._raw, eng._phrases.keys, eng._forward.keys, eng._backward.entry]
    for a in arrays:
        assert not a.flags.owndata and not a.flags.writeable  # views of the read-only map
    assert m.entries == EN and m.lang == "en"
    assert 0 < m.nbytes <= path.stat().st_size


def test_words_that_share_a_hash_slot_and_lookalike_tokens(tmp_path):
    # Many words (long probes), and text tokens that differ from a word in one byte or in length.
    rng = random.Random(7)
    words = list(dict.fromkeys("".join(rng.choice("ab東") for _ in range(rng.randint(1, 7))) for _ in range(3000)))
    entries = words[:1500] + [f"{a} {b}" for a, b in zip(words[1500:2000], words[2000:2500])]
    path = tmp_path / "w.matcher"
    Matcher(entries).save(path)
    m = Matcher.load(path)
    texts = [" ".join(rng.choice(words) + rng.choice(["", "a", "b"]) for _ in range(12)) for _ in range(300)]
    assert check_csr(*m.match_many(texts), len(texts)) == [ref_lib(entries, t) for t in texts]


@pytest.mark.parametrize("entries", [[], ["a"], ["東"], [" "], ["a b", "b"], ["U.S"], ["\ud800x", "é è"]])
def test_small_lists(tmp_path, entries):
    path = tmp_path / "s.matcher"
    Matcher(entries).save(path)
    texts = ["a b 東 x (y)  U.S \ud800x é è", "", " ", "b a b"]
    for engine in MATCHER_ENGINES:
        m = Matcher.load(path, entries=entries, engine=engine)
        assert m.entries == entries
        assert check_csr(*m.match_many(texts), len(texts)) == [ref_lib(entries, t) for t in texts]


def test_old_version_2_files_are_still_read(tmp_path):
    path = tmp_path / "old.matcher"
    Matcher(EN).save(path, version=2)
    assert path.read_bytes()[8:12] == (2).to_bytes(4, "little")
    assert [Matcher.load(path).match(t) for t in TEXTS] == [ref_lib(EN, t) for t in TEXTS]


# --- damage --------------------------------------------------------------------------------------


@pytest.mark.parametrize("entries, lang", [(EN, "en"), (ZH, "zh")])
def test_every_truncation_is_refused(tmp_path, entries, lang):
    data = (tmp_path / "m.matcher", Matcher(entries, lang=lang).save(tmp_path / "m.matcher"))[0].read_bytes()
    header, n_header = _header(data)
    # Every byte of the header, around every section's start and end, and a stride through the rest.
    edges = [o + d for _, dtype, off, count in header["sections"] for o in (off, off + count * np.dtype(dtype).itemsize) for d in (-2, -1, 0, 1)]
    for n in sorted({*range(0, 16 + n_header + 2), *edges, *range(0, len(data), 997), len(data) - 1} & set(range(len(data)))):
        cut = tmp_path / f"cut{n}.matcher"
        cut.write_bytes(data[:n])
        with pytest.raises(MatcherFileError):
            Matcher.load(cut)


def test_truncation_at_every_byte_is_refused(tmp_path):
    latin = ["cat", "New York", "of univ", "univ", "0", "(planet)", "a . b"]  # no character tries: a small file
    path = tmp_path / "m.matcher"
    Matcher(latin).save(path)
    data = path.read_bytes()
    assert len(data) < 4096
    for n in range(len(data)):
        cut = tmp_path / f"cut{n}.matcher"
        cut.write_bytes(data[:n])
        with pytest.raises(MatcherFileError):
            Matcher.load(cut)
    # Bytes added at the end are refused too.
    (tmp_path / "long.matcher").write_bytes(data + b"\0")
    with pytest.raises(MatcherFileError, match="truncated or padded"):
        Matcher.load(tmp_path / "long.matcher")


@pytest.mark.parametrize("entries, lang", [(EN, "en"), (ZH, "zh")])
def test_every_bit_flip_is_detected_at_first_verification(tmp_path, entries, lang):
    data = (tmp_path / "m.matcher", Matcher(entries, lang=lang).save(tmp_path / "m.matcher"))[0].read_bytes()
    rng = random.Random(1)
    positions = sorted({*range(0, 120), *(rng.randrange(len(data)) for _ in range(300))})
    for pos in positions:
        bad = bytearray(data)
        bad[pos] ^= 1 << rng.randrange(8)
        path = tmp_path / f"flip{pos}.matcher"  # a new file each time: never a verified version
        path.write_bytes(bytes(bad))
        with pytest.raises((MatcherFileError, MatcherMismatchError)):
            Matcher.load(path, digest=entries_digest(entries), lang=lang)


def test_crafted_arrays_with_a_correct_checksum_are_refused(tmp_path):
    path = tmp_path / "en.matcher"
    Matcher(EN, lang="en").save(path)
    data = path.read_bytes()

    def poke(name, index, value):
        offset, dtype, count = _section(data, name)
        out = bytearray(data)
        size = np.dtype(dtype).itemsize
        at = offset + (index % count) * size
        out[at : at + size] = np.array([value], dtype=dtype).tobytes()
        return _reseal(out)

    cases = {
        "word id out of range": poke("slot_words", 0, 10**6) if _section(data, "slot_words")[2] else None,
        "entry id out of range": poke("word_entry", 2, 10**6),
        "trie child out of range": poke("phrases_first", 0, 10**6),
        "trie entry swapped": poke("forward_entry", 1, 0),
        "node marked inner": poke("backward_inner", 0, 7),
        "entry offset moved": poke("offsets", 1, 2),
        "vocabulary edited": _reseal(data.replace(b"York", b"Yorc", 1)),
        "entries edited": _reseal(data.replace(b"Mercury", b"Mercurx", 1)),
    }
    zh = tmp_path / "zh.matcher"
    Matcher(ZH, lang="zh").save(zh)
    offset, _, _ = _section(zh.read_bytes(), "entries")
    data_zh = zh.read_bytes()
    cases["entry repeated"] = _reseal(data_zh[:offset] + data_zh[offset:].replace("大学".encode(), "東京".encode(), 1))
    crafted = tmp_path / "c.matcher"
    for name, content in cases.items():
        assert content is not None and content != data, name
        path = tmp_path / f"{len(name)}-{abs(hash(name))}.matcher"
        path.write_bytes(content)
        with pytest.raises(MatcherFileError, match=str(path.name)):
            Matcher.load(path)
    del crafted


def test_crafted_header_offsets_and_lengths_are_refused_before_mapping(tmp_path):
    path = tmp_path / "en.matcher"
    Matcher(EN, lang="en").save(path)
    data = path.read_bytes()
    header, _ = _header(data)
    size = len(data)

    def sections(i, offset=None, count=None):
        s = json.loads(json.dumps(header["sections"]))
        if offset is not None:
            s[i][2] = offset
        if count is not None:
            s[i][3] = count
        return dict(header, sections=s)

    crafted = [
        sections(0, offset=size + 64),  # past the end
        sections(0, offset=-64),
        sections(1, offset=header["sections"][1][2] + 8),  # unaligned
        sections(2, offset=header["sections"][0][2]),  # overlaps an earlier section
        sections(0, count=10**15),  # a huge length (never allocated)
        sections(5, count=-1),
        sections(5, count=2**70),
        dict(header, file_bytes=size + 1),
        dict(header, entries=10**12),
        dict(header, table_bits=0),
        dict(header, radix={"phrases": -1, "forward": 0, "backward": 0}),
        dict(header, sections=header["sections"][:-1]),
        dict(header, format="metaclip2-matcher/2"),
        dict(header, lang=5),
        [1, 2, 3],
    ]
    for k, h in enumerate(crafted):
        bad = tmp_path / f"h{k}.matcher"
        bad.write_bytes(_with_header(data, h) if isinstance(h, dict) else data[:16] + b" " * (len(data) - 16))
        with pytest.raises(MatcherFileError, match=bad.name):
            Matcher.load(bad)
    # Deeply nested JSON and a header length past the cap: one line, no RecursionError.
    deep = b'{"sha256": "' + b"0" * 64 + b'", "x": ' + b"[" * 100000 + b"]" * 100000 + b"}"
    bad = tmp_path / "deep.matcher"
    bad.write_bytes(data[:12] + len(deep).to_bytes(4, "little") + deep)
    with pytest.raises(MatcherFileError, match="deep.matcher"):
        Matcher.load(bad)
    bad.write_bytes(data[:12] + (2**31).to_bytes(4, "little") + data[16:])
    with pytest.raises(MatcherFileError, match="header length"):
        Matcher.load(bad)


def _load_in_thread(path):
    out = {}

    def run():
        try:
            Matcher.load(path)
        except BaseException as e:  # noqa: BLE001  (the test inspects it)
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(20)
    assert not t.is_alive(), f"loading {path} blocked"
    return out.get("error")


def test_directories_fifos_and_devices_are_refused_without_blocking(tmp_path):
    (tmp_path / "dir.matcher").mkdir()
    os.mkfifo(tmp_path / "fifo.matcher")
    os.symlink("/dev/zero", tmp_path / "zero.matcher")
    for name in ("dir.matcher", "fifo.matcher", "zero.matcher"):
        e = _load_in_thread(tmp_path / name)
        assert isinstance(e, MatcherFileError) and isinstance(e, DataError), (name, e)
        assert name in str(e) and "regular file" in str(e) and "\n" not in str(e)
    # A store warns and builds from the .tsv instead.
    write_metadata(tmp_path / "fifo.tsv", EN, lang="fifo")
    with pytest.warns(UserWarning, match="regular file"):
        assert MetadataStore(tmp_path).matcher("fifo").entries == EN


# --- verification once per machine -----------------------------------------------------------------


def test_verified_once_per_machine_and_again_when_the_file_changes(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("METACLIP2_CACHE", str(cache))
    path = tmp_path / "en.matcher"
    Matcher(EN, lang="en").save(path)
    before = _verifications()
    Matcher.load(path)
    Matcher.load(path, lang="en")
    assert _verifications() == before + 1
    assert len(list((cache / "verified").rglob("*"))) == 2  # one record (and its folder)
    # Another process of the machine trusts the record: it does not hash the file again.
    code = (
        "from metaclip2.matching import matcher as mm; import sys;"
        "m = mm.Matcher.load(sys.argv[1]); print(mm._VERIFICATIONS[0], m.match('a cat'))"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    out = subprocess.run([sys.executable, "-c", code, str(path)], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split(maxsplit=1) == ["0", "[0]\n"]
    # The same file modified in place (another mtime and ctime): verified again, and refused.
    data = bytearray(path.read_bytes())
    offset, _, _ = _section(bytes(data), "word_entry")
    data[offset + 9] ^= 1
    st = path.stat()
    with open(path, "r+b") as f:
        f.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(MatcherFileError, match="checksum"):
        Matcher.load(path)
    assert _verifications() == before + 2
    # Rewritten whole (a new file in its place): verified again, and used.
    Matcher(ZH, lang="en").save(path)
    assert Matcher.load(path).entries == ZH and _verifications() == before + 3


def test_processes_starting_together_verify_once(tmp_path):
    rng = random.Random(5)  # a list whose verification takes long enough for the processes to overlap
    entries = list(dict.fromkeys("".join(rng.choice("abcdefgh") for _ in range(9)) for _ in range(100000)))
    path = tmp_path / "m.matcher"
    Matcher(entries).save(path)
    code = (
        "from metaclip2.matching import matcher as mm; import sys;"
        "m = mm.Matcher.load(sys.argv[1]); print(mm._VERIFICATIONS[0], len(m))"
    )
    env = dict(os.environ, METACLIP2_CACHE=str(tmp_path / "cache"), PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path)], env=env, stdout=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=120)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert [int(o[1]) for o in outs] == [len(entries)] * 3
    assert sum(int(o[0]) for o in outs) == 1  # the others waited for the first one's record


def test_an_unwritable_cache_is_only_a_cost(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("METACLIP2_CACHE", str(blocker))
    path = tmp_path / "en.matcher"
    Matcher(EN).save(path)
    assert Matcher.load(path).match("a cat") == [0]


# --- shared memory -----------------------------------------------------------------------------------


def _mapping_of(path: str) -> dict[str, int]:
    """Sum of /proc/self/smaps fields over the mappings of `path`."""
    out: dict[str, int] = {}
    inside = False
    with open("/proc/self/smaps") as f:
        for line in f:
            parts = line.split()
            if "-" in parts[0] and len(parts) >= 5 and ":" in parts[3]:
                inside = len(parts) >= 6 and parts[5] == path
            elif inside and parts[0].endswith(":") and len(parts) >= 2 and parts[1].isdigit():
                out[parts[0][:-1]] = out.get(parts[0][:-1], 0) + int(parts[1])
    return out


def _touch(m: Matcher) -> None:
    e = m._engine
    for a in (e._hashes, e._slot_words, e._word_entry, e._raw, e._offsets):
        int(a.view(np.uint8).sum())


def _child(path: str, queue) -> None:
    m = Matcher.load(path)
    _touch(m)
    queue.put((m.match("a cat"), _mapping_of(path)))


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="needs Linux /proc/self/smaps")
def test_processes_share_the_mapped_pages(tmp_path):
    rng = random.Random(0)
    words = list(dict.fromkeys("".join(rng.choice("abcdefgh") for _ in range(8)) for _ in range(60000)))
    path = str(tmp_path / "big.matcher")
    Matcher(["cat", *words]).save(path)
    m = Matcher.load(path)  # verified (and the page cache filled) here
    _touch(m)
    ctx = multiprocessing.get_context("forkserver")
    queue = ctx.Queue()
    p = ctx.Process(target=_child, args=(path, queue))
    p.start()
    found, child = queue.get(timeout=120)
    p.join(60)
    mine = _mapping_of(path)
    assert found == [0]
    assert child["Rss"] > 0 and mine["Rss"] > 0
    # Clean, file-backed pages mapped by both processes: nothing private, the proportional share split.
    assert child["Private_Dirty"] == 0 and mine["Private_Dirty"] == 0
    assert child["Shared_Clean"] > 0
    assert child["Pss"] < child["Rss"]


# --- the store's digests ---------------------------------------------------------------------------------


def test_store_takes_digests_from_the_index(tmp_path):
    wiki, lid = tmp_path / "wiki", tmp_path / "lid"
    write_metadata(wiki / "en.tsv", EN, lang="en")
    write_metadata(wiki / "zh_yue.tsv", ZH, lang="zh_yue")
    index = build_lid_metadata(wiki, lid, progress=False)
    # An edit of the list body that keeps the header: the index and the header agree, so the
    # .tsv is not read again (it would be refused); the prebuilt matcher serves the built list.
    tsv = lid / "en.tsv"
    tsv.write_text(tsv.read_text(encoding="utf-8").replace("cat\t", "dog\t"), encoding="utf-8")
    store = MetadataStore(lid)
    assert store.digest("en") == index["en"]["digest"] == entries_digest(EN)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert store.matcher("en").match("a cat") == [0]
    # Without the index the .tsv is hashed as before, and its edit found.
    (lid / "index.json").unlink()
    with pytest.raises(MetadataError, match="en.tsv"):
        MetadataStore(lid).digest("en")
    # An index that disagrees with the .tsv header is not trusted.
    write_metadata(tsv, EN + ["dog"], lang="en")
    (lid / "index.json").write_text(json.dumps(index), encoding="utf-8")
    assert MetadataStore(lid).digest("en") == entries_digest(EN + ["dog"])
    # A junk index is ignored.
    (lid / "index.json").write_text("[" * 100000, encoding="utf-8")
    assert MetadataStore(lid).digest("zh") == entries_digest(ZH)
    # So is one that is a FIFO, without blocking.
    (lid / "index.json").unlink()
    os.mkfifo(lid / "index.json")
    got = {}
    t = threading.Thread(target=lambda: got.setdefault("digest", MetadataStore(lid).digest("zh")), daemon=True)
    t.start()
    t.join(20)
    assert got.get("digest") == entries_digest(ZH)
