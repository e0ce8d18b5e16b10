"""The HTML report of an enhance run: one self-contained file an operator opens anywhere.

Built from the run's own result rows at the end of the run and written to
`<output>/_results/report.html` and `report-<run_id>.html` (also logged to the run's MLflow run). Everything is inline
(CSS, thumbnails as base64 JPEG, histograms as base64 PNG), so the file renders straight from
S3, an MLflow artifact or an e-mail attachment. Every string that comes from the data (member
names, error texts, URLs) is HTML-escaped and redacted: member names are hostile input.

The work is bounded whatever the run's size: at most `THUMBS_PER_ROUTE` thumbnails per route,
from images of at most `THUMB_MAX_PIXELS`, reading at most `SCAN_BYTES` of input in all to
find them again; at most `MAX_FAILURES` failure rows listed.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import time
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np
import pandas as pd
import pyarrow as pa
from PIL import Image

from pipeline.enhance.write import output_url
from pipeline.imageops import split_alpha, to_float
from pipeline.io import results, storage
from pipeline.io.codecs import decode
from pipeline.io.readers import ReadLimits, iter_members
from pipeline.io.schema import FULL_REFERENCE_METRICS, NO_REFERENCE_METRICS
from pipeline.io.sources import Source, archive_kind
from pipeline.labels import PASSTHROUGH

log = logging.getLogger("imgenhance")

REPORT_NAME = "report.html"
METRICS = NO_REFERENCE_METRICS + FULL_REFERENCE_METRICS
COLUMNS = ["key", "source", "member", "status", "error", "domain", "degradation", "enhancer", "model", "height", "width",
           *[f"{m}_{when}" for m in METRICS for when in ("before", "after")]]
"""The result columns the report and the run facts read (never the pixel-sized ones)."""
THUMBS_PER_ROUTE = 3
THUMB_SIDE = 160
THUMB_MAX_PIXELS = 16_000_000  # a bigger image is not decoded just for a thumbnail
SCAN_BYTES = 256 << 20  # input bytes read at most, in all, to find the thumbnails' inputs again
MAX_FAILURES = 200

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ccc}
table{border-collapse:collapse;background:#fff}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
th{background:#eef2f7}td.n{text-align:right}.meta{color:#555}.bad{color:#b00020}
.pairs{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;background:#fff;border:1px solid #ddd;padding:6px}
figure img{width:160px;height:auto;margin-right:4px;image-rendering:pixelated}
figcaption{font-size:12px;max-width:330px;word-break:break-all}code{font-size:12px}
"""


def _e(value: Any) -> str:
    """Text from the data, safe to put in HTML: redacted, then escaped (quotes too)."""
    return html.escape(storage.redact("" if value is None else str(value)), quote=True)


def _frame(rows: pa.Table) -> pd.DataFrame:
    return rows.select([c for c in COLUMNS if c in rows.column_names]).to_pandas()


def gains(rows: pa.Table | pd.DataFrame) -> pd.DataFrame:
    """Per ok, enhanced row: the route and `<metric>` = after - before (NaN where unmeasured, or
    where PSNR is infinite: an image identical to its reference). Passthrough rows are left
    out: their gain is zero by construction."""
    df = _frame(rows) if isinstance(rows, pa.Table) else rows
    df = df[(df["status"] == "ok") & df["enhancer"].notna() & (df["enhancer"] != PASSTHROUGH)]
    out = pd.DataFrame({m: df[f"{m}_after"] - df[f"{m}_before"] for m in METRICS}).replace([np.inf, -np.inf], np.nan)
    return out.assign(enhancer=df["enhancer"])


def mean_gains(rows: pa.Table) -> dict[str, dict[str, float]]:
    """{route: {metric: mean(after - before)}} over the route's ok rows that have the metric."""
    means = gains(rows).groupby("enhancer").mean()
    return {route: {m: round(float(v), 6) for m, v in values.items() if pd.notna(v)}
            for route, values in means.iterrows()}


def models_by_route(rows: pa.Table) -> dict[str, str]:
    """{route: the model reference(s) its rows record}, e.g. 'models:/denoise/3'."""
    df = _frame(rows)
    df = df[df["enhancer"].notna() & df["model"].notna()]
    return {route: ", ".join(sorted(set(group))) for route, group in df.groupby("enhancer")["model"]}


def _data_uri(image: Image.Image, fmt: str) -> str:
    buf = io.BytesIO()
    image.save(buf, fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buf.getvalue()).decode()


