"""Options, weights and file sources: round trips and error messages. No network access: URLs point
at a closed local port or are already in a temporary cache."""
from __future__ import annotations

import base64
import hashlib
import http.server
import json
import re
import shutil
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import h5py
import numpy as np
import pytest
import torch

from elmo_bench.elmo import (
    OFFICIAL_MODELS,
    BiLM,
    OptionsError,
    SourceError,
    WeightsError,
    batch_to_ids,
    load_bilm,
    load_pretrained,
    load_weights,
    read_options,
    resolve,
    save_weights,
)
from elmo_bench.elmo.options import parse_options
from elmo_bench.elmo.sources import cached_path

BATCH = [["The", "cat", "sat", "on", "the", "mat", "."], ["Привет", "мир"], []]


def outputs(bilm):
    with torch.no_grad():
        layers, mask = bilm(batch_to_ids(BATCH))
    return [layer.numpy() for layer in layers], mask.numpy()


@pytest.fixture
def options_json(allennlp_model) -> dict:
    return json.loads(allennlp_model.options.read_text(encoding="utf-8"))


def write_json(path, value):
    path.write_text(json.dumps(value), encoding="utf-8")
    return path


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to reach the network fails the test."""

    def no_network(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    directory = tmp_path / "cache"
    monkeypatch.setenv("ELMO_BENCH_CACHE", str(directory))
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    return directory


# ---------------------------------------------------------------------------------------------
# Weights round trip


def test_save_load_round_trip(allennlp_model, allennlp_bilm, tmp_path):
    path = tmp_path / "saved.hdf5"
    save_weights(allennlp_bilm, path)
    assert path.is_file() and not (tmp_path / "saved.hdf5.tmp").exists()
    fresh = BiLM(read_options(allennlp_model.options)).eval()
    load_weights(fresh, path)
    (expected, expected_mask), (actual, mask) = outputs(allennlp_bilm), outputs(fresh)
    assert np.array_equal(mask, expected_mask)
    for a, e in zip(actual, expected):
        assert np.array_equal(a, e)


def test_saved_file_equals_upstream_file(allennlp_model, allennlp_bilm, tmp_path):
    """Same dataset names, shapes, dtypes and values as the upstream weights file."""
    path = tmp_path / "saved.hdf5"
    save_weights(allennlp_bilm, path)

    def datasets(file):
        found = {}
        with h5py.File(file, "r") as handle:
            handle.visititems(lambda name, obj: found.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
        return found

    upstream, saved = datasets(allennlp_model.weights), datasets(path)
    assert sorted(saved) == sorted(upstream)
    assert len(upstream) == 1 + 10 + 8 + 2 + 12
    for name, value in upstream.items():
        assert saved[name].dtype == np.float32, name
        assert np.array_equal(saved[name], value), name


def test_load_weights_changes_outputs(allennlp_model, bilmtf_model, allennlp_bilm):
    before, _ = outputs(allennlp_bilm)
    load_weights(allennlp_bilm, bilmtf_model.weights)  # same shapes, different values
    after, _ = outputs(allennlp_bilm)
    assert np.abs(after[0] - before[0]).max() > 1e-2


# ---------------------------------------------------------------------------------------------
# Options


def test_fixture_options(allennlp_model, bilmtf_model):
    options = read_options(allennlp_model.options)
    assert options.char_cnn.filters == ((1, 4), (2, 8), (3, 16), (4, 32), (5, 64))
    assert options.char_cnn.n_filters == 124 and options.char_cnn.n_highway == 2
    assert options.char_cnn.embedding_dim == 4 and options.char_cnn.activation == "relu"
    assert (options.lstm.dim, options.lstm.projection_dim, options.lstm.n_layers) == (64, 16, 2)
    assert options.lstm.cell_clip == 3 and options.lstm.proj_clip == 3
    assert options.lstm.use_skip_connections is True
    assert options.output_dim == 32 and options.num_layers == 3
    assert read_options(bilmtf_model.options).lstm.use_skip_connections is False
    assert parse_options(options.to_json()) == options
    bilm = BiLM(options)
    assert sum(p.numel() for p in bilm.parameters()) == 105_120 + 4  # + the padding row of char_embed


def test_options_clip_and_leftovers(options_json):
    options_json["lstm"].update(cell_clip=0, proj_clip=None)
    options_json["n_tokens_vocab"] = 793471
    options_json["dropout"] = 0.1
    options = parse_options(options_json)
    assert options.lstm.cell_clip is None and options.lstm.proj_clip is None
    del options_json["lstm"]["cell_clip"]
    assert parse_options(options_json).lstm.cell_clip is None


@pytest.mark.parametrize(
    "section, key",
    [("lstm", "dim"), ("lstm", "projection_dim"), ("lstm", "n_layers"), ("char_cnn", "filters"), ("char_cnn", "n_highway"), (None, "lstm"), (None, "char_cnn")],
)
def test_options_missing_key(tmp_path, options_json, section, key):
    del (options_json[section] if section else options_json)[key]
    path = write_json(tmp_path / "options.json", options_json)
    with pytest.raises(OptionsError) as error:
        read_options(path)
    message = str(error.value)
    assert f"'{key}'" in message and str(path) in message
    if section:
        assert section in message


def test_options_missing_embedding_dim(tmp_path, options_json):
    del options_json["char_cnn"]["embedding"]["dim"]
    path = write_json(tmp_path / "options.json", options_json)
    with pytest.raises(OptionsError, match="'dim'") as error:
        read_options(path)
    assert "embedding" in str(error.value) and str(path) in str(error.value)


def test_options_bad_json(tmp_path):
    path = tmp_path / "options.json"
    path.write_text('{"lstm": {"dim": 64,}', encoding="utf-8")
    with pytest.raises(OptionsError) as error:
        read_options(path)
    assert str(path) in str(error.value) and "JSON" in str(error.value)


def test_options_missing_file(tmp_path):
    with pytest.raises(OptionsError, match="not found"):
        read_options(tmp_path / "nope.json")


def test_options_training_n_characters_refused(tmp_path, options_json):
    options_json["char_cnn"]["n_characters"] = 261
    path = write_json(tmp_path / "options.json", options_json)
    with pytest.raises(OptionsError, match="261") as error:
        read_options(path)
    assert "n_characters" in str(error.value) and "262" in str(error.value)


def test_options_other_token_width_refused(tmp_path, options_json):
    options_json["char_cnn"]["max_characters_per_token"] = 60
    with pytest.raises(OptionsError, match="max_characters_per_token is 60, only 50"):
        read_options(write_json(tmp_path / "options.json", options_json))


def test_options_bad_activation(tmp_path, options_json):
    options_json["char_cnn"]["activation"] = "gelu"
    with pytest.raises(OptionsError, match="gelu"):
        read_options(write_json(tmp_path / "options.json", options_json))


def test_options_errors_are_value_errors():
    assert issubclass(OptionsError, ValueError) and issubclass(WeightsError, ValueError)
    assert issubclass(SourceError, OSError)


# ---------------------------------------------------------------------------------------------
# Weights errors


def copy_weights(source, target, skip=(), replace=None):
    replace = replace or {}
    with h5py.File(source, "r") as src, h5py.File(target, "w") as dst:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and name not in skip:
                dst.create_dataset(name, data=replace.get(name, obj[()]))
        src.visititems(visit)
    return target


def test_weights_wrong_shape(allennlp_model, tmp_path):
    name = "CNN_high_1/W_transform"
    path = copy_weights(allennlp_model.weights, tmp_path / "w.hdf5", replace={name: np.zeros((124, 120), np.float32)})
    bilm = BiLM(read_options(allennlp_model.options))
    with pytest.raises(WeightsError) as error:
        load_weights(bilm, path)
    message = str(error.value)
    assert name in message and "(124, 120)" in message and "(124, 124)" in message and str(path) in message


def test_weights_wrong_options_for_file(allennlp_model, options_json, tmp_path):
    """A file whose shapes disagree with the options (here E=8 instead of 4) names the first dataset."""
    options_json["char_cnn"]["embedding"]["dim"] = 8
    bilm = BiLM(parse_options(options_json))
    with pytest.raises(WeightsError, match="char_embed") as error:
        load_weights(bilm, allennlp_model.weights)
    assert "(261, 4)" in str(error.value) and "(261, 8)" in str(error.value)


def test_weights_missing_dataset(allennlp_model, tmp_path):
    name = "RNN_1/RNN/MultiRNNCell/Cell1/LSTMCell/W_P_0"
    path = copy_weights(allennlp_model.weights, tmp_path / "w.hdf5", skip={name})
    with pytest.raises(WeightsError) as error:
        load_weights(BiLM(read_options(allennlp_model.options)), path)
    assert name in str(error.value) and "missing" in str(error.value) and str(path) in str(error.value)


def test_weights_truncated_file(allennlp_model, tmp_path):
    path = tmp_path / "truncated.hdf5"
    path.write_bytes(allennlp_model.weights.read_bytes()[:1000])
    with pytest.raises(WeightsError) as error:
        load_weights(BiLM(read_options(allennlp_model.options)), path)
    assert str(path) in str(error.value)


def test_weights_not_hdf5(allennlp_model, tmp_path):
    path = tmp_path / "weights.hdf5"
    path.write_text("<html>404 Not Found</html>")
    with pytest.raises(WeightsError, match="weights.hdf5"):
        load_weights(BiLM(read_options(allennlp_model.options)), path)


def test_weights_missing_file(allennlp_model, tmp_path):
    path = tmp_path / "absent.hdf5"
    with pytest.raises(WeightsError, match="not found") as error:
        load_weights(BiLM(read_options(allennlp_model.options)), path)
    assert str(path) in str(error.value)


# ---------------------------------------------------------------------------------------------
# Sources and the URL cache


def test_resolve_local_paths(allennlp_model, tmp_path):
    assert resolve(allennlp_model.options) == allennlp_model.options
    assert resolve(str(allennlp_model.options)) == allennlp_model.options
    with pytest.raises(SourceError, match="absent.json"):
        resolve(tmp_path / "absent.json")
    with pytest.raises(SourceError):
        resolve(tmp_path)  # a directory is not a file


def test_cached_path_layout(cache):
    url = "https://example.org/models/elmo/x_weights.hdf5"
    assert cached_path(url) == cache / "https" / "example.org" / "models" / "elmo" / "x_weights.hdf5"


def test_cached_path_stays_inside_the_cache(cache):
    url = "http://example.org:8080/a/../../etc/./passwd"
    assert cached_path(url) == cache / "http" / "example.org_8080" / "a" / "etc" / "passwd"
    with pytest.raises(SourceError, match="names no file"):
        cached_path("https://example.org/")


def test_cached_path_keeps_scheme_and_query_apart_and_credentials_out(cache):
    paths = {cached_path(url) for url in ("http://example.org/w.hdf5", "https://example.org/w.hdf5",
                                          "https://example.org/w.hdf5?v=1", "https://example.org/w.hdf5?v=2")}
    assert len(paths) == 4 and all(path.name == "w.hdf5" for path in paths)
    assert cached_path("https://me:secret@example.org/w.hdf5") == cached_path("https://example.org/w.hdf5")


def test_download_failure_names_url_and_cache_path(cache):
    url = "http://127.0.0.1:9/x.hdf5"  # discard port: connection refused, no network needed
    target = cached_path(url)
    assert cache in target.parents
    with pytest.raises(SourceError) as error:
        resolve(url)
    message = str(error.value)
    assert url in message and str(target) in message
    assert not target.exists()
    leftovers = [p for p in cache.rglob("*") if p.is_file() and p.suffix != ".lock"]  # the lock file stays
    assert leftovers == []


def test_cached_url_resolved_without_network(cache, offline):
    url = "https://allennlp.s3.amazonaws.com/models/elmo/test/elmo_test_options.json"
    target = cached_path(url)
    target.parent.mkdir(parents=True)
    target.write_text("{}")
    assert resolve(url) == target


def test_load_bilm_from_cached_urls(allennlp_model, allennlp_bilm, cache, offline):
    base = "https://allennlp.s3.amazonaws.com/models/elmo/fixture"
    options_url, weights_url = f"{base}/elmo_fixture_options.json", f"{base}/elmo_fixture_weights.hdf5"
    for url, source in [(options_url, allennlp_model.options), (weights_url, allennlp_model.weights)]:
        cached_path(url).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, cached_path(url))
    bilm = load_bilm(options_url, weights_url)
    assert not bilm.training
    for a, e in zip(outputs(bilm)[0], outputs(allennlp_bilm)[0]):
        assert np.array_equal(a, e)


def test_load_bilm_local_and_stateful(allennlp_model):
    bilm = load_bilm(allennlp_model.options, allennlp_model.weights, stateful=True)
    assert bilm.stateful and not bilm.training and bilm.output_dim == 32 and bilm.num_layers == 3


def test_official_models():
    assert set(OFFICIAL_MODELS) == {"small", "medium", "original", "original_5.5b"}
    dims = {name: model.output_dim for name, model in OFFICIAL_MODELS.items()}
    assert dims == {"small": 256, "medium": 512, "original": 1024, "original_5.5b": 1024}
    for model in OFFICIAL_MODELS.values():
        assert model.options_url.startswith("https://") and model.options_url.endswith("_options.json")
        assert model.weights_url.endswith("_weights.hdf5") and model.stem in model.weights_url
    assert OFFICIAL_MODELS["original_5.5b"].stem == "2x4096_512_2048cnn_2xhighway_5.5B"
    assert OFFICIAL_MODELS["small"].stem == "2x1024_128_2048cnn_1xhighway"


def test_load_pretrained_unknown_name():
    with pytest.raises(KeyError, match="small"):
        load_pretrained("tiny")


def test_load_pretrained_from_cache(allennlp_model, cache, offline, monkeypatch):
    """load_pretrained goes through the same cache: pre-placed files are used without network."""
    model = OFFICIAL_MODELS["small"]
    for url, source in [(model.options_url, allennlp_model.options), (model.weights_url, allennlp_model.weights)]:
        cached_path(url).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, cached_path(url))
    bilm = load_pretrained("small")
    assert bilm.output_dim == 32  # the fixture stands in for the real file


class Server:
    """A throw-away HTTP server on 127.0.0.1 (no external network): serves what `serve` gave each path, announcing
    `length` bytes (more than it sends, to cut a download short), and records the requests' Authorization."""

    def __init__(self):
        self.files: dict[str, tuple[bytes, int]] = {}
        self.requests, self.auth = 0, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests += 1
                server.auth.append(self.headers.get("Authorization"))
                if self.path not in server.files:
                    self.send_error(404)
                    return
                body, length = server.files[self.path]
                time.sleep(0.2)  # long enough for a second downloader to arrive meanwhile
                self.send_response(200)
                self.send_header("Content-Length", str(length))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def serve(self, path: str, body: bytes, length: int | None = None) -> str:
        self.files[path] = body, len(body) if length is None else length
        return self.url + path


