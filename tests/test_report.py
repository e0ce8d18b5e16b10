"""The run report: built from result rows, safe with hostile names, renders in headless Chromium.

The screenshot test needs the Debian packages chromium + chromium-driver (`make install`
installs them where it can run apt-get as root or through sudo). Without a browser it fails
saying so; set IMGENHANCE_NO_BROWSER=1 to skip it deliberately (e.g. on a laptop without root).
"""

import base64
import io
import os
import re
import shutil
import subprocess
import tarfile

import cv2
import numpy as np
import pytest
from PIL import Image

from pipeline import report
from pipeline.config import load_enhance_config
from pipeline.enhance import flow
from pipeline.io import results
from pipeline.io.schema import RESULT_SCHEMA, to_table
from tests.conftest import SECRET, add_tar_member, noisy, png_bytes, small

HOSTILE = "<script>alert(1)</script>.png"


def _rows(rows: list[dict]):
    return to_table(rows, RESULT_SCHEMA)


def _ok_row(source: str, member: str, key: str, **extra) -> dict:
    return {"source": source, "member": member, "key": key, "status": "ok", "enhancer": "nlmeans",
            "model": "classical:nlmeans", "height": 96, "width": 96, "noise_before": 20.0, "noise_after": 4.0,
            "psnr_before": 21.0, "psnr_after": 27.5, **extra}


def _thumb_sizes(html: str) -> list[tuple[int, int]]:
    uris = re.findall(r'src="data:image/jpeg;base64,([^"]+)"', html)
    return [Image.open(io.BytesIO(base64.b64decode(u))).size for u in uris]


def test_hostile_member_names_and_errors_come_out_escaped(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "report-secret-value")
    rows = _rows([{"source": "s3://b/a.tar", "member": HOSTILE, "key": f"a/{HOSTILE}", "status": "failed",
                   "error": 'decode: <img src=x onerror="alert(2)"> with report-secret-value'}])
    html = report.build(rows, str(tmp_path / "out"), None, {"run_id": "<b>run</b>"})
    assert "<script" not in html.lower() and "onerror=\"alert" not in html and "<b>run" not in html
    assert "a/&lt;script&gt;alert(1)&lt;/script&gt;.png" in html
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in html
    assert "report-secret-value" not in html and "***" in html


def test_rows_are_counted_by_domain_and_degradation(tmp_path):
    rows = _rows([_ok_row("a", f"{i}.png", f"a/{i}.png", domain=d, degradation=g)
                  for i, (d, g) in enumerate([("satellite", "noise"), ("satellite", "noise"), ("medical", "clean")])])
    html = report.build(rows, str(tmp_path / "out"), None)
    table = html.split("Rows by domain and degradation</h2>")[1].split("<h2>")[0]
    assert ">clean<" in table and ">noise<" in table
    cells = re.findall(r"<tr><td>(\w+)</td>((?:<td[^>]*>\d+</td>)+)</tr>", table)
    assert {d: re.findall(r">(\d+)<", c) for d, c in cells} == {"medical": ["1", "0"], "satellite": ["0", "2"]}


