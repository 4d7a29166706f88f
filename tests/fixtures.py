"""Helpers the tests share (plain functions, imported by the test modules; tests/ is on sys.path
under pytest's rootdir conftest): small metadata directories, random pools of images with
alt-texts in several languages, a run directory's files as bytes, and Wikipedia dumps rewritten
as multistream bz2.
"""

from __future__ import annotations

import bz2
import json
import random
from pathlib import Path
from typing import Iterable

from metaclip2.core.entries import write_metadata

#: Metadata entries per language ("other" takes the languages without their own).
META = {
    "en": ["cat", "dog", "red car", "house", "tree", "sky", "the"],
    "de": ["Hund", "Katze", "Haus", "Baum", "der"],
    "zh": ["猫", "狗", "房子", "大"],
    "other": ["kot", "pies", "dom"],
}
#: Words the random alt-texts are made of, per language.
WORDS = {
    "en": "cat dog red car house tree sky the a big small on".split(),
    "de": "Hund Katze Haus Baum der die das klein".split(),
    "zh": list("猫狗房子大小的"),
    "pl": "kot pies dom i na".split(),  # no metadata of its own: goes to "other"
}


def make_metadata(path: Path, meta: dict[str, list[str]] = META) -> Path:
    """A metadata directory: one ``<lang>.tsv`` per language of `meta`."""
    for lang, entries in meta.items():
        write_metadata(path / f"{lang}.tsv", entries, lang=lang)
    return path


def random_texts(rnd: random.Random, words: dict[str, list[str]] = WORDS, max_texts: int = 3, max_words: int = 4) -> list[dict]:
    """1..`max_texts` alt-texts ``{"text", "lang"}`` of 1..`max_words` words each (no spaces in zh)."""
    texts = []
    for _ in range(rnd.randint(1, max_texts)):
        lang = rnd.choice(list(words))
        sep = "" if lang == "zh" else " "
        texts.append({"text": sep.join(rnd.choice(words[lang]) for _ in range(rnd.randint(1, max_words))), "lang": lang})
    return texts


def make_images(seed: int, n: int, prefix: str, words: dict[str, list[str]] = WORDS) -> list[dict]:
    """`n` images ``{"id": prefix + i, "texts": [...]}`` with random alt-texts."""
    rnd = random.Random(seed)
    return [{"id": f"{prefix}{i}", "texts": random_texts(rnd, words)} for i in range(n)]


def write_jsonl(path: Path, images: list[dict]) -> Path:
    """`images` as a JSONL shard, one record per line."""
    path.write_text("".join(json.dumps(im, ensure_ascii=False) + "\n" for im in images), encoding="utf-8")
    return path


def tree(path: Path, skip: Iterable[str] = ()) -> dict[str, bytes]:
    """Every file below `path` (relative name -> bytes), but those named in `skip`."""
    skip = set(skip)
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file() and p.name not in skip}


def multistream(src: Path, dst: Path, *, n_pages: int | None = None, pages_per_stream: int = 7, cut_bytes: int | None = None) -> Path:
    """Rewrite a dump as a multistream bz2: a header stream, page streams, a footer stream.

    With `n_pages` only the first pages are kept. With ``cut_bytes`` the page text is cut into
    streams of that many bytes instead, so streams end inside lines, pages and multi-byte
    characters.
    """
    head, pages, cur, in_pages = [], [], [], False
    with bz2.open(src, "rt", encoding="utf-8") as f:
        for line in f:
            s = line.strip()
            in_pages = in_pages or s.startswith("<page")
            if not in_pages:
                head.append(line)
            elif s != "</mediawiki>":
                cur.append(line)
                if s == "</page>":
                    pages.append("".join(cur))
                    cur = []
                    if len(pages) == n_pages:
                        break
    with open(dst, "wb") as out:
        out.write(bz2.compress("".join(head).encode("utf-8")))
        if cut_bytes:
            body = "".join(pages).encode("utf-8")
            for i in range(0, len(body), cut_bytes):
                out.write(bz2.compress(body[i : i + cut_bytes]))
        else:
            for i in range(0, len(pages), pages_per_stream):
                out.write(bz2.compress("".join(pages[i : i + pages_per_stream]).encode("utf-8")))
        out.write(bz2.compress(b"</mediawiki>\n"))
    return dst
