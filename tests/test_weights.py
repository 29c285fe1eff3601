"""Model records' published files, lookup order and downloads (against an HTTP server on 127.0.0.1; offline)."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import threading

import pytest

from tests.conftest import ROOT, shared_path
import tracker
from tracker import weights, zoo
from tracker.errors import UnknownNameError, WeightsNotFoundError
from tracker.zoo import list_models

PAYLOAD = bytes(range(256)) * 300
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
MANUAL_PAGE = "https://example.org/models/manual"
NANOTRACK_ARTIFACTS = ("checkpoint", "onnx_backbone", "onnx_head")


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the server's folder, records every path asked for, and can cut a body short."""

    def do_GET(self) -> None:
        self.server.hits.append(self.path)
        if self.path.endswith("/truncated.pth"):
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving ``tmp_path/served``; ``.url`` is its base URL."""
    root = tmp_path / "served"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(root))
    )
    httpd.hits = []
    httpd.root = root
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def closed_port_url():
    """A URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    """Isolated search folders: ``user`` ($TRACKER_WEIGHTS), ``project`` and ``cache``."""
    folders = {name: tmp_path / name for name in ("user", "project", "cache")}
    for folder in folders.values():
        folder.mkdir()
    monkeypatch.setenv(weights.WEIGHTS_ENV, str(folders["user"]))
    monkeypatch.setenv(weights.CACHE_ENV, str(folders["cache"]))
    monkeypatch.delenv(weights.MIRROR_ENV, raising=False)
    monkeypatch.setattr(weights, "PROJECT_WEIGHTS_DIR", folders["project"])
    return folders


def _toy_record(name, artifact, license_name="MIT"):
    config = dataclasses.replace(zoo.get_config("nanotrack-v2"), name=name)
    provenance = zoo.Provenance(
        source=f"https://example.org/{name}", license=license_name,
        license_url=f"https://example.org/{name}/LICENSE", attribution=f"{name} weights",
    )
    return zoo.ModelRecord(config, provenance, (artifact,), "Toy", "toy network")


def _toy_records(monkeypatch, url, toy_file="toy.pth"):
    """Add records of a downloadable ``toy`` and a page-only ``manual`` model to the lookup."""
    toy = zoo.Artifact(kind="checkpoint", file=toy_file, page="https://example.org/toy",
                       sha256=PAYLOAD_SHA, size=len(PAYLOAD), url=url)
    manual = zoo.Artifact(kind="checkpoint", file="manual.pth", page=MANUAL_PAGE,
                          published_as="model.pth")
    records = {"toy": _toy_record("toy", toy), "manual": _toy_record("manual", manual)}
    real = zoo.get_record
    monkeypatch.setattr(weights, "get_record", lambda name: records.get(name) or real(name))


@pytest.fixture
def toy(tmp_path, monkeypatch, dirs, server):
    """The toy records with the URL on the test server, which serves the right bytes."""
    (server.root / "toy.pth").write_bytes(PAYLOAD)
    _toy_records(monkeypatch, f"{server.url}/toy.pth")
    return server


def _assert_names_folders(message: str, folders) -> None:
    for folder in folders.values():
        assert str(folder) in message


def test_download_verifies_caches_and_is_not_repeated(toy, dirs):
    path = weights.resolve_weights("toy", progress=False)
    assert path == dirs["cache"] / "toy.pth"
    assert path.read_bytes() == PAYLOAD
    assert toy.hits == ["/toy.pth"]
    assert weights.resolve_weights("toy", progress=False) == path
    assert toy.hits == ["/toy.pth"]
    assert sorted(p.name for p in dirs["cache"].iterdir()) == ["toy.pth", "verified.json"]
    record = json.loads((dirs["cache"] / "verified.json").read_text())
    assert record["files"][str(path.resolve())]["sha256"] == PAYLOAD_SHA


def test_progress_bar_shows_file_and_size_only_when_asked(toy, dirs, capsys):
    weights.resolve_weights("toy", progress=False)
    assert capsys.readouterr().err == ""
    (dirs["cache"] / "toy.pth").unlink()
    weights.resolve_weights("toy", progress=True)
    err = capsys.readouterr().err
    assert "toy.pth" in err
    assert "100%" in err
    assert "75.0k/75.0k" in err  # 76800 bytes in KiB, unit_divisor=1024


