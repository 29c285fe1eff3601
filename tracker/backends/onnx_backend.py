"""Run a tracker's network on onnxruntime, without torch.

Two layouts are understood:

* an export folder written by ``python -m tracker.export``: ``model.json`` (the sidecar with
  the model config and graph names), a template graph (exemplar -> kernel tensors) and a
  search graph (search crops + kernel tensors -> head outputs);
* NanoTrack's published pair of graphs, a backbone and a head (``weights=None`` finds them
  through the weights manifest). The backbone is published with a fixed 255x255 input; a copy
  with free spatial sizes (nodes and weights untouched) serves the 127x127 exemplar.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import onnxruntime as ort

from ..config import ModelConfig
from ..errors import CheckpointError, WeightsNotFoundError
from ..weights import cache_dir, resolve_weights

SIDECAR = "model.json"
SIDECAR_FORMAT = 1
Kernel = Tuple[np.ndarray, ...]


def session(
    model: Union[str, bytes, "os.PathLike[str]"], threads: Optional[int] = None
) -> ort.InferenceSession:
    """A CPU inference session with all graph optimisations and ``threads`` intra-op threads."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    # Idle pool threads would otherwise spin between runs and steal the cores that the
    # crop and decoding steps of the same frame need (long tails on small machines).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        options.intra_op_num_threads = threads
    source = model if isinstance(model, bytes) else os.fspath(model)
    try:
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types
        name = "in-memory graph" if isinstance(model, bytes) else os.fspath(model)
        raise CheckpointError(f"{name} is not a usable ONNX graph: {error}") from None


class ExportedRunner:
    """Template and search graphs written by ``tracker.export``."""

    def __init__(self, template: ort.InferenceSession, search: ort.InferenceSession) -> None:
        self._template = template
        self._search = search
        self._z_name = template.get_inputs()[0].name
        self._x_name = search.get_inputs()[0].name
        self._kernel_names = [i.name for i in search.get_inputs()[1:]]
        self._output_names = [o.name for o in search.get_outputs()]
        if len(template.get_outputs()) != len(self._kernel_names):
            raise CheckpointError(
                f"template graph has {len(template.get_outputs())} outputs but the search graph "
                f"takes {len(self._kernel_names)} kernel inputs"
            )

    def template(self, z: np.ndarray) -> Kernel:
        return tuple(self._template.run(None, {self._z_name: z}))

    def track(self, kernel: Kernel, x: np.ndarray) -> Dict[str, np.ndarray]:
        feeds = dict(zip(self._kernel_names, kernel))
        feeds[self._x_name] = x
        return dict(zip(self._output_names, self._search.run(self._output_names, feeds)))


class BackboneHeadRunner:
    """NanoTrack's published graphs: backbone (any crop) then head (template, search features)."""

    def __init__(
        self, template_backbone: ort.InferenceSession, search_backbone: ort.InferenceSession,
        head: ort.InferenceSession,
    ) -> None:
        self._template_backbone = template_backbone
        self._search_backbone = search_backbone
        self._head = head
        self._image_name = search_backbone.get_inputs()[0].name
        self._template_feature, self._search_feature = (i.name for i in head.get_inputs())
        self._outputs = [o.name for o in head.get_outputs()]

    def template(self, z: np.ndarray) -> Kernel:
        return (self._template_backbone.run(None, {self._image_name: z})[0],)

    def track(self, kernel: Kernel, x: np.ndarray) -> Dict[str, np.ndarray]:
        features = self._search_backbone.run(None, {self._image_name: x})[0]
        cls, loc = self._head.run(
            self._outputs, {self._template_feature: kernel[0], self._search_feature: features}
        )
        return {"cls": cls, "loc": loc}


def free_spatial_dims(path: Union[str, "os.PathLike[str]"]) -> bytes:
    """The graph at ``path`` with its inputs' and outputs' height and width made symbolic."""
    import onnx

    model = onnx.load(os.fspath(path))
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        for index, label in ((2, "height"), (3, "width")):
            if len(dims) > index:
                dims[index].ClearField("dim_value")
                dims[index].dim_param = f"{value.name}_{label}"
    del model.graph.value_info[:]
    return model.SerializeToString()


