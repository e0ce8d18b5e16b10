import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from pipeline.io.codecs import DecodeError, TooLarge, decode, encode, output_format, sniff
from tests.conftest import jpeg_bytes, png_bytes, small

MAX = 64_000_000


def _pil_bytes(image: Image.Image, fmt: str, **kw) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kw)
    return out.getvalue()


def test_png_rgb_roundtrip_keeps_rgb_order():
    image = small()
    decoded = decode(png_bytes(image), MAX)
    assert decoded.format == "png"
    np.testing.assert_array_equal(decoded.pixels, image)


@pytest.mark.parametrize("shape", [(20, 30), (20, 30, 3), (20, 30, 4)])
def test_16bit_png_and_tiff_keep_depth_and_channels(shape):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 65535, shape, dtype=np.uint16)
    for fmt in ("png", "tiff"):
        decoded = decode(encode(image, fmt), MAX)
        assert decoded.pixels.dtype == np.uint16
        np.testing.assert_array_equal(decoded.pixels, image)


def test_tiff_two_channels_kept():
    import tifffile

    image = np.random.default_rng(1).integers(0, 255, (10, 12, 2), dtype=np.uint8)
    buf = io.BytesIO()
    tifffile.imwrite(buf, image, photometric="minisblack", planarconfig="contig", extrasamples=["unassalpha"])
    decoded = decode(buf.getvalue(), MAX).pixels
    assert decoded.shape == (10, 12, 2)
    assert decoded.dtype == np.uint8


def test_gif_first_frame_and_bmp_and_webp():
    image = small()
    frames = [Image.fromarray(image), Image.fromarray(255 - image)]
    gif = _pil_bytes(frames[0], "GIF", save_all=True, append_images=frames[1:])
    first = decode(gif, MAX).pixels
    assert first.shape[:2] == (64, 64) and abs(float(first.mean()) - float(image.mean())) < 20
    assert decode(_pil_bytes(Image.fromarray(image), "BMP"), MAX).pixels.shape == (64, 64, 3)
    np.testing.assert_array_equal(decode(encode(image, "webp"), MAX).pixels, image)  # lossless


def test_exif_orientation_applied_like_pillow():
    image = np.zeros((20, 40, 3), np.uint8)
    image[:5, :10] = 255  # a marker in the top-left corner
    for orientation in range(1, 9):
        pil = Image.fromarray(image)
        exif = pil.getexif()
        exif[0x0112] = orientation
        data = _pil_bytes(pil, "JPEG", exif=exif, quality=95)
        from PIL import ImageOps

        expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))))
        got = decode(data, MAX).pixels
        assert got.shape == expected.shape, orientation
        assert np.abs(got.astype(int) - expected.astype(int)).mean() < 2, orientation


def test_cmyk_jpeg_decodes_to_rgb():
    data = _pil_bytes(Image.fromarray(small()).convert("CMYK"), "JPEG", quality=95)
    pixels = decode(data, MAX).pixels
    assert pixels.shape == (64, 64, 3) and pixels.dtype == np.uint8


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"hello, I am text named .jpg", "not an image"),
        (bytes(np.random.default_rng(0).integers(0, 255, 4000, dtype=np.uint8)), "not an image"),
    ],
)
def test_bad_bytes_raise_clear_errors(data, message):
    with pytest.raises(DecodeError, match=message):
        decode(data, MAX)


def test_truncated_files_fail():
    jpeg, png = jpeg_bytes(small()), png_bytes(small())
    with pytest.raises(DecodeError, match="truncated JPEG"):
        decode(jpeg[: len(jpeg) // 2], MAX)
    with pytest.raises(DecodeError):
        decode(png[: len(png) // 2], MAX)


def _png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature + IHDR declaring a huge image, then an empty IDAT and IEND."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_decompression_bomb_rejected_before_decoding():
    with pytest.raises(TooLarge, match="60000x60000"):
        decode(_png_header_only(60000, 60000), MAX)


def test_sniff_ignores_names_and_output_format_follows_extension():
    assert sniff(png_bytes(small())) == "png" and sniff(b"GIF89a....") == "gif"
    assert output_format("a/b.JPG", "png") == "jpeg"
    assert output_format("noext", "tiff") == "tiff"


def test_encode_refuses_16bit_jpeg():
    with pytest.raises(ValueError, match="16-bit"):
        encode(np.zeros((4, 4), np.uint16), "jpeg")
