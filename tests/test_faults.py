"""The faults a cluster has, each on a real Ray and moto's S3 server over HTTP (issue 7).

Every test ends with `reliability.check`: the audit against the inputs holds (rows = members,
keys unique, failed rows carry an error, ok rows have their object), nothing lies outside the
input and output prefixes, and the figures go to RELIABILITY.md (see tests/reliability.py).
Data is small and the faults last seconds; the slowness that lets a fault land mid-run is
real work (NL-means with a wide search window), not an injected sleep.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import s3fs
import torch

from pipeline.config import load_enhance_config
from pipeline.enhance import flow
from pipeline.enhance.enhance import EnhanceActor
from pipeline.io import results
from pipeline.io.schema import to_table
from pipeline.models import build
from pipeline.models.weights import save_weights
from tests import reliability
from tests.conftest import _free_port, add_tar_member, noisy, png_bytes, small
from tests.faultproxy import FaultProxy

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent
IMAGES = ("camera", "moon", "coins", "astronaut", "coffee", "chelsea", "page", "text", "clock", "rocket")
# One slow pool: NL-means with a 35x35 search window (13x13 by default) is ~7x slower for real.
SLOW_NLMEANS = """
enhancers:
  nlmeans: {num_cpus: 0.125, min_actors: 1, max_actors: 1, batch_size: 1, params: {search_window: 35}}
"""
NOISE_ROUTE = "rules:\n  - {degradation: noise, enhancer: nlmeans}\n"


def _config(folder: Path, extra: str = "", routes: str = NOISE_ROUTE, rows_per_block: int = 2) -> str:
    """A config file with one route (one actor pool), no MLflow, small read blocks."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "routes.yaml").write_text(routes)
    (folder / "enhance.yaml").write_text(
        f"routes: routes.yaml\ntracking: {{enabled: false}}\nread: {{rows_per_block: {rows_per_block}}}\n" + extra)
    return str(folder / "enhance.yaml")


def _tar(path: Path, count: int, side: int, prefix: str = "img") -> Path:
    """`count` noisy gray PNGs (routed to nlmeans by the detector)."""
    with tarfile.open(path, "w") as tar:
        for i in range(count):
            image = small(IMAGES[i % len(IMAGES)], side)
            gray = image if image.ndim == 2 else image.mean(axis=2).astype(np.uint8)
            add_tar_member(tar, f"{prefix}{i:03d}.png", png_bytes(noisy(gray, 25, seed=i)))
    return path


def _upload(fs, bucket: str, files: list[Path]) -> list[str]:
    for f in files:
        fs.put(str(f), f"{bucket}/in/{f.name}")
    return [f"s3://{bucket}/in/{f.name}" for f in files]


def _objects(endpoint: str, prefix: str) -> list[str]:
    """Objects under `prefix`, listed fresh (no listing cache)."""
    fs = s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True, use_listings_cache=False)
    return [f"s3://{p}" for p in fs.find(prefix)]


def _outputs(endpoint: str, bucket: str) -> list[str]:
    return [p for p in _objects(endpoint, f"{bucket}/out") if "/_results/" not in p]


def _stray(endpoint: str, bucket: str) -> list[str]:
    return reliability.escaped(_objects(endpoint, bucket), [f"s3://{bucket}/in", f"s3://{bucket}/out"])


def _run(inputs, output, config_path, overrides=()):
    config, routes = load_enhance_config(config_path, list(overrides))
    return flow.run(flow.plan(inputs, output, config), config, routes)


def _busy_enhancer(address: str) -> dict | None:
    """The live enhancer actor of this test's Ray before its last batch is done (other Ray instances
    may run on the machine: ask this one's address), with the number of batches it finished.
    None while there is none, or while the state API does not answer (a loaded machine)."""
    from ray.util.state import list_actors, list_tasks

    try:
        actors = list_actors(address=address, filters=[("state", "=", "ALIVE")], detail=True, limit=1000)
        for actor in actors:
            if "EnhanceActor" not in (actor.get("repr_name") or actor.get("class_name") or ""):
                continue
            tasks = list_tasks(address=address, filters=[("actor_id", "=", actor["actor_id"])], limit=1000)
            states = [t["state"] for t in tasks if t["name"].endswith(".submit")]
            # Running a batch, or at least in the pool before the last batch is done: the
            # state API lags under load, so waiting for RUNNING alone let the run end first.
            if "RUNNING" in states or states.count("FINISHED") < 10:
                return {"pid": actor["pid"], "node_id": actor["node_id"], "finished": states.count("FINISHED")}
    except Exception:  # the state API times out under load: ask again
        return None
    return None


