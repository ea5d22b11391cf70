"""Images into the network: the size checks read from an encoded image's header before it is decoded, the
decoding, and the two ways an image is brought to the network's input (letterbox to a square, or Detectron's
short-side scale for a released model), with the scales that map the network's pixels back to the image's.

Letterbox: an H x W image is resized by ``s = S / max(H, W)`` to ``round(H s) x round(W s)`` (bilinear) and
placed at the top-left corner of an S x S black canvas; a point at ``(x, y)`` there is at ``(x / s_x, y / s_y)``
in the original image, with the per-axis scales ``s_x = round(W s) / W``, ``s_y = round(H s) / H``.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple

import tensorflow as tf

from lcr_tf.contracts import serving
from lcr_tf.serving import image_header


def letterbox(image, size: int) -> Tuple[tf.Tensor, tf.Tensor]:
    """One image into the model's square input (module docstring).

    Args:
      image: (H, W, 3) any real or integer dtype, RGB values in [0, 255].
      size: S, the side of the model's input.
    Returns:
      (S, S, 3) float32 canvas and (2,) float32 scales ``(s_x, s_y)``: original pixel = canvas pixel / s.
    """
    image = tf.cast(image, tf.float32)
    hw = tf.cast(tf.shape(image)[:2], tf.float32)
    s = float(size) / tf.reduce_max(hw)
    new_hw = tf.maximum(tf.cast(tf.round(hw * s), tf.int32), 1)
    resized = tf.image.resize(image, new_hw, method="bilinear", antialias=True)
    canvas = tf.pad(resized, [[0, size - new_hw[0]], [0, size - new_hw[1]], [0, 0]])
    canvas = tf.ensure_shape(canvas, [size, size, 3])
    scales = tf.cast(new_hw, tf.float32) / hw
    return canvas, tf.stack([scales[1], scales[0]])


# The first bytes of the accepted encodings: those lcr_tf.serving.image_header reads in Python.
_JPEG_START = image_header.JPEG_START
_PNG_SIGNATURE = image_header.PNG_SIGNATURE
# A PNG's first 33 bytes: signature (8), IHDR's length (4, = 13) and type (4), width and height (4 each,
# big-endian), 5 more bytes of IHDR and its CRC (4).
_PNG_IHDR_END = 33
_PNG_IHDR_START = b"\x00\x00\x00\x0dIHDR"


def limit_tensors(limits: Optional[Mapping[str, Any]] = None) -> Dict[str, tf.Tensor]:
    """The :data:`lcr_tf.contracts.serving.LIMIT_NAMES` as () int64 tensors: those of ``limits`` (ints,
    tensors or variables; a mapping with those keys, or None for :data:`serving.DEFAULT_LIMITS`)."""
    limits = serving.DEFAULT_LIMITS if limits is None else limits
    return {name: tf.cast(limits[name], tf.int64) for name in serving.LIMIT_NAMES}


def encoded_image_size(encoded) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The size an encoded image's header declares, read without decoding it.

    Args:
      encoded: () tf.string.
    Returns:
      () bool, whether it is a JPEG or a PNG whose first chunk is IHDR; () int64 width and height in pixels
      (0 when it is neither). A JPEG's frame header is read by ``tf.io.extract_jpeg_shape`` (libjpeg's
      header reader: up to the first scan, nothing decoded), which fails with InvalidArgumentError on a
      JPEG cut before its scan; a PNG's IHDR is bytes 16..24 (big-endian uint32 width, height).
    """
    encoded = tf.convert_to_tensor(encoded, tf.string)
    is_jpeg = tf.equal(tf.strings.substr(encoded, 0, len(_JPEG_START)), _JPEG_START)
    # substr fails past a string's end, so the IHDR fields are cut from a copy padded to 33 bytes; the
    # length test keeps a short file from passing on its padding.
    padded = tf.strings.substr(tf.strings.join([encoded, b"\0" * _PNG_IHDR_END]), 0, _PNG_IHDR_END)
    head = tf.cast(tf.reshape(tf.io.decode_raw(padded, tf.uint8), [_PNG_IHDR_END]), tf.int64)
    is_png = (tf.equal(tf.strings.substr(padded, 0, len(_PNG_SIGNATURE)), _PNG_SIGNATURE)
              & tf.equal(tf.strings.substr(padded, len(_PNG_SIGNATURE), len(_PNG_IHDR_START)), _PNG_IHDR_START)
              & (tf.strings.length(encoded) >= _PNG_IHDR_END))

    def be32(start):
        b = head[start:start + 4]
        return b[0] * 16777216 + b[1] * 65536 + b[2] * 256 + b[3]

    def jpeg_size():
        shape = tf.cast(tf.io.extract_jpeg_shape(encoded), tf.int64)
        return shape[1], shape[0]

    def png_size():
        zero = tf.constant(0, tf.int64)
        return tf.where(is_png, be32(16), zero), tf.where(is_png, be32(20), zero)

    width, height = tf.cond(is_jpeg, jpeg_size, png_size)
    return is_jpeg | is_png, width, height


