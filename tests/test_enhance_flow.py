"""End to end on a real local Ray: mixed archives in, images + Parquet out, nothing escapes."""

import tarfile

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline.config import load_enhance_config
from pipeline.enhance import flow
from pipeline.io import results
from pipeline.io.codecs import decode
from tests.conftest import add_tar_link, add_tar_member, jpeg_bytes, noisy, png_bytes, small, write_zip

pytestmark = pytest.mark.integration


def _inputs(root):
    """A tar with hostile members, a zip, a tar.gz and a loose folder: 16 non-directory members."""
    root.mkdir()
    with tarfile.open(root / "mixed.tar", "w") as tar:
        add_tar_member(tar, "noisy/cam.png", png_bytes(noisy(small("camera", 96))))
        add_tar_member(tar, "../../escape.png", png_bytes(small()))
        add_tar_member(tar, "/abs/root.png", png_bytes(small()))
        add_tar_link(tar, "evil-link.png", "/etc/passwd")
        add_tar_member(tar, "corrupt.jpg", jpeg_bytes(small())[:300])
        add_tar_member(tar, "empty.png", b"")
        add_tar_member(tar, "text.jpg", b"just some text")
    write_zip(root / "pack.zip", {"a/coffee.png": png_bytes(small("coffee")), "../zipslip.png": png_bytes(small()),
                                  "dark.jpg": jpeg_bytes((small("chelsea") * 0.1).astype(np.uint8))})
    with tarfile.open(root / "shard.tar.gz", "w:gz") as tar:
        add_tar_member(tar, "000001.png", png_bytes(small("astronaut")))
        add_tar_member(tar, "000001.json", b'{"label": 1}')
    (root / "loose").mkdir()
    (root / "loose" / "moon.png").write_bytes(png_bytes(small("moon")))
    (root / "loose" / "gray16.png").write_bytes(png_bytes((small("camera").astype(np.uint16) * 257)))
    (root / "loose" / "random.bin").write_bytes(np.random.default_rng(0).bytes(500))
    return [str(root / "mixed.tar"), str(root / "pack.zip"), str(root / "shard.tar.gz"), str(root / "loose")]


EXPECTED_ROWS = 7 + 3 + 2 + 3


def _run(inputs, output, overrides=()):
    config, routes = load_enhance_config(None, list(overrides))
    return flow.run(flow.plan(inputs, str(output), config), config, routes)


@pytest.fixture(scope="module")
def mixed(ray_cluster, tmp_path_factory):
    """One run of the shipped config over `_inputs`, shared by the tests that read its output
    (each job run starts a dozen actor pools: tens of seconds on 2 cores)."""
    root = tmp_path_factory.mktemp("mixed")
    inputs, out = _inputs(root / "in"), root / "out"
    return root, inputs, out, _run(inputs, out)


def test_mixed_archives_give_one_row_per_member_and_nothing_escapes(mixed):
    root, inputs, out, summary = mixed
    table = results.read_results(str(out), None)
    rows = table.to_pylist()
    assert summary["rows"] == len(rows) == EXPECTED_ROWS
    assert len({r["key"] for r in rows}) == len(rows)
    for row in rows:
        assert row["status"] in ("ok", "failed", "skipped")
        if row["status"] != "ok":
            assert row["error"], row
        else:
            with open(row["output_uri"], "rb") as f:
                written = decode(f.read(), 10**9).pixels
            assert written.dtype.name == row["dtype"] and written.shape[0] == row["out_height"]
    by_key = {r["key"]: r for r in rows}
    assert by_key["mixed/evil-link.png"]["status"] == "skipped"
    assert by_key["mixed/corrupt.jpg"]["status"] == "failed" and "truncated" in by_key["mixed/corrupt.jpg"]["error"]
    assert by_key["mixed/text.jpg"]["status"] == "failed" and "not an image" in by_key["mixed/text.jpg"]["error"]
    assert by_key["loose/gray16.png"]["dtype"] == "uint16" and by_key["loose/gray16.png"]["status"] == "ok"
    # Nothing outside the output prefix: every file under root is an input or under out/.
    stray = [p for p in root.rglob("*") if p.is_file() and not (p.is_relative_to(root / "in") or p.is_relative_to(out))]
    assert stray == []
    assert (out / "mixed" / "escape.png").is_file() and (out / "pack" / "zipslip.png").is_file()
    meta = pq.read_schema(results.part_files(str(out), None)[0]).metadata
    assert meta[b"imgenhance.schema_version"] == b"1"


def test_rerun_into_same_output_adds_no_rows(mixed):
    root, inputs, out, first = mixed
    second = _run(inputs, out)
    keys = results.read_results(str(out), None, ["key"])["key"].to_pylist()
    assert first["rows"] == EXPECTED_ROWS and second["rows"] == 0
    assert len(keys) == len(set(keys)) == EXPECTED_ROWS


