"""Image decoding: every bad file is one clear error; odd but valid modes are converted."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from offline_vision.errors import BadImage, BadInput
from offline_vision.images import expand_paths, load_image


def _png_header_only(path, width: int, height: int) -> None:
    """A PNG whose header claims width×height; Pillow reads the size without decoding pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def test_missing_and_empty_inputs(tmp_path):
    with pytest.raises(BadInput, match="no such file"):
        expand_paths([str(tmp_path / "nope.jpg")])
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(BadInput, match="contains no images"):
        expand_paths([str(tmp_path / "empty_dir")])
    with pytest.raises(BadInput, match="no files match"):
        expand_paths([str(tmp_path / "*.png")])
    zero = tmp_path / "zero.png"
    zero.write_bytes(b"")
    with pytest.raises(BadImage, match="empty file"):
        load_image(zero)


def test_not_an_image_and_truncated(tmp_path):
    fake = tmp_path / "notes.jpg"
    fake.write_text("this is a text file, not a JPEG\n")
    with pytest.raises(BadImage, match="not an image"):
        load_image(fake)
    good = tmp_path / "good.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(good)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(BadImage, match="cannot decode"):
        load_image(cut)


def test_decompression_bomb_is_refused(tmp_path):
    bomb = tmp_path / "bomb.png"
    _png_header_only(bomb, 12_000, 12_000)
    with pytest.raises(BadImage, match="decompression bomb"):
        load_image(bomb)


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    p = tmp_path / "deep.png"
    arr = np.full((8, 8), 32768, dtype=np.uint16)
    Image.fromarray(arr).save(p)
    img = load_image(p)
    assert img.mode == "RGB"
    assert abs(int(np.asarray(img)[0, 0, 0]) - 128) <= 1


def test_cmyk_and_palette_and_alpha_are_converted(tmp_path):
    cmyk = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(cmyk)  # red in CMYK
    r, g, b = np.asarray(load_image(cmyk))[8, 8]
    assert r > 200 and g < 60 and b < 60

    rgba = tmp_path / "rgba.png"
    Image.new("RGBA", (16, 16), (0, 0, 0, 0)).save(rgba)  # fully transparent black
    assert np.asarray(load_image(rgba)).min() == 255  # composited over white

    la = tmp_path / "la.png"
    Image.new("LA", (16, 16), (0, 255)).save(la)  # opaque black
    assert np.asarray(load_image(la)).max() == 0

    pal = tmp_path / "pal.png"
    Image.new("RGB", (16, 16), (0, 0, 255)).convert("P").save(pal)
    assert tuple(np.asarray(load_image(pal))[0, 0]) == (0, 0, 255)


def test_directories_and_globs_expand_sorted(tmp_path):
    for name in ("b.png", "a.jpg", "sub/c.png"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        Image.new("RGB", (4, 4)).save(tmp_path / name)
    (tmp_path / "readme.txt").write_text("x")
    found = expand_paths([str(tmp_path)])
    assert [p.name for p in found] == ["a.jpg", "b.png", "c.png"]
    assert [p.name for p in expand_paths([str(tmp_path / "*.png")])] == ["b.png"]