_HEX = tuple(f"{b:02x}" for b in range(256))


def first_bytes_hex(encoded, count: int = 8) -> tf.Tensor:
    """() tf.string: the first ``count`` bytes of ``encoded`` (fewer if it is shorter) in hex, space
    separated. Error messages show bytes this way: TensorFlow passes an error's text to Python as UTF-8, and
    raw bytes that are not would turn the InvalidArgumentError into a UnicodeDecodeError."""
    encoded = tf.convert_to_tensor(encoded, tf.string)
    size = tf.minimum(tf.strings.length(encoded), count)
    head = tf.strings.substr(tf.strings.join([encoded, b"\0" * count]), 0, count)
    values = tf.cast(tf.reshape(tf.io.decode_raw(head, tf.uint8), [count]), tf.int32)[:size]
    return tf.strings.reduce_join(tf.gather(tf.constant(_HEX), values), separator=" ")


def check_encoded_image(encoded, index, limits: Optional[Mapping[str, Any]] = None) -> tf.Operation:
    """The op that fails with InvalidArgumentError when an encoded image is not a JPEG or PNG, or its header
    declares a size over the limits; run it before the decoding (:func:`decode_checked`).

    Args:
      encoded: () tf.string; index: () int, its position in the request (named in the message).
      limits: as :func:`limit_tensors`.
    """
    limits = limit_tensors(limits)
    side, pixels = limits[serving.MAX_IMAGE_SIDE_NAME], limits[serving.MAX_IMAGE_PIXELS_NAME]
    known, width, height = encoded_image_size(encoded)
    with tf.control_dependencies([tf.debugging.Assert(known, [tf.strings.format(
            "images[{}] ({} bytes) is not a JPEG or a PNG whose first chunk is IHDR (the encoded-image "
            "signatures accept those only); its first bytes (hex): {}",
            [index, tf.strings.length(encoded), first_bytes_hex(encoded)])])]):
        fits = (width <= side) & (height <= side) & (width * height <= pixels)
        return tf.debugging.Assert(fits, [tf.strings.format(
            "images[{}] is {}x{} pixels (width x height): over the limits of this model, {} pixels per side "
            "and {} pixels per image", [index, width, height, side, pixels])])


def check_request_size(encoded, limits: Optional[Mapping[str, Any]] = None) -> tf.Operation:
    """The op that fails with InvalidArgumentError when a request holds more images than the limit."""
    most = limit_tensors(limits)[serving.MAX_IMAGES_PER_REQUEST_NAME]
    count = tf.cast(tf.size(encoded), tf.int64)
    return tf.debugging.Assert(count <= most, [tf.strings.format(
        "a request of {} images: the model takes at most {} images per request", [count, most])])


def checked_request(encoded, limits: Optional[Mapping[str, Any]] = None) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
    """(B,) tf.string encoded images that run only once :func:`check_request_size` has passed, and the
    limits as tensors (:func:`limit_tensors`): the first step of every encoded-image path."""
    encoded = tf.convert_to_tensor(encoded, tf.string)
    limits = limit_tensors(limits)
    with tf.control_dependencies([check_request_size(encoded, limits)]):
        return tf.identity(encoded), limits


def decode_image(encoded, dct_method: str = "") -> tf.Tensor:
    """() tf.string of an encoded image (JPEG or PNG; grey, RGB or RGBA) -> (H, W, 3) uint8 RGB, unchecked
    (:func:`decode_checked` checks the size first). Bytes that are no image raise
    ``tf.errors.InvalidArgumentError``.

    ``dct_method`` chooses a JPEG's inverse DCT (``tf.io.decode_jpeg``): ``""`` TensorFlow's default, or
    ``"INTEGER_ACCURATE"``, libjpeg's accurate integer DCT, the one OpenCV's ``imread`` uses (TensorFlow's
    default differs from it by up to 17 grey levels on a photograph; the accurate one by none).
    """
    if dct_method:
        encoded = tf.convert_to_tensor(encoded, tf.string)
        is_jpeg = tf.equal(tf.strings.substr(encoded, 0, len(_JPEG_START)), _JPEG_START)
        image = tf.cond(
            is_jpeg,
            lambda: tf.io.decode_jpeg(encoded, channels=3, dct_method=dct_method),
            lambda: tf.io.decode_image(encoded, channels=3, expand_animations=False, dtype=tf.uint8))
    else:
        image = tf.io.decode_image(encoded, channels=3, expand_animations=False, dtype=tf.uint8)
    image.set_shape([None, None, 3])
    return image


