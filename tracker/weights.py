"""Where model weights come from: the model records' artifacts, the folders searched, downloads.

Each model's record in :mod:`tracker.zoo` lists its published files (file
name, sha256, size, URL). :func:`resolve_weights` finds one (a checkpoint, or one of
NanoTrack's ONNX files) under the name the record gives it, looking in this order in

1. the folders of ``$TRACKER_WEIGHTS`` (a path list, separated like ``PATH``),
2. the project's ``weights/`` folder (beside the ``tracker`` package),
3. the user cache, ``$TRACKER_CACHE`` or ``~/.cache/tracker``.

A file found nowhere is downloaded into the cache when it has a direct URL (or when
``$TRACKER_WEIGHTS_URL`` names a mirror that serves every file by its recorded file name), checked
against its published sha256 and only then moved into place, so the cache never holds a partial
or corrupt file. Every failure is one :class:`~tracker.errors.WeightsNotFoundError` naming the
file, where it comes from and where to put it. This module imports neither torch nor onnxruntime.
"""

from __future__ import annotations

import http.client
import logging
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, List, Optional

from tqdm import tqdm

from .errors import WeightsNotFoundError
from .integrity import file_sha256, remember, verify_file
from .zoo import get_record

#: Environment variable: folders searched first, separated by ``os.pathsep``.
WEIGHTS_ENV = "TRACKER_WEIGHTS"
#: Environment variable: the download cache folder (default ``~/.cache/tracker``).
CACHE_ENV = "TRACKER_CACHE"
#: Environment variable: base URL of a mirror serving every file by its recorded file name; it
#: replaces the records' URLs and also serves files that have none.
MIRROR_ENV = "TRACKER_WEIGHTS_URL"

#: The project's ``weights/`` folder of a checkout, searched after ``$TRACKER_WEIGHTS`` when it
#: exists; an installed package does not need it.
PROJECT_WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"

#: Seconds without an answer from the server before a download gives up.
DOWNLOAD_TIMEOUT_S = 30.0
_CHUNK_BYTES = 1 << 16

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WeightsInfo:
    """One published file of one model: the record's :class:`~tracker.zoo.Artifact` with the
    model's provenance, as the lookup and its error messages need them.

    ``sha256`` and ``url`` are ``None`` where the authors publish neither a checksum nor a
    direct link (Google Drive, Baidu); ``page`` is then where a person gets the file, and
    ``published_as`` the name it has there (pysot calls every checkpoint ``model.pth``).
    """

    model: str
    artifact: str
    file: str
    sha256: Optional[str]
    size: Optional[int]
    url: Optional[str]
    page: str
    published_as: str
    source: str
    license: str
    attribution: str


def weights_info(model: str, artifact: str = "checkpoint") -> WeightsInfo:
    """One published file (``"checkpoint"``, ``"onnx_head"``, ...) of a model, from its record."""
    record = get_record(model)
    published = record.artifact(artifact)
    provenance = record.provenance
    return WeightsInfo(
        model=model,
        artifact=artifact,
        file=published.file,
        sha256=published.sha256,
        size=published.size,
        url=published.url,
        page=published.page,
        published_as=published.published_as or published.file,
        source=provenance.source,
        license=provenance.license,
        attribution=provenance.attribution,
    )


def cache_dir() -> Path:
    """Where downloads go: ``$TRACKER_CACHE`` or ``~/.cache/tracker``."""
    configured = os.environ.get(CACHE_ENV)
    folder = Path(configured).expanduser() if configured else Path.home() / ".cache" / "tracker"
    return folder.absolute()


def search_dirs() -> List[Path]:
    """Folders searched for weight files, first match wins (duplicates dropped)."""
    user = [
        Path(entry).expanduser().absolute()
        for entry in os.environ.get(WEIGHTS_ENV, "").split(os.pathsep)
        if entry
    ]
    return list(dict.fromkeys([*user, PROJECT_WEIGHTS_DIR, cache_dir()]))


def find_weights(model: str, artifact: str = "checkpoint") -> Optional[Path]:
    """The artifact's file in the first of :func:`search_dirs` that has it, else ``None``.

    A file found is checked as :func:`resolve_weights` checks it.
    """
    info = weights_info(model, artifact)
    found = _first_existing(info.file, search_dirs())
    return None if found is None else _verified(found, info)


