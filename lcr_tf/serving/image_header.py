"""The size an encoded image declares, read from its header in pure Python (no TensorFlow, nothing decoded),
and the serving limits it is checked against.

The SavedModel's encoded-image signatures refuse, before decoding, an image that is not a JPEG or a PNG or
whose declared size is over the limits recorded at export (:func:`lcr_tf.serving.image_input.decode_checked`).
This module reads the same headers so that a program holding the files (``lcr_tf.predict``, the
evaluation) can skip such an image with its reason instead of sending it, and never decodes it itself:

* JPEG (starts ``FF D8 FF``): the markers are walked up to the first frame header (SOF0..SOF15 but DHT,
  JPG and DAC), whose fields are precision (1 byte), height, width (big-endian uint16 each). A JPEG that
  ends or reaches its scan (SOS) or end (EOI) before a frame header is refused. The model's own reader
  (libjpeg's header reader) goes on up to the first scan, so a file cut between its frame header and its
  scan passes here and still fails in the model, with InvalidArgumentError;
* PNG: the 8-byte signature, then the first chunk, which must be IHDR of length 13: width and height are
  its first two big-endian uint32 (bytes 16..24 of the file).

Sizes are (width, height) in pixels, as the headers store them (the model's ``image_size`` outputs are
``(H, W)``).
"""

from __future__ import annotations

import dataclasses
import struct
from typing import Any, Mapping, Tuple

from lcr_tf.contracts import serving

JPEG, PNG = serving.ENCODED_FORMATS
JPEG_START = b"\xff\xd8\xff"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Frame-header markers: C0..CF but C4 (DHT), C8 (JPG, reserved) and CC (DAC).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM, RST0..RST7 (SOI is the file's start).
_STANDALONE = frozenset([0x01] + list(range(0xD0, 0xD8)))
_SOS, _EOI = 0xDA, 0xD9


class ImageRefused(ValueError):
    """An image that is not read or served: ``source`` names it, ``reason`` says why."""

    def __init__(self, source: str, reason: str):
        super().__init__(f"{source}: {reason}")
        self.source, self.reason = source, reason


@dataclasses.dataclass(frozen=True)
class Limits:
    """What the encoded-image signatures accept (defaults: :data:`lcr_tf.contracts.serving.DEFAULT_LIMITS`).

    Attributes:
      max_image_side: pixels per side (width and height each), at most.
      max_image_pixels: width x height, at most.
      max_images_per_request: images per call, at most.
    """

    max_image_side: int = serving.MAX_IMAGE_SIDE
    max_image_pixels: int = serving.MAX_IMAGE_PIXELS
    max_images_per_request: int = serving.MAX_IMAGES_PER_REQUEST

    def __post_init__(self):
        for name in serving.LIMIT_NAMES:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

    def as_dict(self) -> dict:
        return {name: int(getattr(self, name)) for name in serving.LIMIT_NAMES}

    @classmethod
    def of_saved_model(cls, module: Any) -> "Limits":
        """The limits a loaded SavedModel of :mod:`lcr_tf.serving.export` holds (its int64 variables named
        :data:`lcr_tf.contracts.serving.LIMIT_NAMES`). An export made before they were recorded has no
        check inside; the defaults are used for it."""
        values: Mapping[str, int] = {name: int(getattr(module, name).numpy()) for name in serving.LIMIT_NAMES
                                     if hasattr(module, name)}
        return cls(**values)


def read_header(data: bytes, source: str = "image") -> Tuple[str, int, int]:
    """(format, width, height) of an encoded image, from its header (module docstring).

    Args:
      data: the file's bytes (only the header is read).
      source: what to call it in errors (a path, an image id).
    Returns:
      :data:`JPEG` or :data:`PNG`, and the width and height in pixels (both positive).
    Raises:
      ImageRefused (a ValueError) naming ``source`` and the reason: not a JPEG or PNG, a header cut
      short or malformed, a zero size.
    """
    data = bytes(data)
    if data.startswith(PNG_SIGNATURE):
        fmt, (width, height) = PNG, _png_size(data, source)
    elif data.startswith(JPEG_START):
        fmt, (width, height) = JPEG, _jpeg_size(data, source)
    elif not data:
        raise ImageRefused(source, "empty (0 bytes)")
    else:
        raise ImageRefused(source, f"not a JPEG or PNG image (JPEG and PNG only are served); it starts with "
                                   f"{data[:8]!r}")
    if width < 1 or height < 1:
        raise ImageRefused(source, f"{fmt.upper()} header declares a size of {width}x{height} pixels")
    return fmt, width, height


def _png_size(data: bytes, source: str) -> Tuple[int, int]:
    if len(data) < 33:
        raise ImageRefused(source, f"PNG cut short: {len(data)} bytes, its header (signature and IHDR chunk) "
                                   f"takes 33")
    length, kind = struct.unpack(">I4s", data[8:16])
    if kind != b"IHDR" or length != 13:
        raise ImageRefused(source, f"PNG whose first chunk is {kind!r} of {length} bytes, not IHDR of 13")
    return struct.unpack(">II", data[16:24])


def _jpeg_size(data: bytes, source: str) -> Tuple[int, int]:
    pos, n = 2, len(data)
    while pos < n:
        if data[pos] != 0xFF:  # bytes between segments: skipped, as libjpeg does
            pos += 1
            continue
        while pos < n and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= n:
            break
        marker = data[pos]
        if marker == 0x00 or marker in _STANDALONE:
            pos += 1
            continue
        if marker in (_SOS, _EOI):
            raise ImageRefused(source, f"JPEG whose {'scan' if marker == _SOS else 'end'} comes before any "
                                       f"frame header (SOF)")
        if pos + 3 > n:
            break
        length = struct.unpack(">H", data[pos + 1:pos + 3])[0]
        if length < 2:
            raise ImageRefused(source, f"JPEG segment FF{marker:02X} at byte {pos - 1} of length {length}")
        if marker in _SOF_MARKERS:
            if length < 8 or pos + 8 > n:
                break
            height, width = struct.unpack(">HH", data[pos + 4:pos + 8])
            return width, height
        pos += 1 + length
    raise ImageRefused(source, f"JPEG cut short: {n} bytes, no complete frame header (SOF)")


def size_problem(width: int, height: int, limits: Limits) -> str:
    """Why an image of ``width`` x ``height`` pixels is over ``limits`` (the wording of the model's own
    check), or ``""`` when it is not."""
    if width <= limits.max_image_side and height <= limits.max_image_side \
            and width * height <= limits.max_image_pixels:
        return ""
    return (f"{width}x{height} pixels (width x height): over the limits of this model, {limits.max_image_side} "
            f"pixels per side and {limits.max_image_pixels} pixels per image")


def check(data: bytes, source: str = "image", limits: Limits = Limits()) -> Tuple[str, int, int]:
    """:func:`read_header`, and ImageRefused when the size is over ``limits``; returns (format, width,
    height)."""
    fmt, width, height = read_header(data, source)
    problem = size_problem(width, height, limits)
    if problem:
        raise ImageRefused(source, problem)
    return fmt, width, height
