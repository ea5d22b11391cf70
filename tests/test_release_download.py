"""lcr_tf.release.download: a released model fetched by name into a cache, from a server on the loopback."""

import http.server
import os
import pickle
import threading

import pytest

from lcr_tf.release import download

PAYLOAD = pickle.dumps({"model": {}, "cfg": {}, "anchor_poses": None}, protocol=2)


class _Server(http.server.BaseHTTPRequestHandler):
    """Serves /models/<name>.pkl from ``files``; counts the requests; ``lie`` announces more bytes."""

    files = {}
    requests = []
    lie = False

    def do_GET(self):  # noqa: N802 (http.server's name)
        type(self).requests.append(self.path)
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body) + (100 if self.lie else 0)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Server.files = {"/models/InTheWild-ResNet50.pkl": PAYLOAD, "/models/page.pkl": b"<html>not found</html>"}
    _Server.requests = []
    _Server.lie = False
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _Server)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/models/"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_downloads_once_then_uses_the_cache(server, tmp_path):
    lines = []
    path = download.fetch_release("InTheWild-ResNet50", str(tmp_path), server, log=lines.append)
    assert path == str(tmp_path / "InTheWild-ResNet50.pkl")
    assert open(path, "rb").read() == PAYLOAD
    assert _Server.requests == ["/models/InTheWild-ResNet50.pkl"]
    again = download.fetch_release("InTheWild-ResNet50", str(tmp_path), server, log=lines.append)
    assert again == path and len(_Server.requests) == 1, "the second call must not download"
    assert "downloading" in lines[0] and "cached" in lines[-1]
    assert os.listdir(tmp_path) == ["InTheWild-ResNet50.pkl"], "no partial file may stay behind"


def test_the_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(download.CACHE_ENV, str(tmp_path))
    assert download.cache_dir() == str(tmp_path / "release")
    assert download.cache_dir("/elsewhere") == "/elsewhere"


def test_missing_model_names_the_address_and_status(server, tmp_path):
    with pytest.raises(OSError, match=r"cannot download http://127\.0\.0\.1:\d+/models/Nope\.pkl: HTTP 404"):
        download.fetch_release("Nope", str(tmp_path), server, log=lambda _: None)
    assert not list(tmp_path.iterdir())


def test_a_page_that_is_not_a_pickle_is_not_cached(server, tmp_path):
    with pytest.raises(OSError, match="not a pickle"):
        download.fetch_release("page", str(tmp_path), server, log=lambda _: None)
    assert not list(tmp_path.iterdir())


def test_a_short_download_is_not_cached(server, tmp_path):
    _Server.lie = True  # announces 100 bytes more than it sends: the client sees a cut transfer
    with pytest.raises(OSError, match="cannot download"):
        download.fetch_release("InTheWild-ResNet50", str(tmp_path), server, log=lambda _: None)
    assert not list(tmp_path.iterdir())


def test_an_unreachable_server_is_an_error(tmp_path):
    with pytest.raises(OSError, match="cannot download http://127.0.0.1:9/"):
        download.fetch_release("X", str(tmp_path), "http://127.0.0.1:9/", timeout=5, log=lambda _: None)


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b", "", "x.pkl", ".hidden", "a b"])
def test_names_that_are_not_plain_are_refused(name, tmp_path):
    with pytest.raises(ValueError, match="plain name"):
        download.fetch_release(name, str(tmp_path), "http://127.0.0.1:9/", log=lambda _: None)
