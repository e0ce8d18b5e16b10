"""The enhance flow on Ray Data: read -> decode -> classify -> route -> enhance -> measure -> write.

`build_dataset` composes the stages (each a module of this package) into one streaming
dataset; `run` executes it, streams the result rows into `_results/` part files, shows
progress and returns the run summary. Jobs call `run`; tests call both.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import ray
from ray.data import ActorPoolStrategy, Dataset

from pipeline import report as html_report
from pipeline.audit import audit
from pipeline.config import ClassifyConf, EnhanceConfig, RoutesConf
from pipeline.enhance.classify import Classify, DegradationModel, DomainModel, classify_batch
from pipeline.enhance.learned import pin_reference
from pipeline.enhance.decode import decode_batch
from pipeline.enhance.enhance import ENHANCERS, EnhanceActor, build_enhancer, resolved_params
from pipeline.enhance.measure import measure_batch
from pipeline.enhance.route import enhancers_in, route_batch
from pipeline.enhance.write import write_batch
from pipeline.io import results, storage
from pipeline.io.datasource import ArchiveDatasource
from pipeline.io.readers import ARCHIVE_ROW, ReadLimits, iter_members
from pipeline.io.schema import to_table
from pipeline.io.reference import ReferenceIndex
from pipeline.io.sources import Source, expand_inputs
from pipeline.labels import PASSTHROUGH

log = logging.getLogger("imgenhance")


@dataclass(frozen=True)
class RunPlan:
    run_id: str
    sources: list[Source]
    output: str
    reference: ReferenceIndex | None
    done: dict
    unchanged: int = 0  # archives skipped unopened: read completely by an earlier run, unchanged since


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def plan(inputs: Sequence[str], output: str, config: EnhanceConfig, reference: str | None = None,
         since: dt.datetime | None = None, probe_output: bool = True) -> RunPlan:
    """Resolve inputs and earlier results on the driver; raises on unusable input/output."""
    options = config.storage.options
    output = storage.normalize_url(output)
    sources = expand_inputs(inputs, options, config.read.files_per_task, since)
    for src in sources:
        if storage.is_within(output, src.url) and src.kind == "loose":
            raise ValueError(f"the output {storage.redact(output)} lies inside the input {storage.redact(src.url)}")
    ref = ReferenceIndex(reference, options) if reference else None
    if probe_output:  # a dry run writes nothing
        results.check_writable(output, options)
    marks = results.completed_sources(output, options)
    todo = [s for s in sources if s.kind == "loose" or marks.get(storage.redact(s.url)) != s.fingerprint]
    done = results.done_by_stem(output, options)
    return RunPlan(new_run_id(), todo, output, ref, done, unchanged=len(sources) - len(todo))


def pinned_params(config: EnhanceConfig, routes: RoutesConf) -> dict[str, dict]:
    """Constructor params per routed enhancer, model aliases pinned once for the whole run."""
    out = {}
    for name in enhancers_in(routes):
        if name == PASSTHROUGH:
            continue
        conf = config.enhancer(name)
        try:
            out[name] = resolved_params(conf.kind or name, conf.params, max(1, round(conf.num_cpus)))
        except (KeyError, ValueError, FileNotFoundError) as exc:
            raise ValueError(f"route to enhancer {name!r}: {exc}") from None
    return out


def pin_classify(config: EnhanceConfig) -> EnhanceConfig:
    """The config with the classify models' aliases pinned to versions (or their fallbacks),
    so every classify actor of the run loads the same weights. Cheap for references that are
    already pinned (no weights are loaded here; `check` loads them once)."""
    conf, update = config.classify, {}
    for key in ("domain_model", "degradation_model"):
        fallback = key.replace("model", "fallback")
        if not getattr(conf, key):
            continue
        try:
            update[key] = pin_reference(getattr(conf, key), fallback=getattr(conf, fallback))
        except (KeyError, ValueError, FileNotFoundError, OSError) as exc:
            raise ValueError(f"classify.{key} {getattr(conf, key)!r}: {exc}") from None
        update[fallback] = None
    return config.model_copy(update={"classify": conf.model_copy(update=update)}) if update else config


def classify_kwargs(conf: ClassifyConf) -> dict:
    """`Classify`'s constructor arguments for a (pinned) classify config."""
    kwargs = {"max_side": conf.max_side, "domain_model": conf.domain_model, "side": conf.domain_side,
              "min_score": conf.domain_min_score, "degradation_model": conf.degradation_model,
              "max_z": conf.degradation_max_z, "views": conf.domain_views}
    if any(ref and ref.startswith("models:/") for ref in (conf.domain_model, conf.degradation_model)):
        from pipeline.tracking import tracking_uri

        kwargs["tracking_uri"] = tracking_uri()  # actors do not share the driver's env or cwd
    return kwargs


