"""Is a weights file the one its model record describes? Size and sha256, hashed once per machine.

Hashing a checkpoint on every load would cost more than loading it, so a file that matched is
remembered in a small JSON record in the cache folder (``verified.json``), keyed by its resolved
path, with its size, ``mtime_ns`` and sha256. A later use trusts the record while size and
mtime are unchanged and the record's sha256 is the recorded one; anything else hashes again.
A record file that is corrupt or unreadable is ignored (the file is hashed) and rewritten;
one that cannot be written only means hashing again next time. This module imports neither
torch nor onnxruntime.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Dict, Optional

from .errors import WeightsNotFoundError

#: The record's file name inside the cache folder.
RECORD_FILE = "verified.json"
RECORD_FORMAT = 1
_CHUNK_BYTES = 1 << 20

_log = logging.getLogger(__name__)


def file_sha256(path: Path) -> str:
    """Hex sha256 of the file at ``path``, read in 1 MiB chunks (the one hashing helper)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(
    path: Path, sha256: Optional[str], size: Optional[int], record_dir: Path, fix: str
) -> Path:
    """``path`` when its size and sha256 are the expected ones, else a WeightsNotFoundError.

    A mismatch is a :class:`~tracker.errors.WeightsNotFoundError`, as a download whose digest
    differs already is: the file on disk is not the published one, so the model has no usable
    weights until the right file is there (the file itself may be a readable checkpoint, which
    is why it is not a ``CheckpointError``). The message names the file, both sizes or both
    digests, and ``fix``. ``None`` for ``sha256`` or ``size`` skips that check; a size mismatch
    is reported without hashing. A match is remembered in ``record_dir`` (see the module doc).
    """
    stat = path.stat()
    if size is not None and stat.st_size != size:
        raise WeightsNotFoundError(
            f"{path} has {stat.st_size} bytes, but the published file has {size}; it is "
            f"truncated or another file. {fix}"
        )
    if sha256 is None:
        return path
    key = str(path.resolve())
    entry = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha256}
    records = _read_records(record_dir)
    if records.get(key) == entry:
        return path
    actual = file_sha256(path)
    if actual != sha256:
        raise WeightsNotFoundError(
            f"{path} has sha256 {actual}, but the published file has sha256 {sha256}; it is "
            f"damaged or another file. {fix}"
        )
    remember(path, sha256, record_dir, records)
    return path


def remember(
    path: Path, sha256: str, record_dir: Path, records: Optional[Dict[str, dict]] = None
) -> None:
    """Record ``path`` (as it is now on disk) as verified with ``sha256``; best effort."""
    stat = path.stat()
    records = dict(_read_records(record_dir) if records is None else records)
    records[str(path.resolve())] = {
        "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha256,
    }
    content = json.dumps({"format": RECORD_FORMAT, "files": records}, indent=1, sort_keys=True)
    try:
        record_dir.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(prefix=f".{RECORD_FILE}.", dir=record_dir)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as sink:
                sink.write(content)
            os.replace(temp_name, record_dir / RECORD_FILE)
        finally:
            Path(temp_name).unlink(missing_ok=True)
    except OSError as exc:
        _log.debug("could not record %s as verified in %s: %s", path, record_dir, exc)


def _read_records(record_dir: Path) -> Dict[str, dict]:
    """The record's entries; empty when the file is missing, unreadable or not a record."""
    try:
        content = json.loads((record_dir / RECORD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(content, dict) or content.get("format") != RECORD_FORMAT:
        return {}
    files = content.get("files")
    return files if isinstance(files, dict) else {}
