"""Client of an LCR-Net model served by TensorFlow Serving (REST and gRPC).

    python -m lcr_tf.serving.client --server=http://localhost:8501 --model_name=lcr \\
        --images=a.jpg,b.png [--signature_name=serving_default] [--output=people.json]
    python -m lcr_tf.serving.client --protocol=grpc --server=localhost:8500 --model_name=lcr --images=a.jpg

(the server: ``tensorflow_model_server --rest_api_port=8501 --port=8500 --model_name=lcr
--model_base_path=/abs/export`` on the output of :mod:`lcr_tf.export`).

REST
    ``POST {server}/v1/models/{model_name}[/versions/{version}]:predict`` with the JSON body
    ``{"signature_name": ..., "instances": [...]}`` (TF Serving's row format): one instance per image,
    ``{"b64": base64 of the file's bytes}`` alone when the signature's only input is ``images``, else an
    object ``{"images": {"b64": ...}, "score_threshold": 0.01, ..., "intrinsics": [fx, fy, cx, cy]}``
    (the ``detect_with_options`` signature). The answer ``{"predictions": [{output: value}, ...]}`` is
    turned back into arrays with a batch dimension.
gRPC
    ``tensorflow.serving.PredictionService/Predict`` with a ``PredictRequest`` whose inputs are
    ``tf.make_tensor_proto`` tensors. It needs the ``tensorflow-serving-api`` package (version 2.21.0
    imports with TensorFlow 2.21 and grpcio); without it the gRPC functions raise an ImportError that
    says so, and the REST path works with the standard library alone.

:func:`rest_body_to_inputs` decodes a REST body into the tensors TF Serving passes to the signature, so a
request can be checked against a SavedModel loaded with ``tf.saved_model.load``.
"""

from __future__ import annotations

import base64
import json
import sys
import urllib.error
import urllib.request
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from lcr_tf.contracts import atomic_files, serving

DEFAULT_SIGNATURE = serving.SERVING_DEFAULT
OPTIONS_SIGNATURE = serving.DETECT_WITH_OPTIONS
IMAGES = serving.IMAGES
INTRINSICS = serving.INTRINSICS
# The per-image settings of the detect_with_options signature.
OPTION_NAMES = serving.OPTION_NAMES
# An example of every detect_with_options setting (the --options flag's help).
_OPTIONS_EXAMPLE = {serving.SCORE_THRESHOLD: 0.01, serving.IOU_THRESHOLD: 0.2, serving.POSE3D_THRESHOLD_M: 0.13,
                    serving.MIN_MODE_SCORE: 0.05, serving.MIN_PERSON_SCORE: 0.002, serving.SIGMA_B_PX: 25,
                    serving.RESCORE: True, serving.INTRINSICS: [1000, 1000, 320, 240]}

_GRPC_MISSING = ("the gRPC client needs the tensorflow-serving-api package (`pip install "
                 "tensorflow-serving-api==2.21.0`, which imports with TensorFlow 2.21); the REST client "
                 "(--protocol=rest) needs nothing more")


def read_images(paths: Sequence[str]) -> List[bytes]:
    """The bytes of image files (sent as they are: the server decodes them and checks their size).

    Raises:
      OSError: a file cannot be read (the message names it).
      ValueError: a file is empty (a cut copy): the server would refuse it, after a round trip.
    """
    out = []
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        if not data:
            raise ValueError(f"{path}: empty file, not an image")
        out.append(data)
    return out


def _check_options(options: Optional[Mapping[str, Any]], batch: int) -> Dict[str, Any]:
    """Validates ``options``: every name of :data:`OPTION_NAMES` and ``intrinsics`` (4 values), each one
    value for all images or one per image; returns name -> list of ``batch`` per-image values."""
    options = dict(options or {})
    expected = set(OPTION_NAMES) | {INTRINSICS}
    if set(options) != expected:
        missing, extra = sorted(expected - set(options)), sorted(set(options) - expected)
        raise ValueError(f"the {OPTIONS_SIGNATURE} signature takes every option: missing {missing}, "
                         f"unknown {extra}")
    out = {}
    for name, value in options.items():
        array = np.asarray(value)
        single = array.ndim == (1 if name == INTRINSICS else 0)
        if single:
            array = np.broadcast_to(array, (batch,) + array.shape)
        if array.shape[0] != batch or (name == INTRINSICS and array.shape[1:] != (4,)):
            raise ValueError(f"option {name!r} has shape {np.asarray(value).shape}: give one value (intrinsics: "
                             f"4) for all {batch} images or one per image")
        out[name] = array.tolist()
    return out