def test_enhancer_actor_sigkilled_mid_run(ray_cluster, s3_server, s3_bucket, tmp_path):
    """SIGKILL the enhancer's process while it runs a batch: Ray restarts the actor
    (max_restarts=-1) and retries its in-flight batch (max_task_retries=-1)."""
    fs, bucket = s3_bucket
    inputs = _upload(fs, bucket, [_tar(tmp_path / "a.tar", 10, 256)])
    config = _config(tmp_path / "conf", SLOW_NLMEANS)
    killed = {}
    address = ray_cluster.get_runtime_context().gcs_address

    done = threading.Event()

    def killer():
        while not done.is_set() and not killed:
            actor = _busy_enhancer(address)
            if actor:
                os.kill(actor["pid"], signal.SIGKILL)
                killed.update(actor)
            time.sleep(0.2)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        summary = _run(inputs, f"s3://{bucket}/out", config)
    finally:
        done.set()
        thread.join(timeout=60)
    assert killed and killed["finished"] < 10, f"the kill did not land mid-run: {killed}"
    assert summary["by_status"] == {"ok": 10}, summary
    reliability.check("enhancer actor SIGKILLed mid-run", "fault", f"s3://{bucket}/out", inputs, None,
                      _stray(s3_server, bucket),
                      f"SIGKILL to the enhancer (pid {killed['pid']}) with batch {killed['finished'] + 1} of 10 running; "
                      "actor restarted, batch retried")


