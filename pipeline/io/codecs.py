"""Image bytes <-> numpy arrays, keeping bit depth and channels.

Decoding sniffs the format from magic bytes (never trusts the member name), checks the
declared size against a pixel limit *before* allocating (decompression bombs), rejects
truncated files, applies EXIF orientation and returns RGB(A) channel order. PNG, JPEG, TIFF,
BMP and WebP decode with OpenCV (uint8/uint16, 1-4 channels); GIF (first frame) and CMYK
JPEG go through Pillow, TIFF through tifffile (all samples kept).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

# We enforce our own, configurable pixel limit before decoding.
Image.MAX_IMAGE_PIXELS = None

FORMATS = ("png", "jpeg", "tiff", "bmp", "webp", "gif")
EXTENSION_FORMAT = {
    ".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".jpe": "jpeg", ".tif": "tiff",
    ".tiff": "tiff", ".bmp": "bmp", ".webp": "webp", ".gif": "gif",
}
_EXIF_ORIENTATION = 0x0112


class DecodeError(ValueError):
    """The bytes are not an image we can decode; the message says why."""


class TooLarge(DecodeError):
    """A valid image whose declared size is over the configured pixel limit."""


@dataclass(frozen=True)
class Decoded:
    pixels: np.ndarray  # (H, W) or (H, W, C), uint8 or uint16, RGB(A) order
    format: str


def sniff(data: bytes) -> str | None:
    """Image format from the magic bytes, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if data.startswith(b"BM") and len(data) > 26:
        return "bmp"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    return None


def _check_complete(data: bytes, fmt: str) -> None:
    """Reject files cut short: JPEG must end with EOI, PNG with its IEND chunk."""
    tail = data[-65536:].rstrip(b"\x00")
    if fmt == "jpeg" and b"\xff\xd9" not in tail:
        raise DecodeError("truncated JPEG (no end-of-image marker)")
    if fmt == "png" and b"IEND" not in tail[-64:]:
        raise DecodeError("truncated PNG (no IEND chunk)")


def _orientation(im: Image.Image, fmt: str) -> int:
    """EXIF orientation where the header holds it (Pillow would decode a PNG to find it)."""
    if fmt == "png":
        raw = im.info.get("exif")
        exif = Image.Exif()
        if raw:
            exif.load(raw)
        return int(exif.get(_EXIF_ORIENTATION, 1) or 1)
    return int(im.getexif().get(_EXIF_ORIENTATION, 1) or 1)


def _header(data: bytes, fmt: str, max_pixels: int) -> tuple[int, str]:
    """Check the declared size against the limit without decoding; return the EXIF
    orientation and Pillow's mode (one header read serves both)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            _check_size(*im.size, max_pixels)
            return _orientation(im, fmt), im.mode
    except DecodeError:
        raise
    except Exception as exc:  # Pillow raises many types for bad headers
        if fmt != "tiff":
            raise DecodeError(f"corrupt {fmt} header: {exc}") from exc
    width, height, orientation = _tiff_header(data)
    _check_size(width, height, max_pixels)
    return orientation, ""


def _tiff_header(data: bytes) -> tuple[int, int, int]:
    """TIFF layouts Pillow cannot open (e.g. 16-bit RGB): tifffile reads the header."""
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages[0]
            return int(page.imagewidth), int(page.imagelength), int(page.orientation or 1)
    except Exception as exc:
        raise DecodeError(f"corrupt tiff header: {exc}") from exc


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise DecodeError(f"image declares an empty size {width}x{height}")
    if width * height > max_pixels:
        raise TooLarge(
            f"image is {width}x{height} = {width * height / 1e6:.1f} MP, over the limit "
            f"limits.max_pixels = {max_pixels / 1e6:.1f} MP"
        )


def _pillow_pixels(data: bytes) -> np.ndarray:
    """First frame through Pillow, as RGB or RGBA uint8 (GIF, CMYK JPEG)."""
    with Image.open(io.BytesIO(data)) as im:
        im.seek(0)
        has_alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
        if im.mode in ("L", "I;16") and not has_alpha:
            return np.asarray(im)
        return np.asarray(im.convert("RGBA" if has_alpha else "RGB"))


def _opencv_pixels(data: bytes, fmt: str) -> np.ndarray:
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise DecodeError(f"corrupt {fmt}: the decoder could not read the pixel data")
    if pixels.ndim == 3 and pixels.shape[2] == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    elif pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGBA)
    return pixels


def _tiff_pixels(data: bytes) -> np.ndarray:
    """TIFF through tifffile, which keeps every sample (gray+alpha, 16-bit RGBA); OpenCV
    is the fallback for compressions tifffile cannot decode without extra codecs."""
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages[0]
            pixels = page.asarray()
            if pixels.ndim == 3 and page.planarconfig == tifffile.PLANARCONFIG.SEPARATE:
                pixels = np.moveaxis(pixels, 0, -1)
            return np.ascontiguousarray(pixels)
    except Exception:
        return _opencv_pixels(data, "tiff")


def apply_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Rotate/flip per the EXIF orientation tag (1 = as stored), as Pillow's exif_transpose."""
    ops = {
        2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
        5: lambda a: np.swapaxes(a, 0, 1), 6: lambda a: np.rot90(a, -1),
        7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1],
        8: lambda a: np.rot90(a, 1),
    }
    op = ops.get(orientation)
    return np.ascontiguousarray(op(pixels)) if op else pixels


