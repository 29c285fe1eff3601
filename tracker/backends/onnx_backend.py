"""Run a tracker's network on onnxruntime, without torch.

Two layouts are understood:

* an export folder written by ``python -m tracker.export``: ``model.json`` (the sidecar with
  the model config and graph names), a template graph (exemplar -> kernel tensors) and a
  search graph (search crops + kernel tensors -> head outputs);
* NanoTrack's published pair of graphs, a backbone and a head (``weights=None`` finds them
  through the model record). The backbone is published with a fixed 255x255 input; a copy
  with free spatial sizes (nodes and weights untouched) serves the 127x127 exemplar, and the
  backbone joined to the head serves the searches, so both layouts run as an export does.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import onnxruntime as ort

from ..config import ModelConfig
from ..errors import CheckpointError, WeightsNotFoundError
from ..weights import cache_dir, resolve_weights
from ..zoo import cpu_policy
from .thread_choice import FastestSession

if TYPE_CHECKING:
    import onnx

SIDECAR = "model.json"
#: The sidecar of the int8 search graph that ``python -m tracker.export --int8`` writes.
INT8_SIDECAR = "model-int8.json"
SIDECAR_FORMAT = 1
Kernel = Tuple[np.ndarray, ...]


def session(
    model: Union[str, bytes, "os.PathLike[str]"],
    threads: Optional[int] = None,
    *,
    spinning: bool = True,
    origin: str = "in-memory graph",
) -> ort.InferenceSession:
    """A CPU inference session with all graph optimisations and ``threads`` intra-op threads.

    ``spinning``: the pool's threads spin between the operators of a run instead of sleeping
    (onnxruntime's ``session.intra_op.allow_spinning``), and stop spinning as soon as the run
    returns (``session.force_spinning_stop``): left spinning, they would burn a core between
    a camera's frames, about 25 of every 33 ms at 30 frames/s (README "Speed on a busy CPU").
    These settings belong to this session only. ``origin`` names a graph given as bytes in
    errors (the files it was made from).
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    if not isinstance(spinning, bool):
        raise ValueError(f"spinning must be True or False, got {spinning!r}")
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    options.add_session_config_entry("session.force_spinning_stop", "1")
    if threads is not None:
        options.intra_op_num_threads = _thread_count(threads)
    source = model if isinstance(model, bytes) else os.fspath(graph_file(model))
    try:
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types
        name = origin if isinstance(model, bytes) else source
        raise CheckpointError(
            f"{name} is not a usable ONNX graph (truncated, damaged or another kind of file; "
            f"write or download it again): {error}"
        ) from None


def graph_file(path: Union[str, "os.PathLike[str]"]) -> Path:
    """``path`` as a :class:`Path`, once it is known to be a non-empty file.

    onnx parses an empty file as an empty model, and onnxruntime then reports a missing opset
    without naming the file, so an empty file is refused here, by name.
    """
    file = Path(os.fspath(path))
    if not file.is_file():
        raise FileNotFoundError(f"ONNX graph file not found: {file}")
    if file.stat().st_size == 0:
        raise CheckpointError(
            f"{file} is empty (0 bytes), not an ONNX graph; write or download it again"
        )
    return file


def load_graph(path: Union[str, "os.PathLike[str]"]) -> onnx.ModelProto:
    """The ONNX model in the file at ``path``; a :class:`CheckpointError` naming the file when
    it is empty, truncated, not ONNX, or holds no graph."""
    import onnx
    from google.protobuf.message import DecodeError

    file = graph_file(path)
    try:
        model = onnx.load(os.fspath(file))
    except (DecodeError, ValueError) as error:
        raise CheckpointError(
            f"{file} is not an ONNX graph (truncated, damaged or another kind of file; write or "
            f"download it again): {error}"
        ) from None
    if not model.graph.node or not model.opset_import:
        raise CheckpointError(
            f"{file} is not an ONNX graph (it holds no operator nodes or no opset); write or "
            "download it again"
        )
    return model


class ExportedRunner:
    """Template and search graphs written by ``tracker.export``.

    ``single``: an optional second search graph for one crop of one target, used where the
    batched graph costs more than the original at batch 1 (NanoTrack v3's published head,
    whose batch-folded correlation :mod:`.onnx_batch` rewrites: 2.9 against 2.2 ms).
    """

    def __init__(
        self,
        template: ort.InferenceSession,
        search: ort.InferenceSession,
        single: Optional[ort.InferenceSession] = None,
    ) -> None:
        self._template = template
        self._search = search
        self._single = single
        self._z_name = template.get_inputs()[0].name
        self._x_name = search.get_inputs()[0].name
        self._kernel_names = [i.name for i in search.get_inputs()[1:]]
        self._output_names = [o.name for o in search.get_outputs()]
        if len(template.get_outputs()) != len(self._kernel_names):
            raise CheckpointError(
                f"template graph has {len(template.get_outputs())} outputs but the search graph "
                f"takes {len(self._kernel_names)} kernel inputs"
            )
        # Exports written before batched tracking take a kernel of batch 1 only.
        self.batched = all(
            not isinstance(i.shape[0], int) for i in search.get_inputs()[1:]
        )

    def template(self, z: np.ndarray) -> Kernel:
        return tuple(self._template.run(None, {self._z_name: z}))

    def stack(self, kernels: Sequence[Kernel], crops: Sequence[int]) -> Kernel:
        if not self.batched:
            raise CheckpointError(
                "this ONNX export takes one target's kernel per search (it was written before "
                "batched tracking); write it again with python -m tracker.export to track "
                "several targets in one call"
            )
        return tuple(
            np.concatenate([np.repeat(k, count, axis=0) for k, count in zip(part, crops)])
            for part in zip(*kernels)
        )

    def track(self, kernel: Kernel, x: np.ndarray) -> Dict[str, np.ndarray]:
        graph = self._search
        if x.shape[0] == 1 and self._single is not None:
            graph = self._single
        elif self.batched and x.shape[0] > 1 and kernel[0].shape[0] == 1:
            kernel = tuple(np.repeat(k, x.shape[0], axis=0) for k in kernel)
        feeds = dict(zip(self._kernel_names, kernel))
        feeds[self._x_name] = x
        return dict(zip(self._output_names, graph.run(self._output_names, feeds)))


def free_spatial_dims(model: onnx.ModelProto) -> bytes:
    """``model`` with its inputs' and outputs' height and width made symbolic (changed in
    place, returned serialised)."""
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
    config: ModelConfig,
    weights: Union[str, "os.PathLike[str]"],
    threads: Optional[Union[int, Sequence[int]]] = None,
    spinning: bool = True,
) -> ExportedRunner:
    """The runner of an export folder (or its sidecar) on ``threads`` intra-op threads: one
    count, several to choose from as it runs (:func:`search_session`), or ``None`` for
    onnxruntime's default."""
    sidecar, content = read_sidecar(weights)
    _check_compatible(config, content, sidecar)
    folder = sidecar.parent
    graphs = []
    for part in ("template", "search"):
        graph = folder / content[part]["file"]
        if not graph.is_file():
            raise FileNotFoundError(f"{sidecar} names {graph}, which does not exist")
        graphs.append(graph)
    template, search = graphs
    return ExportedRunner(session(template, _most(threads), spinning=spinning),
                          search_session(search, threads, spinning=spinning))