def test_thumbnails_and_gains_from_loose_files(tmp_path):
    """Before is read from the input again, after from the output; both downscaled."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(png_bytes(noisy(small("astronaut", 400))))
    out = tmp_path / "out"
    (out / "in").mkdir(parents=True)
    (out / "in" / "a.png").write_bytes(png_bytes(small("astronaut", 400)))
    rows = _rows([_ok_row(str(tmp_path / "in"), "a.png", "in/a.png", height=400, width=400),
                  _ok_row(str(tmp_path / "in"), "b.png", "in/b.png", psnr_before=None, psnr_after=None)])
    assert report.mean_gains(rows) == {"nlmeans": {"noise": -16.0, "psnr": 6.5}}
    assert report.models_by_route(rows) == {"nlmeans": "classical:nlmeans"}
    html = report.build(rows, str(out), None)
    assert _thumb_sizes(html) == [(160, 160), (160, 160)]  # before + after of a.png
    assert "before: not read" in html and "FileNotFoundError" in html  # b.png has neither: said, not fatal
    assert html.count("data:image/png;base64,") == 1  # one histogram figure, for the one route


def test_inputs_are_read_again_within_one_byte_budget(tmp_path, monkeypatch):
    image, rows = png_bytes(noisy(small("coffee", 64))), []
    monkeypatch.setattr(report, "SCAN_BYTES", len(image))  # one image: the first source spends it all
    for name in ("in1", "in2"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "a.png").write_bytes(image)
        rows.append(_ok_row(str(tmp_path / name), "a.png", f"{name}/a.png"))
    html = report.build(_rows(rows), str(tmp_path / "out"), None)
    assert len(_thumb_sizes(html)) == 1 and html.count("before: not read") == 1


def test_keys_that_climb_out_of_the_output_are_not_read(tmp_path):
    (tmp_path / "secret.png").write_bytes(png_bytes(small("camera", 32)))
    rows = _rows([_ok_row(str(tmp_path / "in"), "x.png", "../secret.png")])
    html = report.build(rows, str(tmp_path / "out"), None)
    assert "after: FileNotFoundError" in html and _thumb_sizes(html) == []  # looked for out/secret.png only


def test_a_report_that_cannot_be_built_warns_and_returns_none(tmp_path, caplog):
    broken = _rows([_ok_row("x", "a.png", "x/a.png")]).drop_columns(["status"])
    assert report.publish(str(tmp_path / "out"), None, broken, {}) is None
    assert "report not written" in caplog.text
    assert not (tmp_path / "out" / "_results" / "report.html").exists()


@pytest.mark.integration
def test_report_on_s3_reads_and_writes_only_under_its_prefixes(s3_bucket):
    fs, bucket = s3_bucket
    fs.pipe(f"{bucket}/in/a.png", png_bytes(noisy(small("coffee", 96))))
    fs.pipe(f"{bucket}/out/in/a.png", png_bytes(small("coffee", 96)))
    rows = _rows([_ok_row(f"s3://{bucket}/in", "a.png", "in/a.png")])
    uri = report.publish(f"s3://{bucket}/out", None, rows, {"run_id": "r1"})
    assert uri == f"s3://{bucket}/out/_results/report.html"
    fs.invalidate_cache()
    assert sorted(fs.find(bucket)) == [f"{bucket}/in/a.png", f"{bucket}/out/_results/report-r1.html",
                                       f"{bucket}/out/_results/report.html", f"{bucket}/out/in/a.png"]
    assert fs.cat(f"{bucket}/out/_results/report-r1.html") == fs.cat(f"{bucket}/out/_results/report.html")
    html = report.load(f"s3://{bucket}/out", None)
    assert len(_thumb_sizes(html)) == 2 and SECRET not in html


# --- a real enhance run, rendered in headless Chromium ---------------------------------------

@pytest.fixture(scope="session")
def browser() -> str:
    """The Chromium binary; checked before the enhance run so a missing browser fails fast."""
    if os.environ.get("IMGENHANCE_NO_BROWSER") == "1":
        pytest.skip("IMGENHANCE_NO_BROWSER=1: report screenshot test skipped on purpose")
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("chromium is not installed: run `make install` (installs the Debian packages chromium and "
                    "chromium-driver where apt-get can run as root), or set IMGENHANCE_NO_BROWSER=1 to skip")
    return found


def _screenshot(browser: str, page, png, profile) -> np.ndarray:
    cmd = [browser, "--headless", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={profile}",
           f"--screenshot={png}", "--window-size=1200,1800", page.as_uri()]
    if os.geteuid() == 0:
        cmd.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert png.is_file(), f"chromium wrote no screenshot (exit {done.returncode}): {done.stderr[-2000:]}"
    return cv2.imread(str(png))


def _colours(image: np.ndarray) -> int:
    return len(np.unique(image.reshape(-1, 3), axis=0))


@pytest.fixture(scope="module")
def enhanced_run(ray_cluster, tmp_path_factory):
    """Noisy, dark and clean images plus an undecodable member with a hostile name, with a clean
    reference (PSNR/SSIM), through three routes: nlmeans, lowlight, passthrough."""
    root = tmp_path_factory.mktemp("report_run")
    (root / "routes.yaml").write_text("rules:\n  - {degradation: noise, enhancer: nlmeans}\n"
                                      "  - {degradation: low_light, enhancer: lowlight}\n")
    (root / "enhance.yaml").write_text("routes: routes.yaml\n")
    with tarfile.open(root / "day1.tar", "w") as tar:
        for name in ("astronaut", "coffee", "chelsea", "rocket"):
            clean = small(name, 96)
            add_tar_member(tar, f"noisy/{name}.png", png_bytes(noisy(clean)))
            add_tar_member(tar, f"dark/{name}.png", png_bytes((clean * 0.12).astype(np.uint8)))
            add_tar_member(tar, f"clean/{name}.png", png_bytes(clean))
            for folder in ("noisy", "dark", "clean"):
                (root / "ref" / folder).mkdir(parents=True, exist_ok=True)
                (root / "ref" / folder / f"{name}.png").write_bytes(png_bytes(clean))
        add_tar_member(tar, HOSTILE, b"not an image")
    config, routes = load_enhance_config(root / "enhance.yaml")
    plan = flow.plan([str(root / "day1.tar")], str(root / "out"), config, reference=str(root / "ref"))
    return root, flow.run(plan, config, routes)


def test_enhance_run_writes_its_report_with_models_and_gains(enhanced_run):
    root, summary = enhanced_run
    assert summary["report_uri"] == str(root / "out" / "_results" / "report.html")
    assert summary["models"] == {"lowlight": "classical:lowlight", "nlmeans": "classical:nlmeans"}
    assert summary["mean_gain"]["nlmeans"]["psnr"] > 3 and summary["mean_gain"]["nlmeans"]["noise"] < 0
    assert summary["mean_gain"]["lowlight"]["brightness"] > 0 and "passthrough" not in summary["mean_gain"]
    html = (root / "out" / "_results" / "report.html").read_text()
    assert (root / "out" / "_results" / f"report-{summary['run_id']}.html").read_text() == html  # kept per run
    assert len(_thumb_sizes(html)) == 2 * 3 * 3  # before + after, 3 per route, 3 routes
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.png" in html and "<script" not in html.lower()
    assert html.count("data:image/png;base64,") == 2  # gain histograms: nlmeans and lowlight


def test_report_renders_in_headless_chromium(browser, enhanced_run, tmp_path):
    root, _ = enhanced_run
    page = root / "out" / "_results" / "report.html"
    shot = _screenshot(browser, page, tmp_path / "report.png", tmp_path / "profile")
    assert shot.shape[:2] == (1800, 1200) and shot.std() > 20, "the page rendered blank"
    # The same page with its images removed: what the thumbnails and histograms add is colour.
    bare = tmp_path / "bare.html"
    bare.write_text(re.sub(r'src="data:[^"]+"', 'src=""', page.read_text()).replace("src='data:", "src='x"))
    plain = _screenshot(browser, bare, tmp_path / "bare.png", tmp_path / "profile")
    assert _colours(shot) > 3 * _colours(plain) and _colours(shot) > 5000, (_colours(shot), _colours(plain))