def _check_pixels(pixels: np.ndarray, fmt: str) -> np.ndarray:
    if pixels.dtype == bool:
        pixels = pixels.astype(np.uint8) * 255
    if pixels.dtype not in (np.uint8, np.uint16):
        raise DecodeError(f"unsupported sample type {pixels.dtype} in {fmt} (uint8/uint16 only)")
    if pixels.ndim == 3 and pixels.shape[2] > 4:
        raise DecodeError(f"{pixels.shape[2]} channels in {fmt}: only 1-4 are supported")
    return pixels


def decode(data: bytes, max_pixels: int) -> Decoded:
    """Bytes of one image -> pixels, or DecodeError (TooLarge for over-limit images)."""
    if not data:
        raise DecodeError("empty member (0 bytes)")
    fmt = sniff(data)
    if fmt is None:
        raise DecodeError(f"not an image: unrecognised content (starts with {data[:8]!r})")
    _check_complete(data, fmt)
    orientation, mode = _header(data, fmt, max_pixels)
    if fmt == "gif" or (fmt == "jpeg" and mode == "CMYK"):
        pixels = _pillow_pixels(data)
    elif fmt == "tiff":
        pixels = _tiff_pixels(data)
    else:
        pixels = _opencv_pixels(data, fmt)
    return Decoded(_check_pixels(apply_orientation(pixels, orientation), fmt), fmt)


def output_format(member: str, input_format: str | None) -> str:
    """Format to write for a member: by its extension, else the input's own format."""
    ext = "." + member.rsplit(".", 1)[-1].lower() if "." in member else ""
    return EXTENSION_FORMAT.get(ext) or input_format or "png"


def _to_bgr(pixels: np.ndarray) -> np.ndarray:
    if pixels.ndim == 3 and pixels.shape[2] == 3:
        return cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        return cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGRA)
    return pixels


def encode(pixels: np.ndarray, fmt: str, jpeg_quality: int = 95) -> bytes:
    """Pixels (RGB(A) order) -> file bytes in `fmt`, keeping bit depth where it can."""
    if fmt == "gif" or (pixels.ndim == 3 and pixels.shape[2] == 2):
        return _pillow_encode(pixels, "GIF" if fmt == "gif" else "PNG")
    if pixels.dtype == np.uint16 and fmt not in ("png", "tiff"):
        raise ValueError(f"cannot write 16-bit pixels as {fmt}")
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if fmt == "jpeg" else []
    if fmt == "webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, 101]  # 101 = lossless
    ext = {"jpeg": ".jpg", "tiff": ".tif"}.get(fmt, "." + fmt)
    ok, buf = cv2.imencode(ext, _to_bgr(pixels), params)
    if not ok:
        raise ValueError(f"encoding {pixels.dtype} {pixels.shape} as {fmt} failed")
    return buf.tobytes()


def _pillow_encode(pixels: np.ndarray, fmt: str) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=fmt)
    return out.getvalue()