def _classify_stage(ds: Dataset, config: EnhanceConfig) -> Dataset:
    conf = config.classify
    task = {"batch_format": "pyarrow", "num_cpus": conf.num_cpus, "batch_size": conf.batch_size}
    if not (conf.domain_model or conf.degradation_model):
        return ds.map_batches(classify_batch, fn_kwargs={"max_side": conf.max_side}, **task)
    return ds.map_batches(Classify, fn_constructor_kwargs=classify_kwargs(conf),
                          compute=ActorPoolStrategy(min_size=1, max_size=conf.max_actors), **task)


def min_cpus(config: EnhanceConfig, routes: RoutesConf) -> float:
    """CPUs the run holds before it can make progress: the first actor of every routed pool
    (and of the domain classifier) stays up for the whole run, and one read/decode/write task
    must still fit beside them. Below this the job waits forever (STACK-NOTES: deadlock trap)."""
    pools = [config.enhancer(name) for name in enhancers_in(routes) if name != PASSTHROUGH]
    held = sum(conf.min_actors * conf.num_cpus for conf in pools)
    if config.classify.domain_model or config.classify.degradation_model:
        held += config.classify.num_cpus
    return held + max(config.read.num_cpus, config.classify.num_cpus, config.output.num_cpus)


def warn_if_short(config: EnhanceConfig, routes: RoutesConf, cpus: float) -> bool:
    """Log a warning (and return True) when the cluster's `cpus` cannot hold `min_cpus`: an
    autoscaling cluster may still grow, so the run goes on."""
    needed = min_cpus(config, routes)
    if needed <= cpus + 1e-9:
        return False
    log.warning("the routed pools hold %.3g CPUs at minimum (num_cpus x min_actors, plus one task) but the "
                "cluster has %.3g: the run waits until more CPUs join; lower num_cpus or min_actors", needed, cpus)
    return True


def check(config: EnhanceConfig, routes: RoutesConf) -> dict[str, dict]:
    """Fail on the driver, before Ray starts, for an unknown enhancer name, a bad param or a
    domain model that cannot be loaded; returns the pinned params for `run`, so the checked
    versions are the ones that run."""
    classify = pin_classify(config).classify
    if classify.domain_model:
        try:
            DomainModel(classify.domain_model, classify.domain_side)
        except (KeyError, ValueError, FileNotFoundError, OSError) as exc:
            raise ValueError(f"classify.domain_model {classify.domain_model!r}: {exc}") from None
    if classify.degradation_model:
        try:
            DegradationModel(classify.degradation_model)
        except (KeyError, ValueError, FileNotFoundError, OSError) as exc:
            raise ValueError(f"classify.degradation_model {classify.degradation_model!r}: {exc}") from None
    for name, conf in config.enhancers.items():
        if (conf.kind or name) not in ENHANCERS:
            raise ValueError(f"enhancers.{name} in the config: unknown enhancer; known: {sorted(ENHANCERS)}")
    params = pinned_params(config, routes)
    for name, kwargs in params.items():
        try:
            build_enhancer(config.enhancer(name).kind or name, kwargs)
        except (KeyError, TypeError, ValueError, FileNotFoundError) as exc:
            raise ValueError(f"route to enhancer {name!r}: {exc}") from None
    return params


def _enhance_stage(ds: Dataset, name: str, config: EnhanceConfig, params: dict) -> Dataset:
    conf = config.enhancer(name)
    threads = max(1, round(conf.num_cpus))
    return ds.map_batches(
        EnhanceActor,
        fn_constructor_kwargs={"name": name, "kind": conf.kind or name, "params": params, "threads": threads,
                               "max_pixels": config.limits.max_pixels},
        batch_format="pyarrow",
        batch_size=conf.batch_size,
        compute=ActorPoolStrategy(min_size=conf.min_actors, max_size=conf.max_actors),
        num_cpus=conf.num_cpus,
        num_gpus=conf.num_gpus or None,
    )


def build_dataset(run: RunPlan, config: EnhanceConfig, routes: RoutesConf, params: dict | None = None) -> Dataset:
    params = params if params is not None else pinned_params(config, routes)
    config = pin_classify(config)
    limits = ReadLimits(max_member_bytes=config.limits.max_member_bytes)
    source = ArchiveDatasource(
        run.sources, options=config.storage.options, limits=limits, done_by_stem=run.done,
        run_id=run.run_id, rows_per_block=config.read.rows_per_block, bytes_per_block=config.read.bytes_per_block,
    )
    ds = ray.data.read_datasource(source, num_cpus=config.read.num_cpus)
    task = {"batch_format": "pyarrow", "num_cpus": config.classify.num_cpus, "batch_size": config.classify.batch_size}
    ds = ds.map_batches(decode_batch, fn_kwargs={"max_pixels": config.limits.max_pixels}, **task)
    ds = _classify_stage(ds, config)
    ds = ds.map_batches(route_batch, fn_kwargs={"routes": routes}, **task)
    for name in enhancers_in(routes):
        if name != PASSTHROUGH:
            ds = _enhance_stage(ds, name, config, params[name])
    ds = ds.map_batches(
        measure_batch, fn_kwargs={"reference": run.reference, "max_pixels": config.limits.max_pixels}, **task
    )
    out = {"output": run.output, "options": config.storage.options, "jpeg_quality": config.output.jpeg_quality}
    return ds.map_batches(write_batch, fn_kwargs=out, batch_format="pyarrow", num_cpus=config.output.num_cpus)