def test_checksum_mismatch_discards_the_download(toy, dirs):
    wrong = PAYLOAD[::-1]
    (toy.root / "toy.pth").write_bytes(wrong)
    with pytest.raises(WeightsNotFoundError) as caught:
        weights.resolve_weights("toy", progress=False)
    message = str(caught.value)
    assert f"sha256 {hashlib.sha256(wrong).hexdigest()}, expected {PAYLOAD_SHA}" in message
    assert f"download it from {toy.url}/toy.pth" in message
    assert "model 'toy'" in message
    _assert_names_folders(message, dirs)
    assert list(dirs["cache"].iterdir()) == []


def test_unreachable_host_names_file_url_and_folders(tmp_path, monkeypatch, dirs, closed_port_url):
    url = f"{closed_port_url}/toy.pth"
    _toy_records(monkeypatch, url)
    with pytest.raises(WeightsNotFoundError) as caught:
        weights.resolve_weights("toy", progress=False)
    message = str(caught.value)
    assert "toy.pth is in none of the searched folders" in message
    assert "could not be downloaded (" in message
    assert f"download it from {url} (sha256 {PAYLOAD_SHA})" in message
    assert "refused" in message.lower()
    _assert_names_folders(message, dirs)
    assert list(dirs["cache"].iterdir()) == []


def test_http_error_is_reported(toy, dirs):
    (toy.root / "toy.pth").unlink()
    with pytest.raises(WeightsNotFoundError, match="HTTP 404"):
        weights.resolve_weights("toy", progress=False)
    assert list(dirs["cache"].iterdir()) == []


def test_truncated_body_leaves_no_file(toy, dirs, monkeypatch):
    monkeypatch.setenv(weights.MIRROR_ENV, f"{toy.url}/cut")
    _toy_records(monkeypatch, f"{toy.url}/toy.pth", toy_file="truncated.pth")
    with pytest.raises(WeightsNotFoundError, match="closed after 10 of 1000 bytes"):
        weights.resolve_weights("toy", progress=False)
    assert toy.hits == ["/cut/truncated.pth"]
    assert list(dirs["cache"].iterdir()) == []


def test_download_off_only_searches(toy, dirs):
    with pytest.raises(WeightsNotFoundError) as caught:
        weights.resolve_weights("toy", download=False)
    message = str(caught.value)
    assert "downloading is off" in message
    assert f"download it from {toy.url}/toy.pth (sha256 {PAYLOAD_SHA})" in message
    assert toy.hits == []


def test_no_url_names_the_page(toy, dirs):
    with pytest.raises(WeightsNotFoundError) as caught:
        weights.resolve_weights("manual")
    message = str(caught.value)
    assert "manual.pth is in none of the searched folders and has no direct download URL" in message
    page_hint = f"get it from {MANUAL_PAGE} (published there as model.pth; save it as manual.pth)"
    assert page_hint in message
    _assert_names_folders(message, dirs)
    assert toy.hits == []


def test_real_record_without_url_names_its_model_zoo_link(dirs):
    info = weights.weights_info("siamrpnpp-r50")
    with pytest.raises(WeightsNotFoundError) as caught:
        weights.resolve_weights("siamrpnpp-r50")
    message = str(caught.value)
    assert info.file == "siamrpn_r50_l234_dwxcorr.pth"
    assert info.page.startswith("https://drive.google.com/")
    assert f"get it from {info.page} (published there as model.pth" in message
    _assert_names_folders(message, dirs)


def test_mirror_replaces_the_records_url(tmp_path, monkeypatch, dirs, server, closed_port_url):
    _toy_records(monkeypatch, f"{closed_port_url}/toy.pth")
    (server.root / "mirror").mkdir()
    (server.root / "mirror" / "toy.pth").write_bytes(PAYLOAD)
    monkeypatch.setenv(weights.MIRROR_ENV, f"{server.url}/mirror/")
    assert weights.resolve_weights("toy", progress=False).read_bytes() == PAYLOAD
    assert server.hits == ["/mirror/toy.pth"]


def test_mirror_serves_files_without_checksum_with_a_warning(toy, dirs, monkeypatch):
    (toy.root / "manual.pth").write_bytes(b"unverified")
    monkeypatch.setenv(weights.MIRROR_ENV, toy.url)
    with pytest.warns(UserWarning, match="manual.pth .* was not verified"):
        path = weights.resolve_weights("manual", progress=False)
    assert path == dirs["cache"] / "manual.pth"
    assert path.read_bytes() == b"unverified"


