"""Finding and decoding images safely: every failure becomes one BadImage / BadInput line."""

from __future__ import annotations

import base64
import glob
import io
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from offline_vision.errors import BadImage, BadInput

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
# Pillow's own default; anything larger is refused rather than decoded (decompression bombs).
MAX_PIXELS = 89_478_485
# The formats read, and no others: Pillow would otherwise hand a PostScript file named .jpg to
# Ghostscript wherever `gs` is installed.
FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "PPM")
# No eyes here read more than 512 pixels a side; a decoded image is kept at most this large, so
# a batch of 32 holds at most 32 × 1024² pixels whatever the files' sizes (JPEGs are decoded at
# a reduced scale to begin with).
MAX_SIDE = 1024
MAX_FILE_BYTES = 1 << 30  # an image file the catalog reads whole to hash and decode


def expand_paths(args: Iterable[str]) -> list[Path]:
    """Files, directories (searched recursively for images) and globs → a sorted list of files."""
    out: list[Path] = []
    for arg in args:
        p = Path(arg)
        if p.is_dir():
            found = sorted(
                f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
            )
            if not found:
                raise BadInput(
                    f"{arg}: directory contains no images ({', '.join(sorted(IMAGE_SUFFIXES))})"
                )
            out.extend(found)
        elif p.exists():
            out.append(p)
        elif glob.has_magic(arg):
            matches = sorted(Path(m) for m in glob.glob(arg, recursive=True) if Path(m).is_file())
            if not matches:
                raise BadInput(f"{arg}: no files match")
            out.extend(matches)
        else:
            raise BadInput(f"{arg}: no such file or directory")
    # A file named twice is classified once.
    return list(dict.fromkeys(out))


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit and 32-bit grayscale → 8-bit 'L' by value range, not by clipping at 255."""
    arr = np.asarray(img, dtype=np.float64)
    hi = float(arr.max()) if arr.size else 0.0
    if img.mode.startswith("I;16") or 255 < hi <= 65535:
        arr = arr / 257.0
    elif hi > 65535 or arr.min() < 0:
        lo = float(arr.min())
        arr = (arr - lo) / max(hi - lo, 1e-12) * 255.0
    elif img.mode == "F" and hi <= 1.0:
        arr = arr * 255.0
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), mode="L")


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode → RGB: transparency over white, 16-bit scaled, CMYK/P/L converted."""
    if img.mode.startswith("I") or img.mode == "F":
        img = _to_8bit(img)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode != "RGB":
        img = img.convert("RGB")
    return img


def load_image(path: str | Path, data: bytes | None = None) -> Image.Image:
    """Open, check and decode an image file as RGB (EXIF orientation applied); from `data`,
    its bytes already read, where given (the catalog hashes and decodes one read)."""
    p = Path(path)
    if data is None and not p.exists():
        raise BadInput(f"{p}: no such file")
    if data is None and p.is_dir():
        raise BadInput(f"{p}: is a directory, not an image")
    if (len(data) if data is not None else p.stat().st_size) == 0:
        raise BadImage(f"{p}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            source = io.BytesIO(data) if data is not None else p
            img: Image.Image = Image.open(source, formats=FORMATS)
            w, h = img.size
            if w * h > MAX_PIXELS:
                raise BadImage(
                    f"{p}: {w}×{h} = {w * h:,} pixels is over the {MAX_PIXELS:,} limit "
                    "(refused as a possible decompression bomb)"
                )
            img.draft(img.mode, (MAX_SIDE, MAX_SIDE))  # JPEG: decoded at 1/2, 1/4 or 1/8 scale
            img.load()
            img = ImageOps.exif_transpose(img) or img
            if max(img.size) > MAX_SIDE:
                img.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    except BadImage:
        raise
    except UnidentifiedImageError as e:
        raise BadImage(f"{p}: not an image in a format read here ({', '.join(FORMATS)})") from e
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise BadImage(f"{p}: refused as a possible decompression bomb ({e})") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise BadImage(f"{p}: cannot decode image ({e})") from e
    return to_rgb(img)


def data_url(img: Image.Image, fmt: str = "jpeg") -> str:
    """`img` as a data: URL (PNG, or JPEG quality 80): a thumbnail inside a self-contained page."""
    buf = io.BytesIO()
    if fmt == "png":
        img.save(buf, format="PNG", optimize=True)
    else:
        to_rgb(img).save(buf, format="JPEG", quality=80)
    return f"data:image/{fmt};base64," + base64.b64encode(buf.getvalue()).decode()
