"""FLOPs of one frame's network work (the search branch), counted from the graph.

With torch, torch's ``FlopCounterMode`` counts the search branch of the model's network. Without
torch (an onnxruntime-only install), the same work is counted from the ONNX graphs the
onnxruntime backend runs on every search crop: the multiply-adds of every ``Conv``,
``ConvTranspose``, ``Gemm`` and ``MatMul`` node, with shapes from onnx shape inference. Both
count 2 FLOPs per multiply-add and leave out element-wise work.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from ..errors import WeightsNotFoundError
from ..zoo import get_config

Shape = List[Optional[int]]


def search_input_shape(model: str) -> Tuple[int, int, int, int]:
    """The search-branch input of one frame: every scale's crop at the default search size."""
    params = get_config(model).tracking
    batch = getattr(params, "scale_num", 1)
    return batch, 3, params.instance_size, params.instance_size


def network_flops(
    model: str, weights: Optional[Union[str, "os.PathLike[str]"]] = None
) -> Optional[float]:
    """FLOPs per frame of ``model``: torch's count, or without torch the ONNX graphs' count
    (``weights`` as the onnxruntime backend takes them); ``None`` where no graph is at hand."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return onnx_search_flops(model, weights)
    return torch_search_flops(model)


def torch_search_flops(model: str) -> float:
    """FLOPs of ``network.track`` on one frame's search crops, by ``FlopCounterMode``."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from ..models import build_model

    params = get_config(model).tracking
    network = build_model(model)
    with torch.no_grad():
        kernel = network.template(torch.zeros(1, 3, params.exemplar_size, params.exemplar_size))
        search = torch.zeros(*search_input_shape(model))
        with FlopCounterMode(display=False) as counter:
            network.track(kernel, search)
    return float(counter.get_total_flops())


def onnx_search_flops(
    model: str, weights: Optional[Union[str, "os.PathLike[str]"]] = None
) -> Optional[float]:
    """FLOPs of the ONNX graphs the onnxruntime backend runs per frame; ``None`` without them."""
    from ..backends.onnx_backend import search_graph_files

    try:
        graphs = search_graph_files(get_config(model), weights)
    except (WeightsNotFoundError, FileNotFoundError):
        return None
    shape = list(search_input_shape(model))
    return float(sum(graph_flops(path, {"x": shape}) for path in graphs))


def graph_flops(
    path: Union[str, "os.PathLike[str]"], input_shapes: Dict[str, Sequence[int]]
) -> int:
    """2 x the multiply-adds of the Conv, ConvTranspose, Gemm and MatMul nodes of a graph.

    ``input_shapes`` fixes the free dimensions of the named inputs (others keep theirs).
    onnxruntime's basic optimisations run first: they fold the shape arithmetic exporters
    leave in the graph (``Shape`` -> ``Div`` -> ``Reshape``), which onnx shape inference
    cannot evaluate, and keep every node a standard ONNX operator.
    """
    graph = _shaped_graph(path, input_shapes)
    shapes: Dict[str, Shape] = {
        value.name: [d.dim_value if d.HasField("dim_value") else None
                     for d in value.type.tensor_type.shape.dim]
        for value in (*graph.input, *graph.value_info, *graph.output)
    }
    shapes.update({tensor.name: list(tensor.dims) for tensor in graph.initializer})
    total = 0
    for node in graph.node:
        count = _MULTIPLY_ADDS.get(node.op_type)
        if count is not None:
            operands = [_known(shapes, name, path) for name in (*node.input[:2], node.output[0])]
            total += count(node, *operands)
    return 2 * total


def _shaped_graph(path: Union[str, "os.PathLike[str]"], input_shapes: Dict[str, Sequence[int]]):
    import onnx
    import onnxruntime as ort

    model = onnx.load(os.fspath(path))
    for value in model.graph.input:
        if value.name in input_shapes:
            for dim, size in zip(value.type.tensor_type.shape.dim, input_shapes[value.name]):
                dim.ClearField("dim_param")
                dim.dim_value = size
    with tempfile.TemporaryDirectory(prefix="tracker-flops-") as scratch:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(Path(scratch) / "optimized.onnx")
        ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        model = onnx.load(options.optimized_model_filepath)
    return onnx.shape_inference.infer_shapes(model, data_prop=True).graph


def _known(shapes: Dict[str, Shape], name: str, path: Union[str, "os.PathLike[str]"]) -> List[int]:
    shape = shapes.get(name)
    if shape is None or None in shape:
        raise ValueError(f"{os.fspath(path)}: shape inference leaves the shape of {name!r} unknown")
    return shape


def _attribute(node, name: str, default: int) -> int:
    return next((a.i for a in node.attribute if a.name == name), default)


def _conv(node, x: List[int], weight: List[int], out: List[int]) -> int:
    # weight (C_out, C_in / groups, k...): every output value sums C_in / groups x k... products
    return math.prod(out) * math.prod(weight[1:])


def _conv_transpose(node, x: List[int], weight: List[int], out: List[int]) -> int:
    # weight (C_in, C_out / groups, k...): every input value meets C_out / groups x k... weights
    return math.prod(x) * math.prod(weight[1:])


def _gemm(node, a: List[int], b: List[int], out: List[int]) -> int:
    return math.prod(out) * (a[0] if _attribute(node, "transA", 0) else a[1])


def _matmul(node, a: List[int], b: List[int], out: List[int]) -> int:
    return math.prod(out) * a[-1]


_MULTIPLY_ADDS = {"Conv": _conv, "ConvTranspose": _conv_transpose, "Gemm": _gemm, "MatMul": _matmul}