def test_lookup_order_user_then_project_then_cache(toy, dirs, tmp_path, monkeypatch):
    second = tmp_path / "second"
    second.mkdir()
    monkeypatch.setenv(weights.WEIGHTS_ENV, os.pathsep.join([str(dirs["user"]), str(second)]))
    for folder in (second, dirs["project"], dirs["cache"]):
        (folder / "toy.pth").write_bytes(PAYLOAD)
    expected_order = [second, dirs["project"], dirs["cache"]]
    (dirs["user"] / "toy.pth").write_bytes(PAYLOAD)
    assert weights.resolve_weights("toy") == dirs["user"] / "toy.pth"
    assert weights.find_weights("toy") == dirs["user"] / "toy.pth"
    (dirs["user"] / "toy.pth").unlink()
    for folder in expected_order:
        assert weights.resolve_weights("toy") == folder / "toy.pth"
        (folder / "toy.pth").unlink()
    assert weights.find_weights("toy") is None
    assert toy.hits == []


def test_search_dirs_and_default_cache(tmp_path, monkeypatch):
    monkeypatch.delenv(weights.CACHE_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    listed = os.pathsep.join(["", str(tmp_path / "a"), str(tmp_path / "b")])
    monkeypatch.setenv(weights.WEIGHTS_ENV, listed)
    expected_cache = tmp_path / "home" / ".cache" / "tracker"
    assert weights.cache_dir() == expected_cache
    assert weights.search_dirs() == [
        tmp_path / "a", tmp_path / "b", ROOT / "weights", expected_cache,
    ]
    monkeypatch.delenv(weights.WEIGHTS_ENV)
    assert weights.search_dirs() == [ROOT / "weights", expected_cache]


def test_unknown_names_are_rejected():
    with pytest.raises(UnknownNameError, match="unknown model 'nanotrack-v9'; known: siamfc-alex"):
        weights.resolve_weights("nanotrack-v9")
    unpublished = "artifact 'onnx_head' is not published for model 'siamfc-alexnet'; it has: check"
    with pytest.raises(ValueError, match=unpublished):
        weights.resolve_weights("siamfc-alexnet", "onnx_head")
    with pytest.raises(TypeError, match="model name must be a str"):
        weights.resolve_weights(None)


def test_every_model_record_names_its_licence_and_published_files():
    for name in list_models():
        record = zoo.get_record(name)
        provenance = record.provenance
        assert provenance.license in {"MIT", "Apache-2.0", "CC-BY-SA-3.0"}, name
        assert provenance.license_url.startswith("https://")
        assert provenance.attribution and provenance.source.startswith("https://")
        assert record.artifacts[0].kind == "checkpoint"
        assert tracker.describe(name)["license"] == provenance.license
        for artifact in (a.kind for a in record.artifacts):
            info = weights.weights_info(name, artifact)
            assert info.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", info.sha256)
            assert info.url is None or info.url.startswith("https://")
            assert info.page.startswith("https://")
            if info.url is None:
                assert info.sha256 is None, f"{name}: a checksum with no URL"


def test_nanotrack_entries_name_the_official_files_and_their_licence():
    for version in (1, 2, 3):
        model = f"nanotrack-v{version}"
        infos = {name: weights.weights_info(model, name) for name in NANOTRACK_ARTIFACTS}
        assert infos["checkpoint"].file == f"nanotrackv{version}.pth"
        suffix = "" if version == 3 else "_sim"
        assert infos["onnx_backbone"].file == f"nanotrackv{version}_nanotrack_backbone{suffix}.onnx"
        assert infos["onnx_head"].file == f"nanotrackv{version}_nanotrack_head{suffix}.onnx"
        for info in infos.values():
            assert info.license == "Apache-2.0"
            assert "HonglinChu" in info.attribution
            assert info.url.startswith(
                "https://raw.githubusercontent.com/HonglinChu/SiamTrackers/"
                "248663fde6bf7c40190cf10ee396d5662919ecd3/NanoTrack/models/"
            )


def test_real_nanotrack_files_are_found_and_match_their_records(monkeypatch):
    folder = shared_path("weights", "nanotrack")
    monkeypatch.setenv(weights.WEIGHTS_ENV, str(folder))
    monkeypatch.delenv(weights.MIRROR_ENV, raising=False)
    for version in (1, 2, 3):
        for artifact in NANOTRACK_ARTIFACTS:
            info = weights.weights_info(f"nanotrack-v{version}", artifact)
            path = weights.resolve_weights(info.model, artifact, download=False)
            assert path == folder.absolute() / info.file
            data = path.read_bytes()
            assert len(data) == info.size
            assert hashlib.sha256(data).hexdigest() == info.sha256


def test_module_imports_neither_torch_nor_onnxruntime():
    code = (
        "import sys, tracker.weights; "
        "print(sorted(m for m in ('torch', 'onnxruntime') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
