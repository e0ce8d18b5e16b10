"""Compare registered versions of a model on a benchmark suite, and guard the `champion` alias.

Each version is evaluated as `models:/<name>/<version>` by a benchmark suite's own code (its
`run(conf, seed)` with `conf["models"]` set), so compare figures are the ones
`python -m jobs.benchmark` gives. Which suite and metrics fit a model lives in
conf/benchmarks.yaml under `compare:` (`CompareConf`): by registered name, else by the
architecture's kind. `decide` is the promotion rule, pure so it can be read and tested alone:
the best version by the primary metric becomes champion only if it beats the current
champion by more than `margin` and loses at most `tolerance` on the secondary metric; with no
champion yet the best one becomes champion. A tie or a loss never promotes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import Field, model_validator

from pipeline.config import Strict

CHAMPION = "champion"
# Row columns that do not name a suite setting (the classifier suite's predictions and the
# true degradation of its examples included: its per-setting table is per true domain).
NOT_SETTINGS = {"model", "image", "version", "height", "width", "degradation", "predicted_domain",
                "predicted_degradation", "detector_degradation", "decided_by", "sees_picture"}


class Metric(Strict):
    name: str
    """A numeric column of the suite's rows (e.g. psnr, ssim, mse); versions compare by its mean."""
    higher_is_better: bool = True

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value


class CompareRule(Strict):
    suite: str
    """Benchmark suite (a key of `suites` in conf/benchmarks.yaml) that evaluates each version."""
    primary: Metric = Metric(name="psnr")
    secondary: Metric | None = None
    margin: float = Field(0.0, ge=0)
    """The best version must beat the champion on the primary metric by more than this."""
    tolerance: float = Field(0.0, ge=0)
    """...and may be worse than the champion on the secondary metric by at most this."""
    settings: dict[str, Any] = Field(default_factory=dict)
    """Overrides of the suite's config for comparisons (e.g. one dataset and sigma: quick)."""


class CompareConf(Strict):
    models: dict[str, CompareRule] = Field(default_factory=dict)
    """Rules by registered model name; they win over `kinds`."""
    kinds: dict[str, CompareRule] = Field(default_factory=dict)
    """Rules by the architecture's kind (pipeline.models KINDS): `<kind>-gray` or
    `<kind>-color` for 1- or 3-channel models first, then `<kind>`."""

    def rule(self, name: str, architecture: Callable[[], tuple[str, int]]) -> CompareRule:
        """The rule for model `name`; `architecture()` -> (kind, channels) is only asked when needed."""
        if name in self.models:
            return self.models[name]
        kind, channels = architecture()
        for key in (f"{kind}-{'gray' if channels == 1 else 'color'}", kind):
            if key in self.kinds:
                return self.kinds[key]
        raise LookupError(f"no compare rule for model {name!r} (a {kind} model, {channels} channels): add one "
                          f"under compare.models or compare.kinds in conf/benchmarks.yaml, or pass --suite")


@dataclass(frozen=True)
class Decision:
    promote: bool
    version: str | None
    """The version that is (or would become) champion; None when nothing was measured."""
    reason: str


def version_of(ref: str, name: str) -> str:
    """'models:/name/3' -> '3'."""
    prefix = f"models:/{name}/"
    if not ref.startswith(prefix):
        raise ValueError(f"suite row for {ref!r} is not a version of {name!r}")
    return ref[len(prefix):]


def evaluate(run_suite: Callable[[dict, int], list[dict]], suite_conf: dict, name: str, versions: list[str],
             tracking_uri: str, seed: int) -> pd.DataFrame:
    """The suite's rows for every version (a `version` column added). Rows of the suite's own
    baselines (the sr-x4 bicubic row, jpeg-table's decoded JPEG) are left out."""
    conf = {**suite_conf, "models": [f"models:/{name}/{v}" for v in versions], "tracking_uri": tracking_uri}
    rows = pd.DataFrame(run_suite(conf, seed))
    if not rows.empty:
        rows = rows[rows["model"].str.startswith(f"models:/{name}/")]
    if rows.empty:
        raise ValueError(f"the suite gave no rows for {name} versions {versions}")
    return rows.assign(version=rows["model"].map(lambda ref: version_of(ref, name)))


