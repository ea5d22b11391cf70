"""The TF Serving client (lcr_tf.serving.client): the requests it builds, decoded as TF Serving decodes them,
run through the signatures of the exported SavedModel loaded with tf.saved_model.load; and the REST
round trip over HTTP against a small stand-in server that does the same."""

import base64
import http.server
import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import tensorflow as tf
from test_export import D, K, noise, png, tiny_model

from lcr_tf.serving import client, inference
from lcr_tf.serving import export as export_lib

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

OPTIONS = {"score_threshold": 0.01, "iou_threshold": 0.3, "pose3d_threshold_m": 0.2, "min_mode_score": 0.05,
           "min_person_score": 0.002, "sigma_b_px": 20.0, "rescore": False,
           "intrinsics": [200.0, 200.0, 30.0, 25.0]}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    root = tmp_path_factory.mktemp("client")
    model_dir = str(root / "run")
    inference.save_model_dir(tiny_model(), model_dir)
    params = inference.default_params(K, "paper", max_candidates=40, max_detections=D)
    return tf.saved_model.load(export_lib.export(model_dir, str(root / "serving"), params=params))


@pytest.fixture(scope="module")
def images():
    return [png(noise(50, 60, 20)), png(noise(70, 40, 21))]


def call(loaded, signature, inputs):
    return {k: v.numpy() for k, v in loaded.signatures[signature](**inputs).items()}


def assert_same(a, b):
    assert set(a) == set(b)
    for key in a:
        np.testing.assert_allclose(np.asarray(a[key], np.float64), np.asarray(b[key], np.float64), atol=1e-5,
                                   err_msg=key)


def test_rest_body_layout(images):
    body = client.build_rest_request(images)
    assert body["signature_name"] == "serving_default"
    assert [base64.b64decode(i["b64"]) for i in body["instances"]] == images
    body = client.build_rest_request(images, options=OPTIONS)
    assert body["signature_name"] == "detect_with_options"
    first = body["instances"][0]
    assert set(first) == {"images", *client.OPTION_NAMES, "intrinsics"}
    assert first["intrinsics"] == OPTIONS["intrinsics"] and first["rescore"] is False
    per_image = dict(OPTIONS, score_threshold=[0.01, 0.5])
    assert client.build_rest_request(images, options=per_image)["instances"][1]["score_threshold"] == 0.5
    with pytest.raises(ValueError, match=r"missing \['sigma_b_px'\]"):
        client.build_rest_request(images, options={k: v for k, v in OPTIONS.items() if k != "sigma_b_px"})
    with pytest.raises(ValueError, match="intrinsics"):
        client.build_rest_request(images, options=dict(OPTIONS, intrinsics=[1.0, 2.0]))
    with pytest.raises(ValueError, match="raw_proposals"):
        client.build_rest_request(images, "raw_proposals", options=OPTIONS)
    assert client.rest_url("localhost:8501", "lcr") == "http://localhost:8501/v1/models/lcr:predict"
    assert client.rest_url("http://h:1/", "m", 3) == "http://h:1/v1/models/m/versions/3:predict"


@pytest.mark.parametrize("signature", ["serving_default", "raw_proposals", "detect_with_options"])
def test_rest_requests_through_the_signatures(loaded, images, signature):
    options = OPTIONS if signature == "detect_with_options" else None
    body = json.loads(json.dumps(client.build_rest_request(images, signature, options)))  # over the wire
    name, inputs = client.rest_body_to_inputs(body)
    assert name == signature
    got = call(loaded, name, inputs)
    direct = {"images": tf.constant(images)}
    if options:
        direct.update({k: tf.constant([v, v], tf.bool if k == "rescore" else tf.float32)
                       for k, v in OPTIONS.items()})
    assert_same(got, call(loaded, signature, direct))
    # TF Serving's row-format answer, parsed back.
    rows = [{k: v[i].tolist() for k, v in got.items()} for i in range(len(images))]
    assert_same(client.parse_rest_response(json.loads(json.dumps({"predictions": rows}))), got)


def test_options_change_the_answer(loaded, images):
    _, inputs = client.rest_body_to_inputs(client.build_rest_request(images, options=OPTIONS))
    base = call(loaded, "detect_with_options", inputs)
    _, inputs = client.rest_body_to_inputs(client.build_rest_request(
        images, options=dict(OPTIONS, score_threshold=[0.01, 2.0])))
    other = call(loaded, "detect_with_options", inputs)
    assert other["num_detections"][0] == base["num_detections"][0] > 0 and other["num_detections"][1] == 0