def build_rest_request(images: Sequence[bytes], signature_name: str = DEFAULT_SIGNATURE,
                       options: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """The JSON body of a REST predict request (module docstring).

    Args:
      images: encoded image files.
      signature_name: ``serving_default`` (no options), ``raw_proposals`` or ``detect_with_options``
        (:mod:`lcr_tf.contracts.serving`).
      options: for ``detect_with_options``: every :data:`OPTION_NAMES` and ``intrinsics``, one value for
        all images or a sequence of one per image. With options and no signature name, that signature.
    """
    if not images:
        raise ValueError("no images to send")
    encoded = [{"b64": base64.b64encode(data).decode("ascii")} for data in images]
    if options is not None and signature_name == DEFAULT_SIGNATURE:
        signature_name = OPTIONS_SIGNATURE
    if signature_name == OPTIONS_SIGNATURE:
        per_image = _check_options(options, len(images))
        instances = [{IMAGES: e, **{k: v[i] for k, v in per_image.items()}} for i, e in enumerate(encoded)]
    elif options is not None:
        raise ValueError(f"options go to the {OPTIONS_SIGNATURE} signature, not {signature_name!r}")
    else:
        instances = encoded
    return {"signature_name": signature_name, "instances": instances}


def rest_url(server: str, model_name: str, version: Optional[int] = None) -> str:
    """``{server}/v1/models/{model_name}[/versions/{version}]:predict``."""
    server = server.rstrip("/")
    if "://" not in server:
        server = "http://" + server
    path = f"/v1/models/{model_name}" + (f"/versions/{int(version)}" if version is not None else "")
    return server + path + ":predict"


def parse_rest_response(body: Mapping[str, Any]) -> Dict[str, np.ndarray]:
    """A REST answer (row format ``{"predictions": [...]}`` or columnar ``{"outputs": ...}``) -> output
    name -> array with the batch first. Raises RuntimeError with the server's message on ``{"error"}``."""
    if "error" in body:
        raise RuntimeError(f"TF Serving error: {body['error']}")
    if "outputs" in body:
        outputs = body["outputs"]
        return {k: np.asarray(v) for k, v in outputs.items()} if isinstance(outputs, dict) else \
            {"output": np.asarray(outputs)}
    rows = body["predictions"]
    if rows and isinstance(rows[0], dict):
        return {k: np.asarray([row[k] for row in rows]) for k in rows[0]}
    return {"output": np.asarray(rows)}


def rest_predict(server: str, model_name: str, images: Sequence[bytes], signature_name: str = DEFAULT_SIGNATURE,
                 options: Optional[Mapping[str, Any]] = None, version: Optional[int] = None,
                 timeout: float = 60.0) -> Dict[str, np.ndarray]:
    """Sends a REST predict request (standard library HTTP) and returns the outputs as arrays."""
    body = json.dumps(build_rest_request(images, signature_name, options)).encode()
    request = urllib.request.Request(rest_url(server, model_name, version), data=body,
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read().decode())
    except urllib.error.HTTPError as e:
        try:
            answer = json.loads(e.read().decode())
        except ValueError:
            raise RuntimeError(f"TF Serving answered HTTP {e.code}") from None
    except urllib.error.URLError as e:
        raise OSError(f"{server}: no answer ({e.reason})") from None
    return parse_rest_response(answer)


def rest_body_to_inputs(body: Mapping[str, Any]) -> Tuple[str, Dict[str, Any]]:
    """What TF Serving hands the signature for a row-format body: (signature name, input name -> tensor).

    ``{"b64": ...}`` values become tf.string bytes; the other values are stacked over the instances as
    float32 (bool for ``rescore``). A bare ``{"b64"}`` instance is the signature's single ``images`` input.
    """
    import tensorflow as tf

    def value(v):
        return base64.b64decode(v["b64"]) if isinstance(v, dict) and "b64" in v else v

    signature = body.get("signature_name", DEFAULT_SIGNATURE)
    rows = [inst if isinstance(inst, dict) and "b64" not in inst else {IMAGES: inst} for inst in body["instances"]]
    inputs = {}
    for name in rows[0]:
        values = [value(row[name]) for row in rows]
        if name == IMAGES:
            inputs[name] = tf.constant(values, tf.string)
        elif name in serving.BOOL_OPTIONS:
            inputs[name] = tf.constant(values, tf.bool)
        else:
            inputs[name] = tf.constant(values, tf.float32)
    return signature, inputs


# --------------------------------------------------------------------------------------------------
# gRPC
# --------------------------------------------------------------------------------------------------

def _serving_apis():
    try:
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
    except ImportError as e:
        raise ImportError(_GRPC_MISSING) from e
    return predict_pb2, prediction_service_pb2_grpc


def build_grpc_request(images: Sequence[bytes], model_name: str, signature_name: str = DEFAULT_SIGNATURE,
                       options: Optional[Mapping[str, Any]] = None, version: Optional[int] = None):
    """The ``tensorflow.serving.PredictRequest`` of the same call as :func:`build_rest_request`."""
    import tensorflow as tf

    predict_pb2, _ = _serving_apis()
    if not images:
        raise ValueError("no images to send")
    if options is not None and signature_name == DEFAULT_SIGNATURE:
        signature_name = OPTIONS_SIGNATURE
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = int(version)
    request.inputs[IMAGES].CopyFrom(tf.make_tensor_proto(list(images), dtype=tf.string, shape=[len(images)]))
    if signature_name == OPTIONS_SIGNATURE:
        for name, values in _check_options(options, len(images)).items():
            dtype = tf.bool if name in serving.BOOL_OPTIONS else tf.float32
            request.inputs[name].CopyFrom(tf.make_tensor_proto(values, dtype=dtype))
    elif options is not None:
        raise ValueError(f"options go to the {OPTIONS_SIGNATURE} signature, not {signature_name!r}")
    return request


def grpc_predict(server: str, model_name: str, images: Sequence[bytes], signature_name: str = DEFAULT_SIGNATURE,
                 options: Optional[Mapping[str, Any]] = None, version: Optional[int] = None,
                 timeout: float = 60.0) -> Dict[str, np.ndarray]:
    """Sends a gRPC predict request to ``server`` (``host:port``) and returns the outputs as arrays."""
    import grpc
    import tensorflow as tf

    _, service = _serving_apis()
    request = build_grpc_request(images, model_name, signature_name, options, version)
    # Images are large: lift gRPC's 4 MB default message limit.
    limit = [("grpc.max_send_message_length", 1 << 30), ("grpc.max_receive_message_length", 1 << 30)]
    with grpc.insecure_channel(server, options=limit) as channel:
        response = service.PredictionServiceStub(channel).Predict(request, timeout)
    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------

def _define_flags(values):
    from absl import flags

    flags.DEFINE_enum("protocol", "rest", ["rest", "grpc"], "REST (port 8501) or gRPC (port 8500).",
                      flag_values=values)
    flags.DEFINE_string("server", "http://localhost:8501", "REST: http://host:port; gRPC: host:port.",
                        flag_values=values)
    flags.DEFINE_string("model_name", "lcr", "The --model_name the server was started with.", flag_values=values)
    flags.DEFINE_integer("version", None, "A model version to ask for (default: the server's latest).",
                         flag_values=values)
    flags.DEFINE_list("images", [], "Image files to send in one request.", flag_values=values)
    flags.DEFINE_string("signature_name", DEFAULT_SIGNATURE, f"{serving.SERVING_DEFAULT}, {OPTIONS_SIGNATURE} or "
                        f"{serving.RAW_PROPOSALS}.", flag_values=values)
    flags.DEFINE_string("options", None, f"JSON object of every {OPTIONS_SIGNATURE} setting, e.g. "
                        f"'{json.dumps(_OPTIONS_EXAMPLE)}'.", flag_values=values)
    flags.DEFINE_string("output", None, "Write the outputs as JSON here (default: print a summary).",
                        flag_values=values)
    flags.DEFINE_string("dump_request", None, "Write the REST JSON body here and send nothing.",
                        flag_values=values)
    flags.DEFINE_float("timeout", 60.0, "Seconds to wait for the answer.", flag_values=values)


def main(argv: Optional[List[str]] = None) -> int:
    """The command; returns the exit status."""
    from absl import flags

    values = flags.FlagValues()
    _define_flags(values)
    argv = list(sys.argv if argv is None else argv)
    if any(a in ("-h", "--help", "-?", "--helpfull") for a in argv[1:]):
        print(__doc__.strip())
        print("\nFlags:")
        print(values.get_help(include_special_flags=False))
        return 0
    try:
        rest = values(argv)
    except flags.Error as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if len(rest) > 1:
        print(f"error: unexpected arguments {rest[1:]}", file=sys.stderr)
        return 2
    if not values.images:
        print("error: --images is required", file=sys.stderr)
        return 2
    try:
        images = read_images(values.images)
        try:
            options = json.loads(values.options) if values.options else None
        except ValueError as e:
            raise ValueError(f"--options is not a JSON object ({e})") from None
        if values.dump_request:
            with open(values.dump_request, "w") as f:
                json.dump(build_rest_request(images, values.signature_name, options), f)
            print(f"wrote the request body to {values.dump_request}")
            return 0
        call = rest_predict if values.protocol == "rest" else grpc_predict
        outputs = call(values.server, values.model_name, images, values.signature_name, options,
                       values.version, values.timeout)
    except (OSError, ValueError, RuntimeError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if values.output:
        atomic_files.write_json(values.output, {k: np.asarray(v).tolist() for k, v in outputs.items()})
        print(f"wrote {values.output}")
    else:
        counts = outputs.get(serving.NUM_DETECTIONS)
        for path, n in zip(values.images, [] if counts is None else np.asarray(counts).tolist()):
            print(f"{path}: {n} people")
    return 0


if __name__ == "__main__":
    sys.exit(main())