def default_export_dir(model: str) -> Path:
    """Where ``python -m tracker.export`` writes a model by default (the user cache)."""
    return cache_dir() / "onnx" / model


def read_sidecar(path: Union[str, "os.PathLike[str]"]) -> Tuple[Path, Dict[str, Any]]:
    """The sidecar file of an export folder (or the sidecar itself) and its content."""
    path = Path(os.fspath(path))
    sidecar = path / SIDECAR if path.is_dir() else path
    if not sidecar.is_file():
        raise FileNotFoundError(
            f"weights for the onnxruntime backend must be an export folder holding {SIDECAR} "
            f"(or that file), written by python -m tracker.export; not found: {sidecar}"
        )
    try:
        content = json.loads(sidecar.read_text())
        files = (content["template"]["file"], content["search"]["file"], content["config"])
    except (ValueError, KeyError, TypeError) as error:
        raise CheckpointError(f"{sidecar} is not an export sidecar ({error})") from None
    if content.get("format") != SIDECAR_FORMAT or not all(files):
        raise CheckpointError(f"{sidecar}: unsupported sidecar format {content.get('format')!r}")
    return sidecar, content


def _check_compatible(config: ModelConfig, exported: Dict[str, Any], sidecar: Path) -> None:
    network = exported["config"].get("network")
    if network != config.to_dict()["network"]:
        raise CheckpointError(
            f"{sidecar} holds an export of {exported.get('model')!r}, whose network differs "
            f"from {config.name!r}; export {config.name} or pass its folder"
        )


def load_exported(
    config: ModelConfig, weights: Union[str, "os.PathLike[str]"], threads: Optional[int] = None
) -> ExportedRunner:
    sidecar, content = read_sidecar(weights)
    _check_compatible(config, content, sidecar)
    folder = sidecar.parent
    graphs = []
    for part in ("template", "search"):
        graph = folder / content[part]["file"]
        if not graph.is_file():
            raise FileNotFoundError(f"{sidecar} names {graph}, which does not exist")
        graphs.append(session(graph, threads))
    return ExportedRunner(*graphs)


def load_published_nanotrack(config: ModelConfig, threads: Optional[int] = None) -> BackboneHeadRunner:
    backbone = resolve_weights(config.name, "onnx_backbone")
    head = resolve_weights(config.name, "onnx_head")
    return BackboneHeadRunner(
        session(free_spatial_dims(backbone), threads), session(backbone, threads), session(head, threads)
    )


def load_runner(
    config: ModelConfig,
    weights: Optional[Union[str, "os.PathLike[str]"]] = None,
    threads: Optional[int] = None,
) -> Union[ExportedRunner, BackboneHeadRunner]:
    """An onnxruntime runner for ``config``.

    ``weights``: an export folder (or its ``model.json``). ``None``: NanoTrack uses its
    published ONNX files from the weights manifest; other models use the export that
    ``python -m tracker.export`` wrote into the user cache.
    """
    if weights is None and config.family == "nanotrack":
        return load_published_nanotrack(config, threads)
    return load_exported(config, _export_location(config, weights), threads)


def search_graph_files(
    config: ModelConfig, weights: Optional[Union[str, "os.PathLike[str]"]] = None
) -> List[Path]:
    """The graphs :func:`load_runner` runs on every search crop, in order (backbone then
    head for NanoTrack's published pair, else the export's search graph)."""
    if weights is None and config.family == "nanotrack":
        return [resolve_weights(config.name, "onnx_backbone"), resolve_weights(config.name, "onnx_head")]
    sidecar, content = read_sidecar(_export_location(config, weights))
    return [sidecar.parent / content["search"]["file"]]


def _export_location(
    config: ModelConfig, weights: Optional[Union[str, "os.PathLike[str]"]]
) -> Union[str, "os.PathLike[str]"]:
    """``weights``, or the export in the user cache when it is ``None``."""
    if weights is not None:
        return weights
    folder = default_export_dir(config.name)
    if not (folder / SIDECAR).is_file():
        raise WeightsNotFoundError(
            f"no onnxruntime export of {config.name} in {folder}; create it with "
            f"'python -m tracker.export --model {config.name} --weights CHECKPOINT' "
            f"or pass weights=EXPORT_FOLDER"
        )
    return folder