def decode_checked(encoded, index=0, limits: Optional[Mapping[str, Any]] = None, dct_method: str = ""
                   ) -> tf.Tensor:
    """:func:`decode_image` after :func:`check_encoded_image`: the decoder runs only once the header has
    passed, so an image over the limits is refused in microseconds, nothing allocated for its pixels."""
    with tf.control_dependencies([check_encoded_image(encoded, index, limits)]):
        return decode_image(tf.identity(encoded), dct_method)


def prepare_encoded(encoded, size: int, limits: Optional[Mapping[str, Any]] = None
                    ) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(B,) tf.string encoded images -> (B, S, S, 3) float32 letterboxed images, (B, 2) float32 scales
    ``(s_x, s_y)`` and (B, 2) int32 original sizes ``(H, W)``.

    Every image is checked before it is decoded (:func:`decode_checked`), and the request's size first
    (:func:`check_request_size`), against ``limits`` (as :func:`limit_tensors`; None: the defaults of
    :mod:`lcr_tf.contracts.serving`): a request that breaks one fails with InvalidArgumentError naming it.
    """
    encoded, limits = checked_request(encoded, limits)

    def one(args):
        data, index = args
        image = decode_checked(data, index, limits)
        canvas, scales = letterbox(image, size)
        return canvas, scales, tf.shape(image)[:2]

    return tf.map_fn(one, (encoded, tf.range(tf.size(encoded))), fn_output_signature=(
        tf.TensorSpec([size, size, 3], tf.float32), tf.TensorSpec([2], tf.float32),
        tf.TensorSpec([2], tf.int32)))


def prepare_float(images, size: int) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(B, H, W, 3) float RGB in [0, 255] (one size for the batch) -> as :func:`prepare_encoded`."""
    images = tf.cast(images, tf.float32)
    hw = tf.shape(images)[1:3]
    canvases, scales = tf.map_fn(lambda im: letterbox(im, size), images, fn_output_signature=(
        tf.TensorSpec([size, size, 3], tf.float32), tf.TensorSpec([2], tf.float32)))
    return canvases, scales, tf.tile(hw[None], [tf.shape(images)[0], 1])


def short_side_scale(image_hw, short_side: int, max_size: int = 0) -> tf.Tensor:
    """Detectron's test scale of an image (``utils/blob.py`` ``get_target_scale``): ``short_side / min(H, W)``,
    or ``max_size / max(H, W)`` when the long side would round to more than ``max_size`` (0: no cap).

    Args:
      image_hw: (2,) int ``(H, W)``.
    Returns:
      () float64 scale: a point ``(x, y)`` of the image is at ``(x s, y s)`` in the resized one.
    """
    hw = tf.cast(image_hw, tf.float64)
    s = tf.constant(float(short_side), tf.float64) / tf.reduce_min(hw)
    if max_size:
        long_side = tf.reduce_max(hw)
        s = tf.where(tf.round(s * long_side) > float(max_size), float(max_size) / long_side, s)
    return s


def resize_short_side(image, short_side: int, max_size: int = 0) -> Tuple[tf.Tensor, tf.Tensor]:
    """One image at Detectron's test scale (:func:`short_side_scale`), resized as OpenCV's
    ``cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_LINEAR)`` resizes a float image.

    OpenCV's output is ``round(W s) x round(H s)`` and output pixel ``u`` reads the input at
    ``(u + 0.5) / s - 0.5`` with the two nearest pixels (edges replicated). ``tf.image.resize`` maps with the
    ratio of the sizes instead of ``s`` (up to 6.6 grey levels apart on an 800-pixel photograph), while
    ``ScaleAndTranslate`` with a triangle kernel, no antialiasing, scale ``s`` and no translation samples
    where OpenCV does (within 0.005 grey levels).

    Args:
      image: (H, W, 3) RGB values in [0, 255], any real or integer dtype.
    Returns:
      (round(H s), round(W s), 3) float32 and the () float32 scale ``s``.
    """
    image = tf.cast(image, tf.float32)
    hw = tf.shape(image)[:2]
    s = short_side_scale(hw, short_side, max_size)
    # tf.round rounds half to even, as OpenCV's cvRound does.
    new_hw = tf.maximum(tf.cast(tf.round(tf.cast(hw, tf.float64) * s), tf.int32), 1)
    scale = tf.cast(tf.stack([s, s]), tf.float32)
    resized = tf.raw_ops.ScaleAndTranslate(images=image[None], size=new_hw, scale=scale,
                                           translation=tf.zeros([2], tf.float32), kernel_type="triangle",
                                           antialias=False)[0]
    return resized, tf.cast(s, tf.float32)