@pytest.fixture
def server(cache):
    served = Server()
    yield served
    served.httpd.shutdown()
    served.httpd.server_close()
    served.thread.join()


def test_download_into_cache_once(allennlp_model, server, monkeypatch):
    url = server.serve("/w.hdf5", allennlp_model.weights.read_bytes())
    path = resolve(url)
    assert path == cached_path(url) and path.read_bytes() == allennlp_model.weights.read_bytes()
    assert sorted(p.name for p in path.parent.iterdir()) == ["w.hdf5", "w.hdf5.lock", "w.hdf5.sha256"]  # no .part
    server.files.clear()  # a second resolve must not need the server
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("network access attempted"))
    assert resolve(url) == path


def test_download_http_error(cache, server):
    url = f"{server.url}/missing.hdf5"
    with pytest.raises(SourceError) as error:
        resolve(url)
    assert url in str(error.value) and str(cached_path(url)) in str(error.value)
    assert [p.name for p in cache.rglob("*") if p.is_file()] == ["missing.hdf5.lock"]


def test_a_truncated_download_is_refused_and_nothing_kept(server, cache):
    url = server.serve("/elmo/weights.hdf5", b"x" * 400, length=1000)  # the connection closes 600 bytes early
    with pytest.raises(SourceError, match=rf"download of {re.escape(url)} stopped after 400 of 1,000 bytes; nothing"
                                          rf" was kept at {re.escape(str(cached_path(url)))}"):
        resolve(url)
    assert [p.name for p in cache.rglob("*") if p.is_file()] == ["weights.hdf5.lock"]


