import gzip
import io
import tarfile

import pytest

from pipeline.io.readers import ARCHIVE_ROW, KeyMaker, ReadLimits, iter_members, safe_member_path
from pipeline.io.sources import Source, archive_stem, expand_inputs
from pipeline.io.storage import is_within, join, redact
from tests.conftest import add_tar_link, add_tar_member, png_bytes, small, write_zip

LIMITS = ReadLimits(max_member_bytes=10_000_000)


@pytest.mark.parametrize(
    "name, safe",
    [("a/b.png", "a/b.png"), ("../../etc/passwd", "etc/passwd"), ("/abs/x.png", "abs/x.png"),
     ("C:\\win\\x.png", "C_/win/x.png"), ("./a/./b.png", "a/b.png"), ("..", "_unnamed"), ("a\x00b.png", "a_b.png")],
)
def test_safe_member_path(name, safe):
    assert safe_member_path(name) == safe


def test_keys_are_unique_for_duplicates_and_collisions():
    keys = KeyMaker("s")
    assert [keys("a.png"), keys("a.png"), keys("../a.png")] == ["s/a.png", "s/a~2.png", "s/a~3.png"]


def test_join_never_climbs_and_is_within():
    assert join("s3://b/out", "../../x") == "s3://b/out/x"
    assert is_within(join("/o", "a/../../b"), "/o") and not is_within("/other", "/o")


def test_redact_hides_secrets_and_url_credentials():
    assert "s3cr3t" not in redact("s3://key:s3cr3t@bucket/x and s3cr3t", ["s3cr3t"])


def _hostile_tar(path, compress=False):
    mode = "w:gz" if compress else "w"
    with tarfile.open(path, mode) as tar:
        add_tar_member(tar, "ok.png", png_bytes(small()))
        add_tar_member(tar, "../escape.png", png_bytes(small()))
        add_tar_member(tar, "/etc/abs.png", png_bytes(small()))
        add_tar_member(tar, "ok.png", png_bytes(small("camera")))  # duplicate name
        add_tar_link(tar, "link.png", "/etc/passwd")
        add_tar_link(tar, "hard.png", "ok.png", tarfile.LNKTYPE)
        add_tar_member(tar, "meta.json", b"{}")
        add_tar_member(tar, "empty.png", b"")
    return path


def test_tar_rows_one_per_member_with_reasons(tmp_path):
    path = _hostile_tar(tmp_path / "h.tar")
    rows = list(iter_members(Source("tar", str(path), "h"), None, LIMITS))
    assert len(rows) == 8
    keys = [r["key"] for r in rows]
    assert len(set(keys)) == 8 and all(k.startswith("h/") and ".." not in k for k in keys)
    by_member = {r["key"]: r for r in rows}
    assert by_member["h/link.png"]["status"] == "skipped" and "symbolic link" in by_member["h/link.png"]["error"]
    assert "hard link" in by_member["h/hard.png"]["error"]
    assert "sidecar" in by_member["h/meta.json"]["error"]
    assert by_member["h/ok.png"]["data"] and len(by_member["h/ok.png"]["input_sha256"]) == 64


def test_tar_gz_cut_mid_stream_gives_rows_then_archive_failure(tmp_path):
    path = tmp_path / "c.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for i in range(6):
            add_tar_member(tar, f"{i}.png", png_bytes(small(side=128 + i)))
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    rows = list(iter_members(Source("tar", str(path), "c"), None, LIMITS))
    assert rows[-1]["member"] == ARCHIVE_ROW and rows[-1]["status"] == "failed"
    *read, cut = rows[:-1]
    assert 1 <= len(read) < 5 and all(r.get("data") for r in read)
    assert cut["status"] == "failed" and "cut short" in cut["error"]  # its header was read: a row of its own
    # The audit lists members by their headers alone: the same keys, so nothing counts as lost.
    from pipeline.audit import expected_keys

    assert expected_keys([str(path)], None) == {r["key"] for r in rows}


def test_zip_slip_and_oversize_member(tmp_path):
    path = tmp_path / "z.zip"
    write_zip(path, {"../../slip.png": png_bytes(small()), "big.png": b"x" * 2000, "sub/a.png": png_bytes(small())})
    rows = list(iter_members(Source("zip", str(path), "z"), None, ReadLimits(max_member_bytes=1500)))
    keys = {r["key"]: r for r in rows}
    assert set(keys) == {"z/slip.png", "z/big.png", "z/sub/a.png"}
    assert keys["z/big.png"]["status"] == "skipped" and "max_member_bytes" in keys["z/big.png"]["error"]


def test_expand_inputs_mixes_archives_folders_and_globs(tmp_path):
    (tmp_path / "loose" / "sub").mkdir(parents=True)
    (tmp_path / "loose" / "sub" / "a.png").write_bytes(png_bytes(small()))
    (tmp_path / "loose" / "b.png").write_bytes(png_bytes(small()))
    _hostile_tar(tmp_path / "x.tar")
    write_zip(tmp_path / "x.zip", {"a.png": png_bytes(small())})
    sources = expand_inputs([str(tmp_path / "loose"), str(tmp_path / "x.*")], files_per_task=1)
    kinds = sorted((s.kind, s.stem) for s in sources)
    assert kinds == [("loose", "loose"), ("loose", "loose"), ("tar", "x"), ("zip", "x-2")]
    assert archive_stem("a/b.tar.gz") == "b"


def test_expand_inputs_missing_raises(tmp_path):
    from pipeline.io.sources import InputError

    with pytest.raises(InputError, match="not found"):
        expand_inputs([str(tmp_path / "nope")])