def search_session(
    model: Union[str, bytes, "os.PathLike[str]"],
    threads: Optional[Union[int, Sequence[int]]],
    *,
    spinning: bool = True,
    origin: str = "in-memory graph",
) -> Union[ort.InferenceSession, FastestSession]:
    """The session of a search graph: :func:`session` for one thread count (or ``None``), a
    :class:`~tracker.backends.thread_choice.FastestSession` over several."""
    if threads is None or isinstance(threads, int):
        return session(model, threads, spinning=spinning, origin=origin)
    counts = list(dict.fromkeys(threads))
    sessions = [session(model, count, spinning=spinning, origin=origin) for count in counts]
    return sessions[0] if len(sessions) == 1 else FastestSession(sessions, counts)


def _most(threads: Optional[Union[int, Sequence[int]]]) -> Optional[int]:
    """The one thread count of the template graph (run once per target): the largest."""
    return threads if threads is None or isinstance(threads, int) else max(threads)


def search_graph_of_pair(backbone: onnx.ModelProto, head: onnx.ModelProto) -> bytes:
    """NanoTrack's published backbone and head joined into one search graph, named like an
    export's (inputs ``x``, ``kernel_0``; outputs ``cls``, ``loc``).

    One graph means one session, so one thread pool per search: two sessions run back to back
    leave each other's pool threads spinning on the cores the other one needs.
    """
    import onnx.compose

    first, second = backbone, head
    (image,), (features,) = first.graph.input, first.graph.output
    template_features, search_features = second.graph.input
    merged = onnx.compose.merge_models(
        first, second, io_map=[(features.name, search_features.name)],
        prefix1="backbone/", prefix2="head/",
    )
    cls, loc = (f"head/{o.name}" for o in second.graph.output)
    names = {f"backbone/{image.name}": "x", f"head/{template_features.name}": "kernel_0",
             cls: "cls", loc: "loc"}
    graph = merged.graph
    for value in list(graph.input) + list(graph.output):
        value.name = names.get(value.name, value.name)
    for node in graph.node:
        node.input[:] = [names.get(n, n) for n in node.input]
        node.output[:] = [names.get(n, n) for n in node.output]
    return merged.SerializeToString()