def test_a_download_records_its_sha256_and_a_changed_file_is_named(server):
    url = server.serve("/elmo/weights.hdf5", b"weights" * 100)
    target = resolve(url)
    recorded = target.with_name("weights.hdf5.sha256").read_text(encoding="utf-8")
    assert target.read_bytes() == b"weights" * 100
    assert recorded == f"{hashlib.sha256(b'weights' * 100).hexdigest()}  weights.hdf5\n"
    assert resolve(url) == target and server.requests == 1
    target.write_bytes(b"weights" * 99)  # damaged on disk later
    with pytest.raises(SourceError, match=rf"{re.escape(str(target))} is not the file downloaded from .*"
                                          rf"Delete {re.escape(str(target))} to download it again"):
        resolve(url)


def test_credentials_go_in_a_header_never_in_paths_or_messages(server, cache):
    url = server.serve("/w.hdf5", b"abc", length=10).replace("http://", "http://me:s3cret@")
    with pytest.raises(SourceError) as error:
        resolve(url)
    assert server.auth == [f"Basic {base64.b64encode(b'me:s3cret').decode()}"]
    assert "s3cret" not in str(error.value) and "me:" not in str(error.value)
    assert not [p for p in cache.rglob("*") if "s3cret" in str(p)]


def test_concurrent_downloads_of_one_file_fetch_it_once(server):
    url = server.serve("/elmo/options.json", b"options" * 50)
    with ThreadPoolExecutor(2) as pool:
        paths = list(pool.map(resolve, [url, url]))
    assert paths[0] == paths[1] and paths[0].read_bytes() == b"options" * 50
    assert server.requests == 1
