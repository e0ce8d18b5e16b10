import argparse

import pyarrow.parquet as pq
import yaml

from jobs import benchmark
from tests.conftest import png_bytes, small


def _args(suite: str, config, report) -> argparse.Namespace:
    """The benchmark job's arguments, never tracking (tests must not write the repo's mlflow.db)."""
    return argparse.Namespace(suite=[suite], config=str(config), report_only=False, report=str(report),
                              model=[], tracking_uri=None, no_tracking=True)


def test_classical_suite_writes_parquet_and_report(tmp_path, monkeypatch):
    data = tmp_path / "data" / "Tiny"
    data.mkdir(parents=True)
    for name in ("camera", "moon"):
        (data / f"{name}.png").write_bytes(png_bytes(small(name, 96)))
    monkeypatch.setenv("IMGENHANCE_DATA", str(tmp_path / "data"))
    conf = {"output": str(tmp_path / "bench"), "suites": {"classical": {
        "dataset": "Tiny", "seed": 0,
        "cases": [{"enhancer": "median", "degrade": "salt_pepper", "params": {"amount": 0.1}}]}}}
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(conf))
    assert benchmark.main(_args("classical", tmp_path / "b.yaml", tmp_path / "B.md")) == 0
    table = pq.read_table(tmp_path / "bench" / "classical.parquet").to_pandas()
    assert len(table) == 2 and (table.psnr_output > table.psnr_input + 10).all()
    report = (tmp_path / "B.md").read_text()
    assert "python -m jobs.benchmark --suite classical" in report and "| median | salt_pepper |" in report


def test_unknown_suite_exits_2(tmp_path):
    assert benchmark.main(_args("nope", benchmark.CONF_DIR / "benchmarks.yaml", tmp_path / "B.md")) == 2


def test_denoise_suite_protocols_and_published_rows(tmp_path, monkeypatch):
    from pipeline.bench import denoise

    data = tmp_path / "data" / "BSD68"
    data.mkdir(parents=True)
    for name in ("camera", "moon"):
        (data / f"{name}.png").write_bytes(png_bytes(small(name, 64)))
    monkeypatch.setenv("IMGENHANCE_DATA", str(tmp_path / "data"))
    conf = {"datasets": ["BSD68"], "sigmas": [15, 25, 50], "protocols": ["float", "8bit"], "models": ["bilateral"]}
    rows = denoise.run(conf, 0)
    assert len(rows) == 2 * 3 * 2
    assert all(r["psnr"] > r["psnr_input"] for r in rows)
    import pyarrow as pa

    text = denoise.summarize(pa.Table.from_pylist(rows))
    assert "DnCNN (published)" in text and "| classical:bilateral |" in text