def _job(args: list[str], log: Path) -> subprocess.Popen:
    """`python -m jobs.enhance ...` in its own process (the driver), output to `log`."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "jobs.enhance", *args], cwd=REPO, env=env,
                                stdout=out, stderr=subprocess.STDOUT)


def test_worker_node_removed_mid_run(ray_cluster, s3_server, s3_bucket, tmp_path):
    """A head with no CPUs and two 1-CPU workers (ray.cluster_utils.Cluster): the worker that
    hosts the enhancer is removed while it works; its tasks and the actor move to the other."""
    from ray.cluster_utils import Cluster

    fs, bucket = s3_bucket
    inputs = _upload(fs, bucket, [_tar(tmp_path / "a.tar", 5, 256, "a"), _tar(tmp_path / "b.tar", 5, 256, "b")])
    config = _config(tmp_path / "conf", SLOW_NLMEANS)
    # The dashboard serves the state API that finds the busy enhancer; its port must not
    # clash with the session's Ray (ray_cluster, which also set the local-Ray environment).
    head = {"num_cpus": 0, "include_dashboard": True, "dashboard_port": _free_port()}
    cluster = Cluster(initialize_head=True, connect=False, head_node_args=head)
    try:
        workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
        log = tmp_path / "driver.log"
        driver = _job(["--config", config, "--input", *inputs, "--output", f"s3://{bucket}/out",
                       "--address", cluster.address], log)
        removed = None
        deadline = time.monotonic() + 300
        while driver.poll() is None and removed is None and time.monotonic() < deadline:
            busy = _busy_enhancer(cluster.gcs_address) or {}
            victim = next((w for w in workers if w.node_id == busy.get("node_id")), None)
            if victim:
                cluster.remove_node(victim, allow_graceful=False)
                removed = busy["node_id"]
            time.sleep(0.2)
        code = driver.wait(timeout=300)
    finally:
        cluster.shutdown()
    assert removed, "the node was not removed mid-run"
    assert code == 0, log.read_text()[-3000:]
    reliability.check("worker node removed mid-run", "fault", f"s3://{bucket}/out", inputs, None,
                      _stray(s3_server, bucket),
                      "Cluster(head 0 CPU + 2 x 1-CPU workers): the worker hosting the busy enhancer removed; "
                      "tasks retried, actor restarted on the other worker")


def test_object_store_errors_are_retried_with_backoff(ray_cluster, s3_server, s3_bucket, tmp_path):
    """Every S3 request (driver and workers) through a proxy that fails 10% of them with
    500, 503 SlowDown or a reset connection: the default retries (storage.S3_RETRIES) carry
    the run through, every member ok."""
    fs, bucket = s3_bucket
    inputs = _upload(fs, bucket, [_tar(tmp_path / "a.tar", 4, 128, "a"), _tar(tmp_path / "b.tar", 4, 128, "b")])
    with FaultProxy(s3_server, rate=0.1, seed=7) as proxy:
        config = _config(tmp_path / "conf", f"storage: {{options: {{endpoint_url: '{proxy.url}'}}}}\n")
        summary = _run(inputs, f"s3://{bucket}/out", config)
    faults = sum(proxy.counts[k] for k in ("500", "503", "reset"))
    assert faults >= 1 and summary["by_status"] == {"ok": 8}, (dict(proxy.counts), summary)
    reliability.check("S3 requests failing at 10% (500, 503 SlowDown, reset)", "fault", f"s3://{bucket}/out", inputs,
                      None, _stray(s3_server, bucket),
                      f"{proxy.counts['requests']} requests, {faults} failed ({proxy.counts['500']} x 500, "
                      f"{proxy.counts['503']} x 503, {proxy.counts['reset']} resets); all retried")


def test_s3_retries_default_yields_to_the_operator(monkeypatch):
    """storage.S3_RETRIES applies to s3:// only, and never over AWS_MAX_ATTEMPTS /
    AWS_RETRY_MODE or retries given in storage.options."""
    from pipeline.io.storage import S3_RETRIES, storage_options

    monkeypatch.delenv("AWS_MAX_ATTEMPTS", raising=False)
    monkeypatch.delenv("AWS_RETRY_MODE", raising=False)
    assert storage_options("s3://b/k", {})["config_kwargs"]["retries"] == S3_RETRIES
    assert "config_kwargs" not in storage_options("/local/path", {})
    mine = {"config_kwargs": {"retries": {"max_attempts": 2}, "connect_timeout": 5}}
    assert storage_options("s3://b/k", mine)["config_kwargs"] == mine["config_kwargs"]
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "3")
    assert "config_kwargs" not in storage_options("s3://b/k", {})


def test_archive_the_store_never_serves_gives_a_failed_row(ray_cluster, s3_server, s3_bucket, tmp_path):
    """One archive fails on every request: a failed `#archive` row for it, the other archive
    is processed, the job completes, and the archive is not marked complete (the next run
    tries it again)."""
    fs, bucket = s3_bucket
    inputs = _upload(fs, bucket, [_tar(tmp_path / "good.tar", 3, 96, "g"), _tar(tmp_path / "broken.tar", 3, 96, "b")])
    with FaultProxy(s3_server, always_fail=(f"/{bucket}/in/broken.tar",)) as proxy:
        # Three attempts instead of ten keep the test short; the behaviour is the same.
        options = {"endpoint_url": proxy.url, "config_kwargs": {"retries": {"max_attempts": 3, "mode": "standard"}}}
        config = _config(tmp_path / "conf", f"storage: {{options: {options!r}}}\n".replace("'", '"'))
        summary = _run(inputs, f"s3://{bucket}/out", config)
        rows = {r["key"]: r for r in results.read_results(f"s3://{bucket}/out", None).to_pylist()}
        assert summary["by_status"] == {"ok": 3, "failed": 1}, summary
        broken = rows["broken/#archive"]
        assert broken["status"] == "failed" and "archive unreadable" in broken["error"]
        marked = results.completed_sources(f"s3://{bucket}/out", None)
        assert list(marked) == [f"s3://{bucket}/in/good.tar"]
        # Audited through the proxy: the storage as the job saw it (the broken archive is one row).
        reliability.check("one archive failing on every request", "fault", f"s3://{bucket}/out", inputs, options,
                          _stray(s3_server, bucket),
                          f"{proxy.counts['always_fail']} refused requests; `#archive` row: {broken['error'][:90]}")


def _part_rows(endpoint: str, bucket: str) -> list[dict]:
    """Result rows as stored now: another process writes them, so no listing cache."""
    options = {"endpoint_url": endpoint, "use_listings_cache": False}
    return results.read_results(f"s3://{bucket}/out", options, ["key", "run_id"]).to_pylist()


def test_driver_killed_then_rerun_resumes(ray_cluster, s3_server, s3_bucket, tmp_path):
    """SIGKILL the driver once a result part file exists, run the same command again: the
    second run skips the members with a row (same input hash), does the rest, none twice."""
    fs, bucket = s3_bucket
    # 16 images of 512 px: NL-means takes ~0.3 s an image, so the rows still to do after the
    # first part file take seconds, not the fraction of a second the poll and the kill need (8
    # images of 256 px, ~0.13 s each: a CI run once finished them all before the kill landed).
    inputs = _upload(fs, bucket, [_tar(tmp_path / "a.tar", 8, 512, "a"), _tar(tmp_path / "b.tar", 8, 512, "b")])
    # Rows reach the driver two at a time (measure/write batches of 2) and each batch is its
    # own part file, so the kill finds some rows done and some not.
    config = _config(tmp_path / "conf", SLOW_NLMEANS + "classify: {batch_size: 2}\noutput: {rows_per_file: 1}\n")
    args = ["--config", config, "--input", *inputs, "--output", f"s3://{bucket}/out",
            "--address", ray_cluster.get_runtime_context().gcs_address]
    log = tmp_path / "driver.log"
    first = _job(args, log)
    deadline = time.monotonic() + 300
    while first.poll() is None and not _part_rows(s3_server, bucket) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert first.poll() is None, "the first run ended before it could be killed:\n" + log.read_text()[-2000:]
    first.send_signal(signal.SIGKILL)
    first.wait()
    done_before = len(_part_rows(s3_server, bucket))
    images_before = len(_outputs(s3_server, bucket))
    assert 0 < done_before < 16
    second = _job(args, log)
    assert second.wait(timeout=600) == 0, log.read_text()[-3000:]
    summaries = [p for p in _objects(s3_server, f"{bucket}/out/_results") if "/summary-" in p]
    assert len(summaries) == 1  # the killed run never got to write one
    summary = json.loads(fs.cat(summaries[0]))
    assert summary["rows_of_earlier_runs"] == done_before and summary["rows"] == 16 - done_before, summary
    keys = [r["key"] for r in _part_rows(s3_server, bucket)]
    assert len(keys) == len(set(keys)) == 16
    reliability.check("driver SIGKILLed, same command run again", "fault", f"s3://{bucket}/out", inputs, None,
                      _stray(s3_server, bucket),
                      f"killed with {done_before} rows in part files ({images_before} images written); "
                      f"rerun skipped {done_before}, processed {summary['rows']}, none twice")


def _nan_model(path: Path) -> str:
    """A real weights file (dncnn, 2 features) whose first layer overflows to inf where a
    pixel is brighter than about 0.7, and whose second layer turns inf - inf into NaN: dark
    images come out finite, a bright one as NaN."""
    torch.manual_seed(0)
    config = {"features": 2, "depth": 2, "batch_norm": False}
    model = build("dncnn", **config)
    first, last = model.body[0], model.body[2]
    with torch.no_grad():
        first.weight.zero_()
        first.weight[:, 0, 1, 1] = 2e38
        first.bias.fill_(2e38)
        last.weight.zero_()
        last.weight[0, 0], last.weight[0, 1] = 1e-30, -1e-30
        last.bias.zero_()
    save_weights(model, path, name="dncnn", config=config)
    return str(path)


def _nan_inputs() -> dict[str, bytes]:
    dark = [(small(name, 64).astype(np.float32) * 0.45).astype(np.uint8) for name in ("camera", "moon", "coins")]
    bright = np.full((64, 64), 230, np.uint8)
    members = {f"dark{i}.png": png_bytes(image) for i, image in enumerate(dark)}
    return {"dark0.png": members["dark0.png"], "bright.png": png_bytes(bright),
            "dark1.png": members["dark1.png"], "dark2.png": members["dark2.png"]}


def test_model_nan_fails_one_row_of_its_batch(tmp_path):
    """The learned-enhancer path on one batch of four: the NaN image fails with the reason,
    the three others in the same batch are enhanced."""
    from pipeline.enhance.decode import decode_batch

    model = _nan_model(tmp_path / "nan.pt")
    rows = [{"key": f"s/{name}", "member": name, "source": "s", "data": data, "enhancer": "nan_model"}
            for name, data in _nan_inputs().items()]
    table = decode_batch(to_table(rows), 10**8)
    out = EnhanceActor("nan_model", "learned", {"model": model})(table).to_pylist()
    status = {r["key"]: (r["status"], r["error"]) for r in out}
    assert status["s/bright.png"][0] == "failed" and "NaN" in status["s/bright.png"][1]
    assert [status[f"s/dark{i}.png"] for i in range(3)] == [(None, None)] * 3
    assert all(r["out_pixels"] for r in out if r["key"] != "s/bright.png")


def test_model_nan_on_one_image_in_a_run(ray_cluster, s3_server, s3_bucket, tmp_path):
    """The same model in a run on Ray (every image routed to it, one batch of four)."""
    fs, bucket = s3_bucket
    with tarfile.open(tmp_path / "n.tar", "w") as tar:
        for name, data in _nan_inputs().items():
            add_tar_member(tar, name, data)
    inputs = _upload(fs, bucket, [tmp_path / "n.tar"])
    model = _nan_model(tmp_path / "nan.pt")
    extra = ("enhancers:\n  nan_model: {kind: learned, num_cpus: 0.125, batch_size: 4, "
             f"params: {{model: '{model}'}}}}\n")
    config = _config(tmp_path / "conf", extra, routes="rules: []\ndefault: nan_model\n", rows_per_block=4)
    summary = _run(inputs, f"s3://{bucket}/out", config)
    rows = {r["key"]: r for r in results.read_results(f"s3://{bucket}/out", None).to_pylist()}
    assert summary["by_status"] == {"ok": 3, "failed": 1}, summary
    assert "output has NaN" in rows["n/bright.png"]["error"]
    assert all(rows[f"n/dark{i}.png"]["model"] == model for i in range(3))
    reliability.check("model returns NaN on one image", "fault", f"s3://{bucket}/out", inputs, None,
                      _stray(s3_server, bucket), f"failed row: {rows['n/bright.png']['error']}; the 3 others ok")
