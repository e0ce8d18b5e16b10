"""Scheduled runs over a growing archive folder: each run does only what is new."""

import datetime as dt
import os
import tarfile

import pytest

from jobs import cli
from pipeline.config import load_enhance_config
from pipeline.enhance import flow
from pipeline.io import results
from tests.conftest import add_tar_member, noisy, png_bytes, small

pytestmark = pytest.mark.integration


def _archive(path, names):
    with tarfile.open(path, "w") as tar:
        for name in names:
            add_tar_member(tar, name, png_bytes(noisy(small(name.split(".")[0], 64))))


@pytest.fixture(autouse=True)
def _one_route(tmp_path_factory):
    """One enhancer pool instead of eight: these tests are about what runs, not how."""
    conf = tmp_path_factory.mktemp("conf")
    (conf / "routes.yaml").write_text("rules:\n  - {degradation: noise, enhancer: nlmeans}\n")
    (conf / "enhance.yaml").write_text("routes: routes.yaml\n")
    global CONFIG
    CONFIG = str(conf / "enhance.yaml")


def _run(inputs, output, since=None):
    config, routes = load_enhance_config(CONFIG)
    return flow.run(flow.plan(inputs, str(output), config, since=since), config, routes)


def test_second_scheduled_run_processes_only_the_new_archive(ray_cluster, tmp_path):
    archives, out = tmp_path / "archives", tmp_path / "out"
    archives.mkdir()
    _archive(archives / "day1.tar", ["camera.png", "moon.png"])
    first = _run([str(archives / "*.tar")], out)
    _archive(archives / "day2.tar", ["coins.png"])
    second = _run([str(archives / "*.tar")], out)
    assert first["rows"] == 2 and first["archives_unchanged_skipped"] == 0
    assert second["rows"] == 1 and second["archives_unchanged_skipped"] == 1  # day1 not even opened
    keys = sorted(results.read_results(str(out), None, ["key"])["key"].to_pylist())
    assert keys == ["day1/camera.png", "day1/moon.png", "day2/coins.png"]


def test_changed_archive_is_read_again_but_done_members_are_not_redone(ray_cluster, tmp_path):
    archives, out = tmp_path / "archives", tmp_path / "out"
    archives.mkdir()
    _archive(archives / "a.tar", ["camera.png"])
    _run([str(archives)], out)
    _archive(archives / "a.tar", ["camera.png", "moon.png"])  # the archive grew
    second = _run([str(archives)], out)
    assert second["rows"] == 1 and second["archives_unchanged_skipped"] == 0


def test_since_skips_older_archives(ray_cluster, tmp_path):
    archives, out = tmp_path / "archives", tmp_path / "out"
    archives.mkdir()
    _archive(archives / "old.tar", ["camera.png"])
    _archive(archives / "new.tar", ["moon.png"])
    old = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc).timestamp()
    os.utime(archives / "old.tar", (old, old))
    summary = _run([str(archives)], out, since=dt.datetime(2021, 1, 1, tzinfo=dt.timezone.utc))
    assert summary["rows"] == 1
    assert results.read_results(str(out), None, ["key"])["key"].to_pylist() == ["new/moon.png"]


def test_dry_run_lists_and_predicts_without_writing(tmp_path, capsys):
    archives = tmp_path / "archives"
    archives.mkdir()
    _archive(archives / "day1.tar", ["camera.png"])
    assert cli.main(["run", "--input", str(archives), "--output", str(tmp_path / "out"), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "day1/camera.png: noise" in printed and "-> denoise" in printed  # the shipped routes: noise to the learned denoiser
    assert not (tmp_path / "out").exists()


def test_rerun_retries_the_failed_members_only(ray_cluster, tmp_path):
    """Run 1's model turns the bright image into NaN (a failed row); with the model fixed,
    run 2 opens the archive again and enhances that member only; run 3 has nothing to do."""
    from tests.test_faults import _nan_inputs, _nan_model

    archive = tmp_path / "a.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data in _nan_inputs().items():
            add_tar_member(tar, name, data)
    out, conf = tmp_path / "out", tmp_path / "conf"
    conf.mkdir()
    (conf / "routes.yaml").write_text("rules: []\ndefault: model\n")

    def run(enhancer: str):
        (conf / "enhance.yaml").write_text(f"routes: routes.yaml\ntracking: {{enabled: false}}\nenhancers:\n  model: {enhancer}\n")
        config, routes = load_enhance_config(str(conf / "enhance.yaml"))
        return flow.run(flow.plan([str(archive)], str(out), config), config, routes)

    first = run(f"{{kind: learned, params: {{model: '{_nan_model(tmp_path / 'nan.pt')}'}}}}")
    second = run("{kind: bilateral}")
    third = run("{kind: bilateral}")
    assert first["by_status"] == {"ok": 3, "failed": 1}
    assert second["by_status"] == {"ok": 1} and second["archives_unchanged_skipped"] == 0
    assert third["rows"] == 0 and third["archives_unchanged_skipped"] == 1
    rows = results.read_results(str(out), None, ["key", "status", "run_id"]).to_pylist()
    bright = sorted((r["run_id"], r["status"]) for r in rows if r["key"] == "a/bright.png")
    assert [status for _, status in bright] == ["failed", "ok"]  # the latest row is its state
    assert sum(r["key"] != "a/bright.png" for r in rows) == 3  # the others were not redone


def test_bad_content_is_not_retried_and_failures_stop_after_max_attempts(tmp_path):
    """What reruns try again, from the rows alone: not corrupt bytes (they fail the same way
    every time), and nothing beyond MAX_ATTEMPTS failures."""
    import pyarrow as pa

    from pipeline.io import schema

    def row(key, status, sha, height):
        return {"key": key, "status": status, "input_sha256": sha, "height": height, "run_id": "r", "source": "s",
                "member": key.split("/", 1)[1]}

    rows = [row("s/ok.png", "ok", "a", 8), row("s/corrupt.jpg", "failed", "b", None),
            row("s/nan.png", "failed", "c", 8), row("s/cut.png", "failed", None, None)]
    rows += [row("s/flaky.png", "failed", "d", 8)] * results.MAX_ATTEMPTS
    table = pa.Table.from_pylist(rows).cast(pa.schema([schema.RESULT_SCHEMA.field(n) for n in rows[0]]))
    out = tmp_path / "out" / "_results"
    out.mkdir(parents=True)
    import pyarrow.parquet as pq

    pq.write_table(table, out / "part-r-00000.parquet")
    done = results.done_by_stem(str(tmp_path / "out"), None)["s"]
    assert done == {"s/ok.png": "a", "s/corrupt.jpg": "b", "s/flaky.png": "d"}  # nan and cut are retried