def test_parse_rest_errors():
    with pytest.raises(RuntimeError, match="Invalid argument"):
        client.parse_rest_response({"error": "Invalid argument: junk"})
    np.testing.assert_array_equal(client.parse_rest_response({"outputs": {"a": [[1, 2]]}})["a"], [[1, 2]])


class _StandIn(http.server.BaseHTTPRequestHandler):
    """Answers /v1/models/lcr:predict as TF Serving does, from a loaded SavedModel."""
    loaded = None

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        try:
            assert self.path == "/v1/models/lcr:predict", self.path
            name, inputs = client.rest_body_to_inputs(body)
            out = call(self.loaded, name, inputs)
            n = len(body["instances"])
            answer, status = {"predictions": [{k: v[i].tolist() for k, v in out.items()} for i in range(n)]}, 200
        except (tf.errors.InvalidArgumentError, AssertionError) as e:
            answer, status = {"error": str(e).splitlines()[0]}, 400
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture()
def server(loaded):
    _StandIn.loaded = loaded
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _StandIn)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_rest_predict_over_http_and_command(loaded, images, server, tmp_path):
    got = client.rest_predict(server, "lcr", images)
    assert_same(got, call(loaded, "serving_default", {"images": tf.constant(images)}))
    with pytest.raises(RuntimeError, match="TF Serving error"):
        client.rest_predict(server, "lcr", [b"junk"])
    paths = []
    for i, data in enumerate(images):
        paths.append(str(tmp_path / f"{i}.png"))
        with open(paths[-1], "wb") as f:
            f.write(data)
    out = str(tmp_path / "out.json")
    assert client.main(["client", f"--server={server}", f"--images={','.join(paths)}", f"--output={out}"]) == 0
    with open(out) as f:
        np.testing.assert_array_equal(json.load(f)["num_detections"], got["num_detections"])
    dump = str(tmp_path / "body.json")
    assert client.main(["client", f"--images={paths[0]}", f"--dump_request={dump}"]) == 0
    with open(dump) as f:
        assert base64.b64decode(json.load(f)["instances"][0]["b64"]) == images[0]
    assert client.main(["client"]) == 2


def test_grpc_without_the_package_says_what_to_install(images, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_serving", None)
    monkeypatch.setitem(sys.modules, "tensorflow_serving.apis", None)
    with pytest.raises(ImportError, match="tensorflow-serving-api"):
        client.build_grpc_request(images, "lcr")


def _grpc_request_to_inputs(request):
    """(signature name, input name -> tensor) of a PredictRequest, as TF Serving decodes it."""
    return request.model_spec.signature_name or client.DEFAULT_SIGNATURE, {
        name: tf.constant(tf.make_ndarray(proto)) for name, proto in request.inputs.items()}


@pytest.mark.parametrize("signature", ["serving_default", "detect_with_options"])
def test_grpc_requests_through_the_signatures(loaded, images, signature):
    pytest.importorskip("tensorflow_serving.apis", reason="the gRPC request needs tensorflow-serving-api")
    options = OPTIONS if signature == "detect_with_options" else None
    request = client.build_grpc_request(images, "lcr", signature, options, version=2)
    assert request.model_spec.name == "lcr" and request.model_spec.version.value == 2
    wire = type(request).FromString(request.SerializeToString())
    name, inputs = _grpc_request_to_inputs(wire)
    assert name == signature
    _, rest_inputs = client.rest_body_to_inputs(client.build_rest_request(images, signature, options))
    assert_same(call(loaded, name, inputs), call(loaded, signature, rest_inputs))


def test_client_imports_without_tensorflow():
    """The REST client and the serving contract need neither TensorFlow nor the model code."""
    code = ("import sys; sys.modules['tensorflow'] = None\n"
            "from lcr_tf.serving import client\n"
            "body = client.build_rest_request([b'abc'])\n"
            "assert body['instances'] == [{'b64': 'YWJj'}], body\n"
            "assert 'tensorflow' not in [m for m in sys.modules if sys.modules[m] is not None]\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=_REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