def scores(rows: pd.DataFrame, rule: CompareRule) -> pd.DataFrame:
    """One row per version (oldest first): mean of each compared metric, number of rows."""
    metrics = [m.name for m in (rule.primary, rule.secondary) if m is not None]
    missing = [m for m in metrics if m not in rows.columns]
    if missing:
        raise ValueError(f"suite rows have no column {missing}; numeric columns: "
                         f"{sorted(rows.select_dtypes('number').columns)}")
    table = rows.groupby("version")[metrics].mean()
    table["rows"] = rows.groupby("version").size()
    return table.loc[sorted(table.index, key=int)]


def best_version(table: pd.DataFrame, metric: Metric) -> str:
    """The version with the best mean of `metric`; on a tie, the oldest."""
    values = table[metric.name]
    return str(values.idxmax() if metric.higher_is_better else values.idxmin())


def _gain(metric: Metric, new: float, old: float) -> float:
    """How much `new` improves on `old` (positive = better), whatever the metric's direction."""
    return new - old if metric.higher_is_better else old - new


def decide(table: pd.DataFrame, champion: str | None, rule: CompareRule) -> Decision:
    """Whether the best version (by the primary metric's mean) replaces `champion`, and why."""
    primary, secondary = rule.primary, rule.secondary
    values, best = table[primary.name], best_version(table, primary)
    if champion is None:
        return Decision(True, best, f"no champion yet: v{best} has the best {primary.name} ({values[best]:.4f})")
    if champion not in table.index:
        return Decision(False, champion, f"champion v{champion} was not measured; nothing compared")
    if best == champion:
        return Decision(False, champion, f"champion v{champion} already has the best {primary.name} "
                                         f"({values[champion]:.4f})")
    gain = _gain(primary, values[best], values[champion])
    if gain <= rule.margin:
        return Decision(False, champion, f"v{best} beats champion v{champion} on {primary.name} by {gain:.4f}, "
                                         f"not more than the margin {rule.margin}")
    why = f"v{best} beats champion v{champion} on {primary.name} by {gain:.4f} (margin {rule.margin})"
    if secondary is not None:
        loss = -_gain(secondary, table.at[best, secondary.name], table.at[champion, secondary.name])
        if loss > rule.tolerance:
            return Decision(False, champion, f"{why} but loses {loss:.4f} on {secondary.name}, more than the "
                                             f"tolerance {rule.tolerance}")
        why += f" and loses {max(loss, 0.0):.4f} on {secondary.name} (tolerance {rule.tolerance})"
    return Decision(True, best, why)


def _settings(rows: pd.DataFrame, metric: str) -> pd.DataFrame | None:
    """Mean `metric` per version and suite setting (e.g. dataset/sigma/protocol), when several."""
    keys = [c for c in rows.columns if c not in NOT_SETTINGS and not pd.api.types.is_float_dtype(rows[c])]
    if not keys or len(rows.groupby(keys)) < 2:
        return None
    table = rows.pivot_table(index="version", columns=keys, values=metric, aggfunc="mean")
    table.columns = ["/".join(str(v) for v in (c if isinstance(c, tuple) else (c,))) for c in table.columns]
    return table.loc[sorted(table.index, key=int)]


