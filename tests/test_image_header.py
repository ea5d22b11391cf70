"""Image headers and serving limits: the pure-Python reader (lcr_tf.serving.image_header) and the graph's
check (lcr_tf.serving.image_input.decode_checked) read the same sizes, refuse the same non-images, and the
limits are inclusive (an image exactly at a limit passes)."""

import re
import struct
import zlib

import cv2
import numpy as np
import pytest
import tensorflow as tf

from lcr_tf.contracts import serving
from lcr_tf.serving import image_header, image_input

# A GIF89a header of a 1 x 1 image: what a GIF starts with (not served).
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x00\x00\x00\x00\x00,\x00\x00\x00\x00" \
      b"\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_declaring(width: int, height: int, complete: bool = False) -> bytes:
    """A PNG whose IHDR declares ``width`` x ``height`` RGB pixels (8 bits). ``complete``: its IDAT holds
    every (black) row, so a decoder would really build the image (12000 x 12000: 420 KB of file for 432 MB of
    pixels); otherwise a tiny IDAT of one row's worth, a file of about 100 bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    if complete:
        compressor = zlib.compressobj(9)
        row = b"\0" * (1 + 3 * width)  # filter byte + RGB
        data = b"".join([compressor.compress(row) for _ in range(height)] + [compressor.flush()])
    else:
        data = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def encode(ext: str, image, *params) -> bytes:
    ok, data = cv2.imencode(ext, image, list(params))
    assert ok
    return data.tobytes()


def noise(h, w, seed=0, channels=3):
    shape = (h, w, channels) if channels > 1 else (h, w)
    return (np.random.RandomState(seed).rand(*shape) * 255).astype(np.uint8)


def real_files():
    """(label, bytes, width, height) of files cv2 writes: baseline, progressive and grey JPEGs, colour, grey
    and RGBA PNGs, of several sizes."""
    files = []
    for h, w in ((1, 1), (17, 33), (480, 640), (1001, 99)):
        files.append((f"jpeg {w}x{h}", encode(".jpg", noise(h, w)), w, h))
        files.append((f"progressive jpeg {w}x{h}", encode(".jpg", noise(h, w), cv2.IMWRITE_JPEG_PROGRESSIVE, 1), w, h))
        files.append((f"png {w}x{h}", encode(".png", noise(h, w)), w, h))
    files.append(("grey jpeg", encode(".jpg", noise(50, 70, channels=1)), 70, 50))
    files.append(("grey png", encode(".png", noise(50, 70, channels=1)), 70, 50))
    files.append(("rgba png", encode(".png", noise(20, 30, channels=4)), 30, 20))
    return files


def broken_files():
    """(label, bytes) that are no servable image."""
    jpeg, png = encode(".jpg", noise(40, 60)), encode(".png", noise(40, 60))
    rng = np.random.RandomState(5)
    return [("empty", b""), ("gif", GIF), ("bmp", encode(".bmp", noise(8, 8))),
            ("random bytes", rng.bytes(300)), ("text", b"not an image at all"),
            ("png signature only", png[:8]), ("png cut in IHDR", png[:20]),
            ("png whose first chunk is not IHDR", png[:8] + _chunk(b"tEXt", b"a\0b") + png[8:]),
            ("jpeg start only", jpeg[:3]), ("jpeg cut before its frame header", jpeg[:20])]


def test_reader_agrees_with_the_graph_on_real_files():
    """The pure-Python reader and the graph's header read (tf.io.extract_jpeg_shape / IHDR) give the size
    the decoder then produces, for every kind of file cv2 writes."""
    for label, data, width, height in real_files():
        fmt, w, h = image_header.read_header(data, label)
        assert (w, h) == (width, height), label
        assert fmt == (image_header.JPEG if "jpeg" in label else image_header.PNG), label
        known, tw, th = image_input.encoded_image_size(tf.constant(data))
        assert bool(known) and (int(tw), int(th)) == (width, height), label
        assert image_input.decode_checked(tf.constant(data)).shape == (height, width, 3), label


def test_progressive_jpeg_is_progressive():
    """cv2 really writes a progressive JPEG (frame header SOF2, FF C2), so its size is read from that."""
    data = encode(".jpg", noise(30, 40), cv2.IMWRITE_JPEG_PROGRESSIVE, 1)
    assert b"\xff\xc2" in data and b"\xff\xc0" not in data
    assert image_header.read_header(data) == ("jpeg", 40, 30)


def test_reader_refuses_what_is_no_servable_image():
    for label, data in broken_files():
        with pytest.raises(image_header.ImageRefused) as caught:
            image_header.read_header(data, f"file-{label}")
        assert str(caught.value).startswith(f"file-{label}: ") and caught.value.reason, label
    with pytest.raises(image_header.ImageRefused, match=r"starts with b'GIF89a"):
        image_header.read_header(GIF)
    with pytest.raises(image_header.ImageRefused, match="empty"):
        image_header.read_header(b"")
    with pytest.raises(image_header.ImageRefused, match="0x5"):
        image_header.read_header(png_declaring(0, 5))


def test_graph_check_refuses_what_is_no_servable_image():
    """Every broken file fails the graph's check or its decoder with InvalidArgumentError, never another
    error; a GIF or random bytes are named as not JPEG / PNG, with their first bytes."""
    for label, data in broken_files():
        with pytest.raises(tf.errors.InvalidArgumentError):
            image_input.prepare_encoded(tf.constant([data]), 32)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"images\[0\] \(43 bytes\) is not a JPEG or a PNG.*\(hex\): \"47 49 46 38 39 61 01 00\""):
        image_input.prepare_encoded(tf.constant([GIF]), 32)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\(3 bytes\) is not .*\(hex\): \"f6 80 ff\""):
        image_input.prepare_encoded(tf.constant([b"\xf6\x80\xff"]), 32)  # bytes that are not UTF-8
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\(0 bytes\) is not .*\(hex\): \"\""):
        image_input.prepare_encoded(tf.constant([b""]), 32)


def test_limits_are_inclusive_in_the_reader_and_the_graph():
    """An image exactly at a limit passes, one pixel more is refused, in both checks and with the same
    wording; the graph's message names the image's index, its size and the limits."""
    limits = image_header.Limits(max_image_side=64, max_image_pixels=64 * 60, max_images_per_request=2)
    at = encode(".png", noise(60, 64))  # 64 wide, 60 high: on both limits
    image_header.check(at, "at", limits)
    canvases, scales, sizes = image_input.prepare_encoded(tf.constant([at]), 32, limits.as_dict())
    np.testing.assert_array_equal(sizes.numpy(), [[60, 64]])
    for h, w in ((60, 65), (65, 10), (61, 64)):  # side (width), side (height), pixels
        data = encode(".jpg", noise(h, w))
        expected = re.escape(f"{w}x{h} pixels (width x height): over the limits of this model, 64 pixels per side "
                             f"and 3840")
        with pytest.raises(image_header.ImageRefused, match=expected):
            image_header.check(data, "over", limits)
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"images\[1\] is " + expected):
            image_input.prepare_encoded(tf.constant([at, data]), 32, limits.as_dict())
    with pytest.raises(tf.errors.InvalidArgumentError, match="a request of 3 images: the model takes at most 2"):
        image_input.prepare_encoded(tf.constant([at] * 3), 32, limits.as_dict())
    image_input.prepare_encoded(tf.constant([at] * 2), 32, limits.as_dict())


def test_declared_size_is_read_without_decoding():
    """A 100-byte PNG declaring 30000 x 30000 pixels: both checks read that size, and the default limits
    refuse it (the graph's message names it and the limits)."""
    data = png_declaring(30000, 30000)
    assert len(data) < 200
    assert image_header.read_header(data) == ("png", 30000, 30000)
    with pytest.raises(image_header.ImageRefused, match="30000x30000 pixels"):
        image_header.check(data)
    known, w, h = image_input.encoded_image_size(tf.constant(data))
    assert bool(known) and (int(w), int(h)) == (30000, 30000)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=f"30000x30000 pixels .* {serving.MAX_IMAGE_SIDE} pixels per side and "
                             f"{serving.MAX_IMAGE_PIXELS} pixels per image"):
        image_input.prepare_encoded(tf.constant([data]), 32)


def test_limits_validation_and_defaults():
    assert image_header.Limits().as_dict() == serving.DEFAULT_LIMITS
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="max_image_side must be a positive integer"):
            image_header.Limits(max_image_side=bad)

    class Old:  # an export made before the limits were recorded
        pass

    assert image_header.Limits.of_saved_model(Old()) == image_header.Limits()