def resolve_weights(
    model: str, artifact: str = "checkpoint", *, download: bool = True, progress: bool = True
) -> Path:
    """Path of an artifact of ``model``: found in :func:`search_dirs`, else downloaded and verified.

    A file found on disk is checked against the record's size and sha256 the first time it
    is used on this machine (:mod:`tracker.integrity` remembers it); a mismatch is a
    :class:`WeightsNotFoundError` naming the file, both digests and the fix. ``download=False``
    only searches. ``progress`` shows a progress bar on stderr while downloading. Raises
    :class:`WeightsNotFoundError` when the file cannot be had, naming the file, its URL or page,
    and the folders searched.
    """
    info = weights_info(model, artifact)
    dirs = search_dirs()
    found = _first_existing(info.file, dirs)
    if found is not None:
        return _verified(found, info)
    url = _download_url(info)
    if url is None:
        raise _unavailable(
            info, dirs, None, f"{info.file} is in none of the searched folders and has no direct "
            "download URL"
        )
    if not download:
        raise _unavailable(
            info, dirs, url,
            f"{info.file} is in none of the searched folders and downloading is off",
        )
    return _download(info, url, dirs, progress)


def _first_existing(name: str, dirs: List[Path]) -> Optional[Path]:
    for folder in dirs:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


def _verified(path: Path, info: WeightsInfo) -> Path:
    """``path`` once it matches the record's size and sha256 (see :mod:`tracker.integrity`)."""
    fix = (
        f"Delete it and download it again ({info.url or info.page}), or pass its path "
        "explicitly (build_tracker's weights=, the commands' --weights) to load it as it is."
    )
    return verify_file(path, info.sha256, info.size, cache_dir(), fix)


def _download_url(info: WeightsInfo) -> Optional[str]:
    mirror = os.environ.get(MIRROR_ENV)
    if mirror:
        return f"{mirror.rstrip('/')}/{urllib.parse.quote(info.file)}"
    return info.url


def _unavailable(
    info: WeightsInfo, dirs: List[Path], url: Optional[str], problem: str
) -> WeightsNotFoundError:
    """The error for every way a file cannot be had: what failed, where to get it and put it."""
    if url is not None:
        fetch = f"download it from {url}"
    else:
        fetch = f"get it from {info.page}"
        if info.published_as != info.file:
            fetch += f" (published there as {info.published_as}; save it as {info.file})"
    if info.sha256 is not None:
        fetch += f" (sha256 {info.sha256})"
    folders = ", ".join(str(folder) for folder in dirs)
    return WeightsNotFoundError(
        f"no weights for model {info.model!r} ({info.artifact}): {problem}. To fix it, {fetch} "
        f"and put it in one of the searched folders ({folders}), or add its folder to "
        f"${WEIGHTS_ENV}, or pass the file's path (build_tracker's weights=, the commands' "
        "--weights)."
    )


def _download(info: WeightsInfo, url: str, dirs: List[Path], progress: bool) -> Path:
    """Stream ``url`` into a temporary file in the cache; verify, then rename it into place."""
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(prefix=f".{info.file}.", suffix=".part", dir=folder)
    except OSError as exc:
        raise _unavailable(
            info, dirs, url, f"the cache folder {folder} is not writable ({exc.strerror or exc}); "
            f"set ${CACHE_ENV} to a writable folder"
        ) from None
    temp = Path(temp_name)
    _log.info("downloading %s from %s into %s", info.file, url, folder)
    try:
        try:
            with os.fdopen(handle, "wb") as sink:
                _stream(url, sink, info.file, progress)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise _unavailable(
                info, dirs, url, f"{info.file} is in none of the searched folders and could not "
                f"be downloaded ({_describe(exc)})"
            ) from None
        digest = file_sha256(temp)
        if info.sha256 is None:
            warnings.warn(
                f"{info.file} downloaded from {url} has no published sha256 and was not verified",
                stacklevel=3,
            )
        elif digest != info.sha256:
            raise _unavailable(
                info, dirs, url, f"{info.file} is in none of the searched folders and the "
                f"downloaded copy has sha256 {digest}, expected {info.sha256}, so it was discarded"
            )
        target = folder / info.file
        os.replace(temp, target)
        if info.sha256 is not None:
            remember(target, info.sha256, folder)
        return target
    finally:
        temp.unlink(missing_ok=True)


def _stream(url: str, sink: BinaryIO, label: str, progress: bool) -> None:
    """Copy ``url`` into ``sink`` with a progress bar."""
    received = 0
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length else None
        with tqdm(
            total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1024,
            disable=not progress,
        ) as bar:
            for chunk in iter(lambda: response.read(_CHUNK_BYTES), b""):
                sink.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if total is not None and received != total:
        raise ConnectionError(f"the connection closed after {received} of {total} bytes")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__