def test_s3_to_s3_through_moto_and_no_secret_leaks(ray_cluster, s3_bucket, tmp_path, capfd):
    """Credentials, from the environment or given as config options, stay out of rows,
    summary and console output; nothing is written beside the output prefix."""
    from tests.conftest import SECRET

    secret = "options-secret-0f9e8d7c"
    fs, bucket = s3_bucket
    inputs = _inputs(tmp_path / "in")
    fs.put(inputs[0], f"{bucket}/in/mixed.tar")
    fs.put(inputs[1], f"{bucket}/in/pack.zip")
    overrides = ["storage.options.key=options-key-id", f"storage.options.secret={secret}"]
    summary = _run([f"s3://{bucket}/in/*"], f"s3://{bucket}/out", overrides)
    table = results.read_results(f"s3://{bucket}/out", None)
    assert summary["rows"] == table.num_rows == 10
    ok = [r for r in table.to_pylist() if r["status"] == "ok"]
    assert ok and all(fs.exists(r["output_uri"]) for r in ok)
    assert not fs.exists(f"{bucket}/escape.png") and not fs.exists(f"{bucket}/zipslip.png")
    stored = b"".join(fs.cat(p) for p in fs.find(f"{bucket}/out/_results"))
    captured = capfd.readouterr()
    for leak in (secret, SECRET):
        assert leak.encode() not in stored
        assert leak not in captured.out + captured.err + repr(summary)


def _operator_input_rows(stats: str, operator: str) -> int:
    """'Total input num rows' of the first stats section whose header names `operator`."""
    section = stats.split(operator, 1)[1]
    line = next(l for l in section.splitlines() if "Total input num rows" in l)
    return int(line.split(":")[1].split()[0])


def test_reference_fills_psnr_denoising_helps_and_the_classifier_runs_once(ray_cluster, tmp_path):
    """The shipped routes chain a dozen enhancer pools on one stream: no stage may recompute
    the detector (it runs once per image), and with a reference the rows hold PSNR gains."""
    clean = {f"img{i}.png": small(name, 96) for i, name in enumerate(["camera", "astronaut", "coffee"])}
    (tmp_path / "ref").mkdir()
    (tmp_path / "noisy").mkdir()
    for name, image in clean.items():
        (tmp_path / "ref" / name).write_bytes(png_bytes(image))
        (tmp_path / "noisy" / name).write_bytes(png_bytes(noisy(image, 25, seed=3)))
    config, routes = load_enhance_config()
    plan = flow.plan([str(tmp_path / "noisy")], str(tmp_path / "out"), config, str(tmp_path / "ref"))
    ds = flow.build_dataset(plan, config, routes)
    rows = [r for b in ds.iter_batches(batch_format="pyarrow", batch_size=None) for r in b.to_pylist()]
    assert len(rows) == 3
    assert _operator_input_rows(ds.stats(), "MapBatches(Classify)") == 3  # with its domain model
    for row in rows:
        # the shipped routes: gray noise to the gray denoiser, colour noise to the opponent one
        # (each the champion where a registry answers, else the bundled weights)
        assert row["degradation"] == "noise", row
        if row["channels"] == 1:
            assert row["enhancer"] == "denoise" and row["model"].startswith(("bundled:ffdnet_gray@", "models:/ffdnet-gray/"))
        else:
            assert row["enhancer"] == "denoise_color", row
            assert row["model"].startswith(("bundled:ffdnet_opponent@", "models:/ffdnet-opponent/")), row
        assert row["psnr_after"] > row["psnr_before"] + 2, row
        assert row["noise_after"] < row["noise_before"]


def test_audit_finds_lost_duplicated_and_missing_outputs(mixed):
    """Last in this file: it damages the shared run's output on purpose."""
    import pyarrow as pa

    from pipeline.audit import audit
    from pipeline.io.schema import RESULT_SCHEMA

    root, inputs, out, summary = mixed
    assert summary["audit"]["invariant_holds"]
    assert audit(str(out), None, inputs).ok
    ok_row = next(r for r in results.read_results(str(out), None).to_pylist() if r["status"] == "ok")
    import os

    os.remove(ok_row["output_uri"])  # an output object lost
    extra = pa.Table.from_pylist([{**ok_row, "status": "failed", "error": None}], schema=RESULT_SCHEMA)
    pq.write_table(extra, out / "_results" / "part-extra.parquet")  # a duplicate row with no error
    with tarfile.open(root / "new.tar", "w") as tar:  # a member no run has seen: lost
        add_tar_member(tar, "a.png", png_bytes(small()))
    report = audit(str(out), None, inputs + [str(root / "new.tar")])
    assert report.missing_keys == ["new/a.png"] and report.unexpected_keys == []
    assert report.ok_without_output == [ok_row["key"]]
    assert report.duplicated_keys == [ok_row["key"]] and report.failed_without_error == [ok_row["key"]]
    assert not report.ok
    # Scoped to a run: only its rows' outputs are looked for, keys still checked across runs.
    assert audit(str(out), None, run_id="no-such-run").ok_without_output == []
    scoped = audit(str(out), None, run_id=ok_row["run_id"])
    assert scoped.ok_without_output == [ok_row["key"]] and scoped.duplicated_keys == [ok_row["key"]]