def load_published_nanotrack(
    config: ModelConfig,
    threads: Optional[Union[int, Sequence[int]]] = None,
    spinning: bool = True,
) -> ExportedRunner:
    """NanoTrack's published ONNX pair, given a free batch dimension
    (:func:`~tracker.backends.onnx_batch.with_free_batch`): the backbone (free spatial size)
    makes the kernels from the exemplars; backbone and head joined run every search.
    ``threads`` as for :func:`load_exported`."""
    from .onnx_batch import with_free_batch

    backbone = resolve_weights(config.name, "onnx_backbone")
    head = resolve_weights(config.name, "onnx_head")
    backbone_graph = with_free_batch(load_graph(backbone), origin=str(backbone))
    published_head = load_graph(head)
    head_graph = with_free_batch(published_head, origin=str(head))
    origin = f"{backbone} joined to {head}"
    search = search_graph_of_pair(backbone_graph, head_graph)
    single = None
    if len(head_graph.graph.node) > len(published_head.graph.node):
        # The rewrite added operators (v3's correlation): one crop runs the published head.
        single = search_session(search_graph_of_pair(load_graph(backbone), published_head),
                                threads, spinning=spinning, origin=origin)
    return ExportedRunner(
        session(free_spatial_dims(backbone_graph), _most(threads), spinning=spinning,
                origin=str(backbone)),
        search_session(search, threads, spinning=spinning, origin=origin),
        single,
    )


def load_runner(
    config: ModelConfig,
    weights: Optional[Union[str, "os.PathLike[str]"]] = None,
    *,
    device: Optional[Any] = None,
    threads: Optional[Union[int, Sequence[int]]] = None,
    spinning: Optional[bool] = None,
) -> ExportedRunner:
    """The backend loader: an onnxruntime runner for ``config`` on the CPU.

    ``weights``: an export folder (or its ``model.json``). ``None``: NanoTrack uses its
    published ONNX files listed in its model record; other models use the export that
    ``python -m tracker.export`` wrote into the user cache. ``threads``: intra-op threads, or
    several counts that each search call picks the fastest of
    (:class:`~tracker.backends.thread_choice.FastestSession`); ``spinning``: whether they spin
    between operators. ``None`` takes the model record's :class:`~tracker.zoo.CpuPolicy`.
    """
    if device is not None:
        raise ValueError(
            f"device applies to the torch backend; the onnxruntime backend runs on the CPU "
            f"(got device={device!r})"
        )
    policy = cpu_policy(config)
    if threads is None:
        counts: Union[int, Tuple[int, ...]] = policy.thread_counts()
    elif isinstance(threads, (list, tuple)) and threads:
        counts = tuple(_thread_count(count) for count in threads)
    else:
        counts = _thread_count(threads)
    spinning = policy.spinning if spinning is None else spinning
    if weights is None and config.family == "nanotrack":
        return load_published_nanotrack(config, counts, spinning)
    return load_exported(config, _export_location(config, weights), counts, spinning)


def _thread_count(threads: Any) -> int:
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(
            f"threads must be a whole number of at least 1 (or a list of them), got {threads!r}"
        )
    return threads


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
