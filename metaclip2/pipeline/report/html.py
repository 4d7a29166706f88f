"""The HTML report of a run: one self-contained page (inline CSS, JS and SVG; nothing fetched).

[`render_report`][metaclip2.pipeline.report.html.render_report] turns [`report_data`][metaclip2.pipeline.report.browse.report_data] into the
page. Tables and figures are made here, in Python, so the page reads without JavaScript; the
script only sorts tables, filters the entry browser and steps through the sweep rows computed
here (it computes nothing of the curation itself). A Content-Security-Policy forbids every
request the page could make.
"""

from __future__ import annotations

import json
import math
from html import escape

__all__ = ["render_report", "flattening_svg"]

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1180px;padding:0 18px 60px;color:#1b1b1b}
h1{font-size:22px;margin:18px 0 4px}h2{font-size:18px;border-bottom:1px solid #ccd;padding-bottom:3px;margin-top:30px}
h3{font-size:15px;margin:14px 0 6px}small,.muted{color:#555}code{font-size:12px}
table{border-collapse:collapse;margin:6px 0}th,td{padding:3px 8px;border-bottom:1px solid #e3e3ea;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f8}
table.sortable th{cursor:pointer}table.sortable th[aria-sort=ascending]::after{content:" \\25B2"}
table.sortable th[aria-sort=descending]::after{content:" \\25BC"}
.notes{background:#fff6dd;border:1px solid #e8d48a;padding:6px 12px}.sample{color:#8a1c1c;font-weight:bold}
details{margin:4px 0}summary{cursor:pointer;font-weight:600}.lang{border:1px solid #dde;border-radius:4px;padding:4px 10px;margin:6px 0}
.cols{display:flex;flex-wrap:wrap;gap:18px}.cols>div{flex:1 1 340px;min-width:300px}
ul.ex{margin:2px 0;padding-left:18px}ul.ex li{margin:1px 0}.kept{color:#0b5d1e}.notkept{color:#8a1c1c}
#entry-list{max-height:340px;overflow:auto;border:1px solid #dde;min-width:280px}#entry-list button{display:block;width:100%;text-align:left;
border:0;border-bottom:1px solid #eee;background:none;padding:3px 6px;font:inherit;cursor:pointer}#entry-list button:hover,#entry-list button:focus{background:#eef}
#entry-detail{border:1px solid #dde;padding:6px 12px;min-height:120px}input[type=search]{font:inherit;padding:3px 6px;width:260px}
svg text{font:10px sans-serif;fill:#333}.tctl{display:flex;gap:12px;align-items:center;flex-wrap:wrap}
"""

_JS = r"""
(function(){
"use strict";
function data(id){var el=document.getElementById(id);return el?JSON.parse(el.textContent):null;}
function fmt(x,d){if(x===null||x===undefined)return "-";return Number(x).toLocaleString("en-US",{maximumFractionDigits:d===undefined?1:d});}
function txt(tag,s,cls){var e=document.createElement(tag);e.textContent=s;if(cls)e.className=cls;return e;}
// sortable tables: every column holds data-v (a number) or its text
document.querySelectorAll("table.sortable").forEach(function(tab){
  tab.querySelectorAll("th").forEach(function(th,i){
    th.tabIndex=0;
    function sort(){
      var asc=th.getAttribute("aria-sort")!=="ascending";
      tab.querySelectorAll("th").forEach(function(h){h.removeAttribute("aria-sort");});
      th.setAttribute("aria-sort",asc?"ascending":"descending");
      var body=tab.tBodies[0],rows=Array.prototype.slice.call(body.rows);
      rows.sort(function(a,b){
        var x=a.cells[i].getAttribute("data-v"),y=b.cells[i].getAttribute("data-v");
        if(x!==null&&y!==null){x=parseFloat(x);y=parseFloat(y);return asc?x-y:y-x;}
        x=a.cells[i].textContent;y=b.cells[i].textContent;return asc?x.localeCompare(y):y.localeCompare(x);});
      rows.forEach(function(r){body.appendChild(r);});
    }
    th.addEventListener("click",sort);th.addEventListener("keydown",function(ev){if(ev.key==="Enter")sort();});
  });
});
// the t_en control: picks one of the rows computed in Python
var sw=data("sweep-data");
if(sw&&sw.rows.length){
  var ctl=document.getElementById("t-control"),range=document.getElementById("t-range");
  ctl.hidden=false;
  range.max=sw.rows.length-1;range.value=sw.start;
  function show(){
    var r=sw.rows[+range.value];
    document.getElementById("t-value").textContent=fmt(r.t_en,3);
    document.getElementById("t-p").textContent=fmt(r.p*100,2)+"%";
    document.getElementById("t-pairs").textContent=fmt(r.pairs);
    document.getElementById("t-images").textContent=fmt(r.images);
    var body=document.getElementById("t-langs");body.textContent="";
    Object.keys(r.languages).sort(function(a,b){return r.languages[b].pairs-r.languages[a].pairs;}).forEach(function(l){
      var v=r.languages[l],tr=document.createElement("tr");
      tr.appendChild(txt("td",l));tr.appendChild(txt("td",fmt(v.t,0),"n"));
      tr.appendChild(txt("td",fmt(v.pairs),"n"));tr.appendChild(txt("td",fmt(v.images),"n"));
      tr.setAttribute("data-lang",l);body.appendChild(tr);});
  }
  range.addEventListener("input",show);show();
}
// the entry browser
var entries=data("entry-data");
if(entries&&entries.length){
  var box=document.getElementById("browser");box.hidden=false;
  var q=document.getElementById("entry-search"),sel=document.getElementById("entry-lang"),list=document.getElementById("entry-list"),
      det=document.getElementById("entry-detail");
  function detail(e){
    det.textContent="";
    det.appendChild(txt("h3",e.text));
    var dl=document.createElement("table");
    [["language",e.lang],["source",e.source],["entry id",e.id],["count (matches)",fmt(e.count,0)],
     ["keep probability",e.q===null?"-":fmt(e.q,4)],["part",e.head?"head (count above t)":"tail (sampled)"]].forEach(function(kv){
      var tr=document.createElement("tr");tr.appendChild(txt("th",kv[0]));tr.appendChild(txt("td",String(kv[1])));dl.appendChild(tr);});
    det.appendChild(dl);
    [["kept",e.kept,"kept"],["not kept",e.not_kept,"notkept"]].forEach(function(p){
      det.appendChild(txt("h3","alt-texts "+p[0]+" (seeded sample)"));
      if(!p[1].length){det.appendChild(txt("p","none in the sample","muted"));return;}
      var ul=document.createElement("ul");ul.className="ex "+p[2];
      p[1].forEach(function(s){ul.appendChild(txt("li",s));});det.appendChild(ul);});
  }
  function refresh(){
    var s=q.value.trim().toLowerCase(),l=sel.value,n=0;list.textContent="";
    entries.forEach(function(e,i){
      if(l&&e.lang!==l)return;if(s&&e.text.toLowerCase().indexOf(s)<0)return;
      if(n++>=400)return;
      var b=txt("button",e.lang+" \u00b7 "+e.text+" \u00b7 "+fmt(e.count,0));b.setAttribute("data-entry",i);
      b.addEventListener("click",function(){detail(e);});list.appendChild(b);});
    document.getElementById("entry-count").textContent=n+" shown";
    var exact=entries.filter(function(e){return (!l||e.lang===l)&&s&&e.text.toLowerCase()===s;});
    if(exact.length)detail(exact[0]);
  }
  q.addEventListener("input",refresh);sel.addEventListener("change",refresh);refresh();
}
})();
"""


def _n(x, digits: int = 0) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and not x.is_integer() or digits:
        return f"{x:,.{digits or 1}f}"
    return f"{int(x):,}"


def _td(x, digits: int = 0) -> str:
    v = "" if x is None else f' data-v="{x}"'
    return f'<td class="n"{v}>{_n(x, digits)}</td>'


def _prob(q) -> str:
    return "-" if q is None else f"{q:.4f}"


def _pct(x) -> str:
    return "-" if x is None else f"{x:.1%}"


def _json_script(id_: str, obj) -> str:
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" id="{id_}">{text}</script>'


def flattening_svg(curve: dict, t, lang: str, width: int = 360, height: int = 210) -> str:
    """Log-log ranked entry counts before curation and their expected counts after (``min(c, t)``),
    the head (counts above ``t``) shaded, as inline SVG.

    Examples
    --------
    >>> from metaclip2.pipeline.report.html import flattening_svg
    >>> svg = flattening_svg({"n": 3, "ranks": [1, 2, 3], "counts": [9, 4, 1], "head": 1, "max": 9}, 2, "en")
    >>> svg.startswith("<svg") and "polyline" in svg and "head" in svg
    True
    """
    if not curve or not curve.get("n"):
        return '<p class="muted">no entry of this language matched</p>'
    L, R, T, B = 44, 10, 10, 30
    w, h = width - L - R, height - T - B
    xmax = math.log10(max(curve["n"], 2))
    ymax = math.log10(max(curve["max"], 2)) * 1.05

    def x(r):
        return L + w * math.log10(r) / xmax

    def y(c):
        return T + h - h * math.log10(max(c, 1)) / ymax

    before = " ".join(f"{x(r):.1f},{y(c):.1f}" for r, c in zip(curve["ranks"], curve["counts"]))
    after = " ".join(f"{x(r):.1f},{y(min(c, t) if t is not None else c):.1f}" for r, c in zip(curve["ranks"], curve["counts"]))
    parts = [f'<svg role="img" aria-label="entry counts of {escape(lang)} before and after curation" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">']  # fmt: skip
    if curve["head"]:
        hx = x(max(curve["head"], 1))
        parts.append(f'<rect x="{L}" y="{T}" width="{max(hx - L, 2):.1f}" height="{h}" fill="#f6d7a7" opacity="0.6"/>'
                     f'<text x="{L + 3}" y="{T + 11}">head ({curve["head"]:,} entries above t)</text>')  # fmt: skip
    for k in range(0, int(xmax) + 1):
        parts.append(f'<line x1="{x(10**k):.1f}" x2="{x(10**k):.1f}" y1="{T + h}" y2="{T + h + 4}" stroke="#333"/>'
                     f'<text x="{x(10**k):.1f}" y="{T + h + 15}" text-anchor="middle">{10**k:,}</text>')  # fmt: skip
    for k in range(0, int(ymax) + 1):
        parts.append(f'<line x1="{L - 4}" x2="{L}" y1="{y(10**k):.1f}" y2="{y(10**k):.1f}" stroke="#333"/>'
                     f'<text x="{L - 6}" y="{y(10**k) + 3:.1f}" text-anchor="end">{10**k:,}</text>')  # fmt: skip
    if t is not None and t >= 1:
        parts.append(f'<line x1="{L}" x2="{L + w}" y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="#999" stroke-dasharray="3 3"/>'
                     f'<text x="{L + w}" y="{y(t) - 3:.1f}" text-anchor="end">t = {t:,}</text>')  # fmt: skip
    parts.append(f'<polyline points="{before}" fill="none" stroke="#1f5fa8" stroke-width="1.6"/>')
    parts.append(f'<polyline points="{after}" fill="none" stroke="#c0392b" stroke-width="1.6" stroke-dasharray="5 2"/>')
    parts.append(f'<rect x="{L}" y="{T}" width="{w}" height="{h}" fill="none" stroke="#888"/>')
    parts.append(f'<text x="{L + w / 2:.1f}" y="{height - 3}" text-anchor="middle">entry rank (by count, log)</text>')
    # ranked counts fall from the top left to the bottom right: the bottom left is free
    parts.append(f'<text x="{L + 6}" y="{T + h - 18}" fill="#1f5fa8">— counts before</text>'
                 f'<text x="{L + 6}" y="{T + h - 6}" fill="#c0392b">-- expected after, min(c, t)</text>')  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


def _examples(records: list, cls: str = "", with_entries: bool = False) -> str:
    if not records:
        return '<p class="muted">none in the sample</p>'
    items = []
    for r in records:
        extra = f' <small>→ {escape(", ".join(r["entries"]))}</small>' if with_entries and r.get("entries") else ""
        items.append(f"<li>{escape(r['text'])}{extra}</li>")
    return f'<ul class="ex {cls}">{"".join(items)}</ul>'


def render_report(data: dict) -> str:
    """The page of [`report_data`][metaclip2.pipeline.report.browse.report_data] as one HTML string.

    Examples
    --------
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> from metaclip2.pipeline.builds.demo import write_example_pool
    >>> _ = write_example_pool(d)  # metadata/ (en, de) and pool.jsonl: six images
    >>> from metaclip2.pipeline import curate
    >>> from metaclip2.pipeline.report.browse import report_data
    >>> from metaclip2.pipeline.report.html import render_report
    >>> _ = curate(f"{d}/metadata", f"{d}/pool.jsonl", out=f"{d}/run", t_en=2)
    >>> page = render_report(report_data(f"{d}/run"))
    >>> page.startswith("<!DOCTYPE html>"), "http://" in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    (True, False)
    >>> tmp.cleanup()
    """
    card = data["card"]
    tot = card["totals"]
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
           "script-src 'unsafe-inline'; img-src data:\">",
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>metaclip2 report: {escape(data['run'])}</title><style>{_CSS}</style></head><body>"]  # fmt: skip
    out.append(f"<h1>Curation report</h1><p class=\"muted\">run <code>{escape(data['run'])}</code> · "
               f"{'complete' if card['complete'] else '<strong>incomplete</strong>'} · made by metaclip2</p>")  # fmt: skip
    if card.get("sample_data"):
        out.append('<p class="sample">SAMPLE DATA (generated; not real web data)</p>')
    if data["notes"]:
        out.append('<div class="notes"><strong>What this report lacks</strong><ul>' + "".join(f"<li>{escape(n)}</li>" for n in data["notes"]) + "</ul></div>")
    out.append('<nav><a href="#run">run</a> · <a href="#accounting">accounting</a> · <a href="#languages">languages</a> · '
               '<a href="#sweep">t_en</a> · <a href="#entries">entries</a> · <a href="#per-language">per language</a> · '
               '<a href="#no-metadata">no metadata</a></nav>')  # fmt: skip

    # -- the run
    out.append('<h2 id="run">Run</h2><div class="cols"><div><details><summary>parameters</summary><table id="parameters"><tbody>')
    for stage, params in card.get("parameters", {}).items():
        for k, v in params.items():
            out.append(f"<tr><th>{escape(stage)}</th><td>{escape(k)}</td><td>{escape(json.dumps(v, ensure_ascii=False))}</td></tr>")
    out.append("</tbody></table></details>")
    inputs = card.get("inputs", [])
    out.append(f"<h3>Inputs ({len(inputs):,} shards)</h3><ul>" + "".join(f"<li><code>{escape(str(p))}</code></li>" for p in inputs[:12])
               + (f"<li>… and {len(inputs) - 12:,} more</li>" if len(inputs) > 12 else "") + "</ul>")  # fmt: skip
    out.append(f"<p>metadata: <code>{escape(str(card.get('metadata')))}</code></p>")
    digests = card.get("metadata_digests", {})
    out.append(f"<details><summary>metadata digests ({len(digests)} languages)</summary><table><tbody>"
               + "".join(f"<tr><td>{escape(k)}</td><td><code>{escape(str(v))}</code></td></tr>" for k, v in digests.items())
               + "</tbody></table></details></div>")  # fmt: skip

    # -- accounting
    out.append('<div><h3 id="accounting">Accounting</h3><p class="muted">Every input pair (image, alt-text) ends in exactly one row.</p>'
               '<table id="accounting-table"><tbody>')  # fmt: skip
    rows = [("kept", tot.get("kept")), ("not kept (sampled out)", tot.get("not_kept")), ("matched nothing", tot.get("unmatched")),
            ("no metadata for their language", tot.get("no_metadata"))]  # fmt: skip
    rows += [(f"invalid: {reason}", n) for reason, n in tot.get("invalid_by_reason", {}).items()]
    for label, n in rows:
        out.append(f"<tr><td>{escape(label)}</td>{_td(n)}</tr>")
    out.append(f"<tr><th>pairs in</th>{_td(tot.get('pairs'))}</tr></tbody></table>")
    out.append(f"<p>images: {_n(tot.get('images'))} · images kept: {_n(tot.get('kept_images'))} · "
               f"damaged container stretches: {len(card.get('damaged', []))} · English tail share p = {_pct(card.get('p'))}</p>")  # fmt: skip
    if card.get("damaged"):
        out.append("<table><thead><tr><th>shard</th><th>where</th><th>error</th><th>records lost</th></tr></thead><tbody>"
                   + "".join(f"<tr><td>{escape(str(d.get('shard')))}</td><td>{escape(str(d.get('where')))}</td>"
                             f"<td>{escape(str(d.get('error')))}</td><td>{escape(str(d.get('lost')))}</td></tr>" for d in card["damaged"][:50])
                   + "</tbody></table>")  # fmt: skip
    out.append("</div></div>")

    # -- languages
    out.append('<h2 id="languages">Languages</h2><p class="muted">Click a column to sort. Tail share: the share of a language\'s '
               "matches in entries counted at or below its threshold t.</p>"
               '<table class="sortable" id="language-table"><thead><tr><th>language</th><th class="n">pairs</th><th class="n">matched</th>'
               '<th class="n">kept</th><th class="n">t</th><th class="n">tail share</th><th class="n">entries hit</th>'
               '<th class="n">entries</th></tr></thead><tbody>')  # fmt: skip
    for lang, d in sorted(card["languages"].items(), key=lambda kv: (-kv[1]["pairs"], kv[0])):
        ts = d.get("tail_share")
        out.append(f'<tr data-lang="{escape(lang)}"><td><a href="#lang-{escape(lang)}">{escape(lang)}</a></td>{_td(d["pairs"])}{_td(d["matched"])}'
                   f'{_td(d.get("kept"))}{_td(d.get("t"))}<td class="n"{"" if ts is None else f" data-v={ts:.6f}"}>{_pct(ts)}</td>'
                   f'{_td(d.get("entries_matched"))}{_td(d.get("entries"))}</tr>')  # fmt: skip
    out.append("</tbody></table>")

    # -- sweep
    sw = data.get("sweep")
    out.append('<h2 id="sweep">Choosing t_en</h2>')
    if sw:
        run_t = sw["run_t_en"]
        start = next((i for i, r in enumerate(sw["rows"]) if r["t_en"] == run_t), 0)
        out.append(f"<p>Expected kept sizes (unit = {escape(sw['unit'])}, English = {escape(sw['english'])}) of "
                   f"{sw['matched_pairs']:,} matched pairs in {sw['matched_images']:,} images, computed when this report was "
                   f"written by the kernel of <code>metaclip2 sweep</code>. This run used t_en = {_n(run_t)}.</p>")  # fmt: skip
        out.append('<div id="t-control" hidden><div class="tctl"><label for="t-range">t_en</label>'
                   '<input type="range" id="t-range" min="0" step="1" aria-describedby="t-value"> '
                   '<span>t_en = <strong id="t-value"></strong></span><span>p = <strong id="t-p"></strong></span>'
                   '<span>kept pairs <strong id="t-pairs"></strong></span><span>kept images <strong id="t-images"></strong></span></div>'
                   '<table><thead><tr><th>language</th><th class="n">t</th><th class="n">kept pairs</th><th class="n">kept images</th></tr>'
                   '</thead><tbody id="t-langs"></tbody></table></div>')  # fmt: skip
        out.append('<details><summary>all t_en values (table)</summary><table id="sweep-table"><thead><tr><th class="n">t_en</th><th class="n">p</th>'
                   '<th class="n">kept pairs</th><th class="n">kept images</th></tr></thead><tbody>')  # fmt: skip
        for r in sw["rows"]:
            mark = ' class="this-run"' if r["t_en"] == run_t else ""
            out.append(f"<tr{mark}>{_td(r['t_en'])}<td class=\"n\">{r['p']:.2%}</td>{_td(r['pairs'], 1)}{_td(r['images'], 1)}</tr>")
        out.append("</tbody></table></details>")
        out.append(_json_script("sweep-data", {"rows": sw["rows"], "start": start}))
    else:
        out.append('<p class="muted">No sweep: stage 2 has not run, or the pool has neither English matches nor a fixed p.</p>')

    # -- entries
    out.append('<h2 id="entries">Entries</h2><p>Per language, the head entries of highest count and a seeded sample of tail entries, '
               "with a seeded sample of alt-texts kept and not kept.</p>"
               '<noscript><p>The entry browser needs JavaScript; the head entries of each language are listed below.</p></noscript>')  # fmt: skip
    langs_with = sorted({e["lang"] for e in data["entries"]})
    out.append('<div id="browser" hidden><p><label>search <input type="search" id="entry-search" placeholder="an entry, e.g. dog"></label> '
               '<label>language <select id="entry-lang"><option value="">all</option>'
               + "".join(f'<option value="{escape(lang)}">{escape(lang)}</option>' for lang in langs_with)
               + '</select></label> <small id="entry-count"></small></p><div class="cols"><div id="entry-list"></div>'
               '<div id="entry-detail"><p class="muted">pick an entry</p></div></div></div>')  # fmt: skip
    out.append(_json_script("entry-data", data["entries"]))

    # -- per language
    out.append('<h2 id="per-language">Per language</h2>')
    for lang, d in sorted(card["languages"].items(), key=lambda kv: (-kv[1]["pairs"], kv[0])):
        row = data["languages"][lang]
        out.append(f'<details class="lang" id="lang-{escape(lang)}"><summary>{escape(lang)} · {d["pairs"]:,} pairs · '
                   f'{d["matched"]:,} matched · {_n(d.get("kept"))} kept · t = {_n(d.get("t"))}</summary><div class="cols"><div>')  # fmt: skip
        out.append(flattening_svg(row["curve"], d.get("t"), lang) if row["curve"] else '<p class="muted">no counts (stage 2 has not run)</p>')
        if row["head"]:
            out.append('<table><caption>head entries</caption><thead><tr><th>entry</th><th>source</th><th class="n">count</th>'
                       '<th class="n">keep prob.</th></tr></thead><tbody>'
                       + "".join(f"<tr><td>{escape(e['text'])}</td><td>{escape(e['source'])}</td>{_td(e['count'])}"
                                 f'<td class="n">{_prob(e["q"])}</td></tr>' for e in row["head"][:10])
                       + "</tbody></table>")  # fmt: skip
        out.append("</div><div><h3>matched (sample)</h3>" + _examples(row["matched"], with_entries=True))
        out.append("<h3>matched nothing (sample)</h3>" + _examples(row["unmatched"]))
        if row["lid_changes"]:
            out.append("<h3>LID labels the script check changed</h3><table><tbody>"
                       + "".join(f"<tr><td>{escape(k)}</td>{_td(v)}</tr>" for k, v in row["lid_changes"].items()) + "</tbody></table>")  # fmt: skip
        out.append("</div></div></details>")

    # -- no metadata
    out.append('<h2 id="no-metadata">No metadata</h2>')
    labels = card.get("no_metadata_labels", {})
    if labels:
        out.append('<table class="sortable" id="no-metadata-table"><thead><tr><th>LID label</th><th class="n">pairs</th><th>examples</th></tr></thead><tbody>')
        for label, n in sorted(labels.items(), key=lambda kv: (-kv[1], kv[0]))[:200]:
            out.append(f"<tr><td>{escape(label)}</td>{_td(n)}<td>{_examples(data['no_metadata'].get(label, []))}</td></tr>")
        out.append("</tbody></table>")
    else:
        out.append('<p class="muted">Every pair\'s language had metadata.</p>')
    if card.get("lid_changes"):
        out.append("<h3>LID labels the script check changed (all)</h3><table><tbody>"
                   + "".join(f"<tr><td>{escape(k)}</td>{_td(v)}</tr>" for k, v in list(card["lid_changes"].items())[:100]) + "</tbody></table>")  # fmt: skip
    out.append(f"<script>{_JS}</script></body></html>\n")
    return "\n".join(out)
