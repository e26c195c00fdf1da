"""Uploaded images made safe to show: decoded with bounded size, orientation applied, metadata (EXIF
location, comments) dropped by re-encoding, and a small thumbnail."""

from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, ImageSequence

# Far above any photo or screenshot, far below what would exhaust memory (4 bytes a pixel).
MAX_PIXELS = 50_000_000
THUMBNAIL_BOX = (320, 320)
FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WEBP"}
THUMBNAIL_TYPE = "image/webp"


class ImageTooLarge(Exception):
    """Too many pixels: a decompression bomb, or simply an image nobody can view in a chat."""


class ImageUnreadable(Exception):
    """The bytes start like an image but do not decode as one."""


@dataclass
class Prepared:
    width: int
    height: int


def prepare(source: Path, content_type: str, display: Path, thumbnail: Path) -> Prepared:
    """Write the image to show (re-encoded, upright, without metadata) and its thumbnail. Runs in a
    worker thread: decoding is CPU-bound and must not stall the event loop."""
    try:
        with Image.open(source, formats=[FORMATS[content_type]]) as image:
            frames = getattr(image, "n_frames", 1)
            # The header is read, not the pixels: a bomb is refused before it is decoded.
            if image.width * image.height * frames > MAX_PIXELS:
                raise ImageTooLarge()
            image.load()
            if frames > 1 and content_type == "image/gif":
                _save_animation(image, display)
                first = next(iter(ImageSequence.Iterator(image))).copy()
                upright = first
                width, height = image.size
            else:
                upright = ImageOps.exif_transpose(image)
                width, height = upright.size
                _save_still(upright, FORMATS[content_type], display)
            small = upright.copy()
            small.thumbnail(THUMBNAIL_BOX)
            if small.mode not in ("RGB", "RGBA"):
                small = small.convert("RGBA")
            small.save(thumbnail, format="WEBP", quality=80)
            return Prepared(width, height)
    except Image.DecompressionBombError as bomb:
        raise ImageTooLarge() from bomb
    except (OSError, SyntaxError, ValueError, EOFError) as broken:
        raise ImageUnreadable() from broken


def _save_still(image: Image.Image, fmt: str, path: Path) -> None:
    image.info.clear()
    if fmt == "JPEG":
        if image.mode not in ("RGB", "L", "CMYK"):
            image = image.convert("RGB")
        image.save(path, format=fmt, quality=90, exif=b"")
    elif fmt == "WEBP":
        image.save(path, format=fmt, quality=90, exif=b"")
    else:
        image.save(path, format=fmt)


def _save_animation(image: Image.Image, path: Path) -> None:
    frames = [frame.copy() for frame in ImageSequence.Iterator(image)]
    duration = image.info.get("duration", 100)
    loop = image.info.get("loop", 0)
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], duration=duration, loop=loop)