def thumbnail(data: bytes) -> str:
    """Image bytes -> a JPEG data URI at most THUMB_SIDE px a side (8-bit, alpha dropped)."""
    colour = to_float(split_alpha(decode(data, THUMB_MAX_PIXELS).pixels)[0])
    height, width = colour.shape[:2]
    scale = min(1.0, THUMB_SIDE / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(colour, size, interpolation=cv2.INTER_AREA) if scale < 1 else colour
    return _data_uri(Image.fromarray(np.squeeze(np.rint(small * 255).astype(np.uint8))), "JPEG")


def _picks(df: pd.DataFrame) -> pd.DataFrame:
    """The first few ok rows of every route (by key), small enough to decode cheaply."""
    ok = df[(df["status"] == "ok") & df["enhancer"].notna() & (df["height"] * df["width"] <= THUMB_MAX_PIXELS)]
    return ok.sort_values("key").groupby("enhancer").head(THUMBS_PER_ROUTE)


def _scan(source: str, group: pd.DataFrame, options: Mapping[str, Any] | None, found: dict[str, bytes],
          budget: int) -> int:
    """Read one source again, at most `budget` bytes of it, for the input bytes of `group`'s
    keys; returns the bytes read."""
    wanted, kind = set(group["key"]), archive_kind(source) or "loose"
    members = tuple(group["member"]) if kind == "loose" else ()
    stream = iter_members(Source(kind, source, group["key"].iloc[0].split("/", 1)[0], members),
                          options, ReadLimits(max_member_bytes=SCAN_BYTES))
    scanned = 0
    try:
        for row in stream:
            if row["key"] in wanted and row.get("data"):
                found[row["key"]] = row["data"]
            scanned += row.get("input_bytes") or 0
            if wanted <= found.keys() or scanned > budget:
                break
    finally:
        stream.close()
    return scanned


def _inputs(picks: pd.DataFrame, options: Mapping[str, Any] | None) -> dict[str, bytes]:
    """{key: input bytes} of the picked rows, each source read once, SCAN_BYTES read in all; an
    unreadable source only leaves its 'before' thumbnails out."""
    found: dict[str, bytes] = {}
    budget = SCAN_BYTES
    for source, group in picks.groupby("source"):
        if "***" in source or budget <= 0:  # "***": credentials were redacted out of this URL
            continue
        try:
            budget -= _scan(source, group, options, found, budget)
        except Exception as exc:
            log.warning("report: inputs of %s not read: %s", storage.redact(source), storage.redact(repr(exc)))
    return found


def _pair(row: pd.Series, before: bytes | None, output: str, options: Mapping[str, Any] | None) -> str:
    """A figure with the before and after thumbnails of one row (a note where one is missing)."""
    cells = []
    for label, load in (("before", lambda: before), ("after", lambda: _read(output_url(output, row["key"]), options))):
        try:
            data = load()
            cells.append(f'<img alt="{label}" title="{label}" src="{thumbnail(data)}">' if data else f"<i>{label}: not read</i>")
        except Exception as exc:  # a thumbnail is a nicety: say why it is missing, go on
            cells.append(f'<i class="bad">{label}: {_e(type(exc).__name__)}</i>')
    measured = [f"{m} {row[f'{m}_before']:.3g}&rarr;{row[f'{m}_after']:.3g}"
                for m in ("psnr", "noise") if pd.notna(row[f"{m}_before"]) and pd.notna(row[f"{m}_after"])]
    return f"<figure>{''.join(cells)}<figcaption><code>{_e(row['key'])}</code><br>{' · '.join(measured)}</figcaption></figure>"


def _read(url: str, options: Mapping[str, Any] | None) -> bytes:
    fs, path = storage.filesystem(url, options)
    return fs.cat_file(path)


def _thumbnails(df: pd.DataFrame, output: str, options: Mapping[str, Any] | None) -> str:
    picks = _picks(df)
    inputs = _inputs(picks, options)
    parts = []
    for route, group in picks.groupby("enhancer"):
        figures = "".join(_pair(row, inputs.get(row["key"]), output, options) for _, row in group.iterrows())
        parts.append(f"<h3>{_e(route)}</h3><div class='pairs'>{figures}</div>")
    return "".join(parts) or "<p>No image was enhanced in this run.</p>"


def _histograms(df: pd.DataFrame) -> str:
    """One PNG per route: a histogram of the after - before change of every measured metric."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers
    import matplotlib.pyplot as plt

    parts = []
    for route, group in gains(df).groupby("enhancer"):
        measured = [m for m in METRICS if group[m].notna().any()]
        if not measured:
            continue
        cols, rows = min(3, len(measured)), -(-len(measured) // 3)
        fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.0 * rows), dpi=80, squeeze=False)
        for ax in axes.flat[len(measured):]:
            ax.axis("off")
        for ax, metric in zip(axes.flat, measured):
            ax.hist(group[metric].dropna(), bins=20, color="#3b6ea8")
            ax.axvline(0, color="#b00020", lw=1)
            ax.set_title(f"{metric} (n={group[metric].notna().sum()})", fontsize=9)
            ax.tick_params(labelsize=7)
            ax.locator_params(axis="x", nbins=4)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
        uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
        parts.append(f"<h3>{_e(route)}</h3><img alt='metric gains of {_e(route)}' src='{uri}'>")
    return "".join(parts) or "<p>No metric was measured before and after.</p>"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td class='n'>{v}</td>" if isinstance(v, (int, np.integer))
                                    else f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _counts(df: pd.DataFrame) -> str:
    counts = pd.crosstab(df["enhancer"].fillna("-"), df["status"])
    statuses = [s for s in ("ok", "failed", "skipped") if s in counts.columns]
    rows = [[route, *[int(counts.at[route, s]) for s in statuses], int(counts.loc[route].sum())] for route in counts.index]
    return _table(["route", *statuses, "rows"], rows)


def _domains(df: pd.DataFrame) -> str:
    """Classified rows: domain x detected degradation."""
    if "domain" not in df or "degradation" not in df or df["degradation"].isna().all():
        return "<p>No classified rows.</p>"
    counts = pd.crosstab(df["domain"].fillna("-"), df["degradation"].fillna("-"))
    rows = [[domain, *[int(counts.at[domain, d]) for d in counts.columns]] for domain in counts.index]
    return _table(["domain \\ degradation", *counts.columns], rows)


def _failures(df: pd.DataFrame) -> str:
    bad = df[df["status"] != "ok"].sort_values("key")
    shown = [[r.key, r.status, r.error] for r in bad.head(MAX_FAILURES).itertuples()]
    more = f"<p>{len(bad) - MAX_FAILURES} more: query the Parquet.</p>" if len(bad) > MAX_FAILURES else ""
    return (_table(["key", "status", "reason"], shown) + more) if shown else "<p>None.</p>"


def _models(df: pd.DataFrame) -> str:
    used = df[df["enhancer"].notna()].fillna({"model": "-"}).groupby(["enhancer", "model"]).size()
    return _table(["route", "model (pinned reference)", "rows"], [[r, m, int(n)] for (r, m), n in used.items()])


def build(rows: pa.Table, output: str, options: Mapping[str, Any] | None, summary: Mapping[str, Any] | None = None) -> str:
    """The report as one HTML string; `summary` (the run's) adds timing and the audit verdict."""
    df, summary = _frame(rows), dict(summary or {})
    audit = summary.get("audit", {})
    verdict = "" if not audit else ("audit: invariant holds" if audit.get("invariant_holds") else "audit: INVARIANT VIOLATED")
    meta = " · ".join(_e(x) for x in (
        f"output {storage.redact(output)}", f"{len(df)} rows",
        f"{summary['seconds']} s, {summary['images_per_s']} images/s" if "seconds" in summary else "", verdict) if x)
    run_id = _e(summary.get("run_id", ""))
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>imgenhance run {run_id}</title>"
        f"<style>{CSS}</style></head><body><h1>Enhance run {run_id}</h1><p class='meta'>{meta}</p>"
        f"<h2>Rows by route and status</h2>{_counts(df)}"
        f"<h2>Rows by domain and degradation</h2>{_domains(df)}"
        f"<h2>Before / after (first {THUMBS_PER_ROUTE} per route)</h2>{_thumbnails(df, output, options)}"
        f"<h2>Metric change per route (after &minus; before; noise: lower is better)</h2>{_histograms(df)}"
        f"<h2>Models used</h2>{_models(df)}"
        f"<h2>Failed and skipped members ({int((df['status'] != 'ok').sum())})</h2>{_failures(df)}"
        f"<p class='meta'>Generated {time.strftime('%Y-%m-%d %H:%M:%S %Z')} by pipeline/report.py.</p></body></html>"
    )


def report_url(output: str) -> str:
    return storage.join(results.results_url(output), REPORT_NAME)


def publish(output: str, options: Mapping[str, Any] | None, rows: pa.Table, summary: Mapping[str, Any]) -> str | None:
    """Build and write `_results/report.html` (the latest run's) and `_results/report-<run_id>.html`
    (kept, like the run's summary); the first's redacted URL, or None (with a warning) when it
    could not be made: a report never fails the run it reports on."""
    started = time.monotonic()
    try:
        text = build(rows, output, options, summary).encode()
        fs, path = storage.filesystem(report_url(output), options)
        if summary.get("run_id"):
            fs.pipe_file(path[: -len(REPORT_NAME)] + f"report-{summary['run_id']}.html", text)
        fs.pipe_file(path, text)
    except Exception as exc:
        log.warning("report not written: %s", storage.redact(f"{type(exc).__name__}: {exc}"))
        return None
    log.info("report: %s (%.0f KB in %.1f s)", storage.redact(report_url(output)), len(text) / 1024, time.monotonic() - started)
    return storage.redact(report_url(output))


def load(output: str, options: Mapping[str, Any] | None) -> str | None:
    """The report's HTML, or None when the run wrote none."""
    fs, path = storage.filesystem(report_url(output), options)
    return fs.cat_file(path).decode() if fs.exists(path) else None
