"""Dump-to-text throughput: metaclip2's extractor vs wikiextractor, on the same dump, in one run.

Usage::

    python benchmarks/bench_wikitext.py [DUMP.xml.bz2] [--repeat 3]

Defaults to the shared English sample (../shared/data/wikipedia). Throughput is MB of
(uncompressed) XML per second, single process, best of ``--repeat`` runs. Both extractors get
the same articles (ns 0, not redirects) read by the same XML scan (timed separately and added
to both); wikiextractor runs in-process through its ``Extractor.clean_text`` (template
expansion on, no template definitions, as its CLI does on a dump without templates). Also
prints leftover markup counts in both outputs ("cleanliness"), and our line scanner against
``xml.etree.ElementTree.iterparse``.
"""

from __future__ import annotations

import argparse
import bz2
import logging
import time
from pathlib import Path

from metaclip2.metadata.wikitext import _context, _render, iter_articles, read_siteinfo

DEFAULT = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "wikipedia"
    / "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
)
MARKUP = ["{{", "}}", "[[", "]]", "|", "<ref", "thumb", "{|", "|-", "=="]


def _best(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def _iterparse_pages(path: Path) -> int:
    import xml.etree.ElementTree as ET

    n = 0
    with bz2.open(path, "rb") as f:
        for _, elem in ET.iterparse(f):
            if elem.tag.endswith("}page"):
                n += 1
                elem.clear()
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dump", nargs="?", type=Path, default=DEFAULT)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from wikiextractor.extract import Extractor

    logging.disable(logging.WARNING)
    path: Path = args.dump
    with bz2.open(path, "rb") if path.suffix == ".bz2" else open(path, "rb") as f:
        xml_mb = len(f.read()) / 2**20

    t_read, pages = _best(lambda: list(iter_articles(path)), args.repeat)
    t_iterparse, _ = _best(lambda: _iterparse_pages(path), 1)
    ctx = _context(read_siteinfo(path))

    def ours():
        return [_render(p.text, ctx) for p in pages]

    def theirs():
        out = []
        for i, p in enumerate(pages):
            ex = Extractor(i, 0, "", p.title, [p.text])
            out.append("\n".join(ex.clean_text(p.text)))
        return out

    t_ours, ours_out = _best(ours, args.repeat)
    t_theirs, theirs_out = _best(theirs, args.repeat)
    mbps_ours = xml_mb / (t_read + t_ours)
    mbps_theirs = xml_mb / (t_read + t_theirs)

    print(f"dump: {path.name}  ({xml_mb:.2f} MB XML, {len(pages)} articles)")
    print(f"XML scan: line scanner {xml_mb / t_read:6.2f} MB/s   iterparse {xml_mb / t_iterparse:6.2f} MB/s   "
          f"(ratio {t_iterparse / t_read:.2f}x)")
    print(f"metaclip2    : {mbps_ours:6.2f} MB/s  (render {t_ours:.2f} s + scan {t_read:.2f} s)")
    print(f"wikiextractor: {mbps_theirs:6.2f} MB/s  (render {t_theirs:.2f} s + scan {t_read:.2f} s)")
    print(f"ratio metaclip2 / wikiextractor: {mbps_ours / mbps_theirs:.2f}x")
    a, b = "\n".join(ours_out), "\n".join(theirs_out)
    print(f"\nleftover markup     {'metaclip2':>10} {'wikiextractor':>14}")
    for m in MARKUP:
        print(f"  {m!r:18}{a.count(m):>10} {b.count(m):>14}")
    print(f"  {'characters':18}{len(a):>10} {len(b):>14}")


if __name__ == "__main__":
    main()
