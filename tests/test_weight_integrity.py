"""Weights files are what their model records say: size and sha256 checked once per machine, values
checked on every load, damaged ONNX graphs named."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import pytest

from tests.conftest import shared_path
from tracker import CheckpointError, WeightsNotFoundError, build_tracker, integrity, weights

MODEL = "nanotrack-v2"


@pytest.fixture
def folders(tmp_path, monkeypatch):
    """An empty ``$TRACKER_WEIGHTS`` folder and a fresh ``$TRACKER_CACHE``."""
    user, cache = tmp_path / "weights", tmp_path / "cache"
    user.mkdir()
    monkeypatch.setenv(weights.WEIGHTS_ENV, str(user))
    monkeypatch.setenv(weights.CACHE_ENV, str(cache))
    monkeypatch.delenv(weights.MIRROR_ENV, raising=False)
    return user, cache


@pytest.fixture
def checkpoint_copy(folders):
    """A writable copy of the real nanotrack-v2 checkpoint in the ``$TRACKER_WEIGHTS`` folder."""
    name = weights.weights_info(MODEL).file
    target = folders[0] / name
    shutil.copyfile(shared_path("weights", "nanotrack", name), target)
    return target


@pytest.fixture
def hash_calls(monkeypatch):
    """The files hashed by :func:`tracker.integrity.file_sha256`, in order."""
    calls = []
    real = integrity.file_sha256

    def counting(path):
        calls.append(path)
        return real(path)

    monkeypatch.setattr(integrity, "file_sha256", counting)
    return calls


def test_checkpoint_with_flipped_bytes_names_file_and_both_digests(checkpoint_copy):
    data = bytearray(checkpoint_copy.read_bytes())
    data[1_000_000:1_000_400] = bytes(b ^ 0xFF for b in data[1_000_000:1_000_400])
    checkpoint_copy.write_bytes(bytes(data))
    expected = weights.weights_info(MODEL).sha256
    actual = hashlib.sha256(data).hexdigest()
    with pytest.raises(WeightsNotFoundError) as caught:
        build_tracker(MODEL)
    message = str(caught.value)
    assert f"{checkpoint_copy} has sha256 {actual}" in message
    assert f"the published file has sha256 {expected}" in message
    assert "Delete it and download it again" in message
    assert "pass its path explicitly" in message


def test_intact_file_is_hashed_once_and_again_after_its_mtime_changes(checkpoint_copy, hash_calls):
    build_tracker(MODEL)
    build_tracker(MODEL)
    assert hash_calls == [checkpoint_copy]
    stat = checkpoint_copy.stat()
    os.utime(checkpoint_copy, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    build_tracker(MODEL)
    assert hash_calls == [checkpoint_copy, checkpoint_copy]


def test_record_holds_size_mtime_and_digest_by_resolved_path(checkpoint_copy, folders):
    weights.resolve_weights(MODEL)
    record = json.loads((folders[1] / integrity.RECORD_FILE).read_text())
    stat = checkpoint_copy.stat()
    assert record == {
        "format": integrity.RECORD_FORMAT,
        "files": {
            str(checkpoint_copy.resolve()): {
                "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                "sha256": weights.weights_info(MODEL).sha256,
            }
        },
    }
    assert [p.name for p in folders[1].iterdir()] == [integrity.RECORD_FILE]


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"format": 1, "files": 7}', ""])
def test_corrupt_record_is_ignored_and_rewritten(checkpoint_copy, folders, hash_calls, content):
    folders[1].mkdir()
    record_file = folders[1] / integrity.RECORD_FILE
    record_file.write_text(content)
    assert weights.resolve_weights(MODEL) == checkpoint_copy
    assert hash_calls == [checkpoint_copy]
    assert str(checkpoint_copy.resolve()) in json.loads(record_file.read_text())["files"]
    weights.resolve_weights(MODEL)
    assert hash_calls == [checkpoint_copy]


def test_size_mismatch_is_reported_without_hashing(checkpoint_copy, monkeypatch):
    data = checkpoint_copy.read_bytes()
    checkpoint_copy.write_bytes(data[: len(data) // 2])

    def no_hashing(path):
        raise AssertionError(f"{path} was hashed")

    monkeypatch.setattr(integrity, "file_sha256", no_hashing)
    with pytest.raises(WeightsNotFoundError) as caught:
        weights.resolve_weights(MODEL)
    assert str(caught.value).startswith(
        f"{checkpoint_copy} has {len(data) // 2} bytes, but the published file has {len(data)};"
    )


def test_unwritable_cache_still_verifies(checkpoint_copy, folders, hash_calls):
    folders[1].write_text("a file where the cache folder should be")
    assert weights.resolve_weights(MODEL) == checkpoint_copy
    assert weights.resolve_weights(MODEL) == checkpoint_copy
    assert hash_calls == [checkpoint_copy, checkpoint_copy]


def test_explicit_path_is_loaded_without_a_digest_check(checkpoint_copy, hash_calls):
    data = bytearray(checkpoint_copy.read_bytes())
    data[1_000_000:1_000_400] = bytes(400)
    checkpoint_copy.write_bytes(bytes(data))
    build_tracker(MODEL, weights=checkpoint_copy)
    assert hash_calls == []


ONNX_ARTIFACTS = ("onnx_backbone", "onnx_head")


def _damaged_graph(path, case: str, original) -> None:
    """Write a zero-byte, truncated (first half of ``original``) or plain-text graph file."""
    data = original.read_bytes()
    content = {"empty": b"", "truncated": data[: len(data) // 2], "text": b"not a graph\n"}
    path.write_bytes(content[case])


def _expected_start(path, case: str, export: bool) -> str:
    if case == "empty":
        return f"{path} is empty (0 bytes), not an ONNX graph; write or download it again"
    return f"{path} is not {'a usable' if export else 'an'} ONNX graph (truncated, damaged or"


@pytest.mark.parametrize("case", ["empty", "truncated", "text"])
@pytest.mark.parametrize("part", ["template", "search"])
def test_damaged_graph_in_an_export_folder_is_named(tmp_path, case, part):
    from tracker import get_config

    backbone = shared_path("weights", "nanotrack", weights.weights_info(MODEL, "onnx_backbone").file)
    files = {"template": tmp_path / "template.onnx", "search": tmp_path / "search.onnx"}
    for graph in files.values():
        shutil.copyfile(backbone, graph)
    _damaged_graph(files[part], case, backbone)
    sidecar = {
        "format": 1, "model": MODEL, "config": get_config(MODEL).to_dict(),
        "template": {"file": "template.onnx"}, "search": {"file": "search.onnx"},
    }
    (tmp_path / "model.json").write_text(json.dumps(sidecar, default=dict))
    with pytest.raises(CheckpointError) as caught:
        build_tracker(MODEL, weights=tmp_path, backend="onnxruntime")
    assert str(caught.value).startswith(_expected_start(files[part], case, export=True))


@pytest.mark.parametrize("case", ["empty", "truncated", "text"])
@pytest.mark.parametrize("artifact", ONNX_ARTIFACTS)
def test_damaged_published_graph_is_named(tmp_path, monkeypatch, case, artifact):
    from tracker.backends import onnx_backend

    published = {
        name: shared_path("weights", "nanotrack", weights.weights_info(MODEL, name).file)
        for name in ONNX_ARTIFACTS
    }
    damaged = tmp_path / published[artifact].name
    _damaged_graph(damaged, case, published[artifact])
    files = {**published, artifact: damaged}
    monkeypatch.setattr(onnx_backend, "resolve_weights", lambda model, name: files[name])
    with pytest.raises(CheckpointError) as caught:
        build_tracker(MODEL, backend="onnxruntime")
    message = str(caught.value)
    assert message.startswith(_expected_start(damaged, case, export=False))
    assert "Missing opset" not in message


def test_truncated_published_graph_found_on_disk_fails_its_size_check(folders):
    info = weights.weights_info(MODEL, "onnx_head")
    for name in ONNX_ARTIFACTS:
        shutil.copyfile(
            shared_path("weights", "nanotrack", weights.weights_info(MODEL, name).file),
            folders[0] / weights.weights_info(MODEL, name).file,
        )
    _damaged_graph(folders[0] / info.file, "truncated", folders[0] / info.file)
    with pytest.raises(WeightsNotFoundError) as caught:
        build_tracker(MODEL, backend="onnxruntime")
    assert str(caught.value).startswith(
        f"{folders[0] / info.file} has {info.size // 2} bytes, but the published file has "
        f"{info.size};"
    )