def preview(run_plan: RunPlan, config: EnhanceConfig, routes: RoutesConf, sample: int = 8) -> list[dict]:
    """Predicted routes for the first `sample` pending members, in this process (no Ray):
    the same decode, classify and route functions the run uses."""
    limits = ReadLimits(max_member_bytes=config.limits.max_member_bytes)
    rows: list[dict] = []
    for source in run_plan.sources:
        done = run_plan.done.get(source.stem, {})
        for row in iter_members(source, config.storage.options, limits):
            if done.get(row["key"], "-") != row.get("input_sha256"):
                rows.append(row)
            if len(rows) >= sample:
                break
        if len(rows) >= sample:
            break
    table = decode_batch(to_table(rows), config.limits.max_pixels)
    table = route_batch(Classify(**classify_kwargs(pin_classify(config).classify))(table), routes)
    columns = ["key", "status", "error", "domain", "degradation", "degradation_score", "enhancer", "route_reason"]
    return table.select(columns).to_pylist()


class Progress:
    """Counts rows by status and route; logs a line every `every` seconds."""

    def __init__(self, every: float = 10.0):
        self.started = self.last = time.monotonic()
        self.every = every
        self.status: collections.Counter = collections.Counter()
        self.routes: collections.Counter = collections.Counter()
        self.pixels = 0
        self.broken: set[str] = set()  # sources whose archive failed mid-stream
        self.with_failures: set[str] = set()  # sources with a retryable failure: opened again next run

    def add(self, table) -> None:
        rows = table.select(["status", "enhancer", "height", "width", "member", "source", "input_sha256"]).to_pylist()
        for row in rows:
            if row["member"] == ARCHIVE_ROW:
                self.broken.add(row["source"])
            elif results.retryable(row["status"], row["input_sha256"], row["height"]):
                self.with_failures.add(row["source"])
            self.status[row["status"]] += 1
            self.routes[row["enhancer"] or "-"] += 1
            self.pixels += (row["height"] or 0) * (row["width"] or 0)
        if time.monotonic() - self.last >= self.every:
            self.last = time.monotonic()
            log.info("progress: %s rows (%s), %.1f images/s", sum(self.status.values()), dict(self.status), self.rate())

    def rate(self) -> float:
        return sum(self.status.values()) / max(time.monotonic() - self.started, 1e-9)

    def summary(self, run: RunPlan) -> dict:
        elapsed = time.monotonic() - self.started
        return {
            "run_id": run.run_id, "output": storage.redact(run.output), "sources": len(run.sources),
            "rows": sum(self.status.values()), "by_status": dict(self.status), "by_route": dict(self.routes),
            "seconds": round(elapsed, 2), "images_per_s": round(self.rate(), 3),
            "megapixels_per_s": round(self.pixels / 1e6 / max(elapsed, 1e-9), 3),
            "rows_of_earlier_runs": sum(len(v) for v in run.done.values()),
            "archives_unchanged_skipped": run.unchanged,
        }


def run(run_plan: RunPlan, config: EnhanceConfig, routes: RoutesConf, progress_every: float = 10.0,
        params: dict | None = None) -> dict:
    """Execute the flow; every finished row lands in a `_results/` part file. Returns the summary."""
    config = pin_classify(config)
    writer = results.ResultWriter(
        run_plan.output, run_plan.run_id, config.storage.options, config.output.rows_per_file, config.output.flush_seconds
    )
    progress = Progress(progress_every)
    warn_if_short(config, routes, ray.cluster_resources().get("CPU", 0.0))
    for batch in build_dataset(run_plan, config, routes, params).iter_batches(batch_format="pyarrow", batch_size=None):
        writer.add(batch)
        progress.add(batch)
    writer.flush()
    marks = {storage.redact(s.url): s.fingerprint for s in run_plan.sources
             if s.kind != "loose" and storage.redact(s.url) not in progress.broken | progress.with_failures}
    results.mark_sources(run_plan.output, config.storage.options, run_plan.run_id, marks)
    summary = progress.summary(run_plan)
    report = audit(run_plan.output, config.storage.options, run_id=run_plan.run_id)
    summary["audit"] = {"invariant_holds": report.ok, "rows_in_output": report.rows,
                        "duplicated_keys": len(report.duplicated_keys), "failed_without_error": len(report.failed_without_error),
                        "ok_without_output": len(report.ok_without_output)}
    rows = results.read_results(run_plan.output, config.storage.options, html_report.COLUMNS, run_id=run_plan.run_id)
    summary.update(models=html_report.models_by_route(rows), mean_gain=html_report.mean_gains(rows),
                   domain_model=config.classify.domain_model)
    summary["summary_uri"] = results.write_summary(run_plan.output, config.storage.options, summary)
    summary["report_uri"] = html_report.publish(run_plan.output, config.storage.options, rows, summary)
    return summary
