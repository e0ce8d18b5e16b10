"""Hostile input through a whole run on a real Ray: one archive per case, one record per case.

The readers and codecs have their own unit tests (test_readers.py, test_codecs.py); here every
case goes through read -> decode -> classify -> route -> enhance -> measure -> write at once,
and for each the figures of RELIABILITY.md are checked and recorded: rows expected = rows
written, none lost, none duplicated, nothing written outside the output prefix.
"""

from __future__ import annotations

import functools
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from pipeline.config import load_enhance_config
from pipeline.enhance import flow
from pipeline.io import results
from pipeline.io.codecs import decode
from tests import reliability
from tests.conftest import add_tar_link, add_tar_member, jpeg_bytes, png_bytes, small, write_zip
from tests.test_codecs import _png_header_only

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent
BIG = 12000  # a valid 12000x12000 gray PNG of constant content: 144 MP, ~170 KB compressed


def _pil(image: Image.Image, fmt: str, **kw) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kw)
    return out.getvalue()


@functools.cache
def _flat_png(side: int, value: int = 128) -> bytes:
    return png_bytes(np.full((side, side), value, np.uint8))


def _special(tar: tarfile.TarFile, name: str, kind: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor = kind, 1, 3
    tar.addfile(info)


def _exif_rotated() -> bytes:
    pil = Image.fromarray(small("astronaut", 64)[:40])  # 40 rows x 64 columns, stored
    exif = pil.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display": decoded as 64 x 40
    return _pil(pil, "JPEG", exif=exif, quality=95)


def _animated_gif() -> bytes:
    frames = [Image.fromarray(small()), Image.fromarray(255 - small())]
    return _pil(frames[0], "GIF", save_all=True, append_images=frames[1:])


def _cut_tar_gz() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for i in range(4):
            add_tar_member(tar, f"{i}.png", png_bytes(small(side=96 + i)))
    data = out.getvalue()
    return data[: int(len(data) * 0.6)]


# case -> (archive name, members or raw archive bytes, what each member must end as)
def _cases() -> dict[str, tuple[str, dict | bytes, dict[str, str]]]:
    png, jpeg = png_bytes(small()), jpeg_bytes(small())
    nested = io.BytesIO()
    with tarfile.open(fileobj=nested, mode="w") as inner:
        add_tar_member(inner, "x.png", png)
    return {
        "truncated PNG": ("trunc-png.tar", {"a.png": png[: len(png) // 2]}, {"a.png": "failed"}),
        "truncated JPEG": ("trunc-jpeg.tar", {"a.jpg": jpeg[: len(jpeg) // 2]}, {"a.jpg": "failed"}),
        "zero bytes": ("zero.tar", {"a.png": b""}, {"a.png": "failed"}),
        "text named .jpg": ("text.tar", {"a.jpg": b"just some text, not a JPEG"}, {"a.jpg": "failed"}),
        "random bytes": ("random.tar", {"a.png": np.random.default_rng(0).bytes(4000)}, {"a.png": "failed"}),
        "decompression bomb (60000x60000 header)": ("bomb.tar", {"a.png": _png_header_only(60000, 60000)},
                                                     {"a.png": "skipped"}),
        "member named ../ and /absolute": ("paths.tar", {"../../up.png": png, "/abs/root.png": png},
                                           {"up.png": "ok", "abs/root.png": "ok"}),
        "symlink, hard link": ("links.tar", "links", {"a.png": "ok", "sym.png": "skipped", "hard.png": "skipped"}),
        "character/block device, FIFO": ("devices.tar", "devices",
                                          {"chr": "skipped", "blk": "skipped", "fifo": "skipped"}),
        "duplicate names": ("dup.tar", "dup", {"a.png": "ok", "a~2.png": "ok"}),
        "zip slip": ("slip.zip", "slip", {"slip.png": "ok", "ok.png": "ok"}),
        "nested archive": ("nested.tar", {"inner.tar": nested.getvalue(), "x.png": png},
                           {"inner.tar": "skipped", "x.png": "ok"}),
        "tar.gz cut mid-stream": ("cut.tar.gz", _cut_tar_gz(), {"#archive": "failed"}),
        "CMYK JPEG": ("cmyk.tar", {"a.jpg": _pil(Image.fromarray(small()).convert("CMYK"), "JPEG")}, {"a.jpg": "ok"}),
        "animated GIF": ("gif.tar", {"a.gif": _animated_gif()}, {"a.gif": "ok"}),
        "EXIF-rotated JPEG": ("exif.tar", {"a.jpg": _exif_rotated()}, {"a.jpg": "ok"}),
        "16-bit TIFF": ("tiff16.tar", {"a.tif": cv2.imencode(".tiff", small("camera").astype(np.uint16) * 257)[1]
                                       .tobytes()}, {"a.tif": "ok"}),
        "RGBA PNG": ("rgba.tar", {"a.png": png_bytes(np.dstack([small(), np.full((64, 64), 200, np.uint8)]))},
                     {"a.png": "ok"}),
        "1x1 image": ("tiny.tar", {"gray.png": _flat_png(1), "rgb.png": png_bytes(np.zeros((1, 1, 3), np.uint8))},
                      {"gray.png": "ok", "rgb.png": "ok"}),
        "12000x12000 image, default limits": ("big.tar", {"big.png": _flat_png(BIG)}, {"big.png": "skipped"}),
        "x4 output over the pixel limit": ("sr.tar", {"flat.png": _flat_png(2100)}, {"flat.png": "skipped"}),
    }


def _write_case(folder: Path, name: str, members) -> Path:
    path = folder / name
    if isinstance(members, bytes):
        path.write_bytes(members)
    elif members == "slip":
        write_zip(path, {"../../slip.png": png_bytes(small()), "ok.png": png_bytes(small("camera"))})
    else:
        with tarfile.open(path, "w") as tar:
            if members == "links":
                add_tar_member(tar, "a.png", png_bytes(small()))
                add_tar_link(tar, "sym.png", "/etc/passwd")
                add_tar_link(tar, "hard.png", "a.png", tarfile.LNKTYPE)
            elif members == "devices":
                for member, kind in (("chr", tarfile.CHRTYPE), ("blk", tarfile.BLKTYPE), ("fifo", tarfile.FIFOTYPE)):
                    _special(tar, member, kind)
            elif members == "dup":
                add_tar_member(tar, "a.png", png_bytes(small()))
                add_tar_member(tar, "a.png", png_bytes(small("camera")))
            else:
                for member, data in members.items():
                    add_tar_member(tar, member, data)
    return path


def _short(text: str, limit: int = 110) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _stray(root: Path, allowed: list[Path]) -> list[str]:
    return reliability.escaped((str(p) for p in root.rglob("*") if p.is_file()), [str(a) for a in allowed])


def test_every_hostile_case_in_one_run(ray_cluster, tmp_path):
    cases = _cases()
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    archives = {case: _write_case(inputs, name, members) for case, (name, members, _) in cases.items()}
    config, routes = load_enhance_config()
    summary = flow.run(flow.plan([str(inputs)], str(out), config), config, routes)
    rows = {r["key"]: r for r in results.read_results(str(out), None).to_pylist()}
    assert summary["rows"] == len(rows)
    stray = _stray(tmp_path, [inputs, out])
    for case, (name, _, expected) in cases.items():
        stem = name.split(".")[0]
        mine = {key.split("/", 1)[1]: row for key, row in rows.items() if key.startswith(stem + "/")}
        got = {member: row["status"] for member, row in mine.items()}
        if case == "tar.gz cut mid-stream":  # rows for what was read, the member cut short, the archive
            assert sorted(got.values()) == ["failed", "failed", "ok", "ok"] and got["#archive"] == "failed", got
        else:
            assert got == expected, (case, got)
        reasons = sorted({_short(row["error"]) for row in mine.values() if row["error"]})
        detail = "; ".join(f"{m}: {s}" for m, s in sorted(got.items())) + "".join(f" ({r})" for r in reasons[:2])
        reliability.check(case, "hostile", str(out), [str(archives[case])], None, stray, detail, prefix=f"{stem}/")
    exif = decode((out / "exif" / "a.jpg").read_bytes(), 10**8).pixels
    assert exif.shape[:2] == (64, 40)  # rotated as displayed
    assert rows["tiff16/a.tif"]["dtype"] == "uint16" and rows["rgba/a.png"]["out_channels"] == 4
    assert "limits.max_pixels" in rows["big/big.png"]["error"] and "x4" in rows["sr/flat.png"]["error"]


def _peak(image: Path, out: Path, config: str, max_pixels: int) -> dict:
    command = [sys.executable, "-m", "tests.peak_rss", str(image), str(out), "--config", config,
               "--set", f"limits.max_pixels={max_pixels}", "--limit-gb", "8"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_12000_image_with_a_raised_limit_is_processed_in_bounded_memory(tmp_path):
    """limits.max_pixels raised to 200 MP: the 144 MP image is decoded, classified, measured
    and written (passthrough route) by the flow's stage functions in a fresh process whose
    peak RSS is compared with the same process on a 64x64 image. Slow on purpose (30-120 s
    on 2 shared cores): the only test that pushes a full 144 MP buffer through every stage."""
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "routes.yaml").write_text("rules: []\ndefault: passthrough\n")
    (tmp_path / "conf" / "enhance.yaml").write_text("routes: routes.yaml\n")
    config = str(tmp_path / "conf" / "enhance.yaml")
    for name, side in (("big", BIG), ("small", 64)):
        (tmp_path / name).mkdir()
        (tmp_path / name / f"{name}.png").write_bytes(_flat_png(side))
    base = _peak(tmp_path / "small" / "small.png", tmp_path / "out-small", config, 200_000_000)
    big = _peak(tmp_path / "big" / "big.png", tmp_path / "out", config, 200_000_000)
    assert big["status"] == "ok" and (big["height"], big["width"]) == (BIG, BIG), big
    extra_mb, raw_mb = big["peak_rss_mb"] - base["peak_rss_mb"], BIG * BIG / 2**20
    # Bounded: a fixed multiple of the image's own bytes (float32 copies in classify and
    # measure), independent of anything else in the run.
    assert extra_mb < 24 * raw_mb, (extra_mb, raw_mb)
    written = decode((tmp_path / "out" / "big" / "big.png").read_bytes(), 200_000_000).pixels
    assert written.shape == (BIG, BIG)
    stray = _stray(tmp_path, [tmp_path / n for n in ("big", "small", "conf", "out", "out-small")])
    reliability.check("12000x12000 image, limits.max_pixels raised to 200 MP", "hostile", str(tmp_path / "out"),
                      [str(tmp_path / "big")], None, stray,
                      f"ok; peak RSS {big['peak_rss_mb']:.0f} MB vs {base['peak_rss_mb']:.0f} MB for 64x64: "
                      f"+{extra_mb:.0f} MB = {extra_mb / raw_mb:.1f}x the 144 MB of pixels")