def markdown(name: str, suite: str, table: pd.DataFrame, rows: pd.DataFrame, rule: CompareRule,
             champion: str | None, decision: Decision) -> str:
    metrics = [c for c in table.columns if c != "rows"]
    best = best_version(table, rule.primary)
    lines = [f"### {name} on {suite}\n", "| version | " + " | ".join(metrics) + " | rows | |",
             "|---|" + "---|" * (len(metrics) + 2)]
    for version, row in table.iterrows():
        marks = ", ".join(m for m, on in (("champion", version == champion), ("best", version == best)) if on)
        lines.append(f"| {version} | " + " | ".join(f"{row[m]:.4f}" for m in metrics) + f" | {row['rows']:.0f} | {marks} |")
    detail = _settings(rows, rule.primary.name)
    if detail is not None:
        lines += [f"\nMean {rule.primary.name} per setting:\n", "| version | " + " | ".join(detail.columns) + " |",
                  "|---|" + "---|" * len(detail.columns)]
        lines += [f"| {v} | " + " | ".join(f"{x:.4f}" for x in r) + " |" for v, r in detail.iterrows()]
    verdict = "promote" if decision.promote else "keep"
    lines.append(f"\nDecision: {verdict} v{decision.version}: {decision.reason}")
    return "\n".join(lines) + "\n"


def plot(path: Path, name: str, table: pd.DataFrame, champion: str | None) -> Path:
    """Bars of each compared metric per version; the current champion in another colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [c for c in table.columns if c != "rows"]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.2), squeeze=False)
    labels = [f"v{v}" for v in table.index]
    colours = ["tab:orange" if v == champion else "tab:blue" for v in table.index]
    for ax, metric in zip(axes[0], metrics):
        values = table[metric].to_numpy(float)
        ax.bar(labels, values, color=colours)
        span = max(values.max() - values.min(), 1e-3)
        ax.set_ylim(values.min() - span, values.max() + span / 2)  # differences are small: zoom in
        ax.set_title(f"{name}: {metric}" + (" (orange: champion)" if champion else ""), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_outputs(folder: Path, name: str, suite: str, table: pd.DataFrame, rows: pd.DataFrame,
                  rule: CompareRule, champion: str | None, decision: Decision) -> list[Path]:
    """compare.parquet (per version), rows.parquet (per image and setting), compare.md, compare.png."""
    folder.mkdir(parents=True, exist_ok=True)
    table.reset_index().to_parquet(folder / "compare.parquet", index=False)
    rows.to_parquet(folder / "rows.parquet", index=False)
    (folder / "compare.md").write_text(markdown(name, suite, table, rows, rule, champion, decision))
    plot(folder / "compare.png", name, table, champion)
    return [folder / f for f in ("compare.parquet", "rows.parquet", "compare.md", "compare.png")]


def record(name: str, suite: str, table: pd.DataFrame, champion: str | None, rule: CompareRule,
           decision: Decision, files: list[Path], promote: bool) -> tuple[str, bool]:
    """One MLflow run per compare (in the current experiment): versions, suite and rule as
    params, each version's means as metrics, the outputs as artifacts; then, with `promote`
    and a positive decision, the `champion` alias moves. Returns (run id, promoted)."""
    import mlflow

    from pipeline import tracking

    metrics = [c for c in table.columns if c != "rows"]
    params = {"model": name, "suite": suite, "versions": ",".join(table.index), "champion_before": champion or "-",
              "primary": rule.primary.name, "secondary": rule.secondary.name if rule.secondary else "-",
              "margin": rule.margin, "tolerance": rule.tolerance, "promote_requested": promote}
    with mlflow.start_run(run_name=f"compare-{name}") as run:
        mlflow.log_params(params | tracking.flat_params(rule.settings, "settings."))
        mlflow.log_metrics({f"{m}.v{v}": float(table.at[v, m]) for v in table.index for m in metrics})
        mlflow.set_tags({"decision": "promote" if decision.promote else "keep",
                         "decision.version": str(decision.version), "decision.reason": decision.reason[:5000]})
        for path in files:
            mlflow.log_artifact(str(path))
        promoted = promote and decision.promote
        if promoted:
            tracking.set_alias(name, CHAMPION, str(decision.version))
        mlflow.set_tag("promoted", str(decision.version) if promoted else "no")
    return run.info.run_id, promoted
