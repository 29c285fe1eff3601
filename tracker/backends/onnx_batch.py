"""A free batch dimension for NanoTrack's published ONNX graphs.

The published backbone and head graphs were exported for one crop: their inputs and outputs
have batch size 1, their Reshape nodes use constant shapes that start with 1, and v3's head
folds the batch into the channels for its depthwise correlation (the kernel reshaped to
``[C, 1, k, k]`` for a Conv with ``group=C``, which only works for one kernel).
:func:`with_free_batch` rewrites such a graph so that it serves N crops (and N kernels) per
run, item ``i`` of every output computed from item ``i`` of every input.

The rewrite follows the batch axis from the graph inputs through every node and refuses
(:class:`~tracker.errors.CheckpointError` naming the node) any node that would mix batch
items or that it does not know, rather than leave a batch-1 construct behind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import CheckpointError

if TYPE_CHECKING:
    import onnx

#: The name of the symbolic batch dimension of the rewritten graphs' inputs and outputs.
BATCH = "batch"
_INT64_MAX = np.iinfo(np.int64).max
# The operators of the published graphs (and of the correlation rewrite) that the batch is
# followed through; any other operator on the batch is refused.
#: Operators whose output holds the batch where their first input does (their other inputs
#: are parameters, such as Clip's bounds).
_UNARY = frozenset({"Relu", "Clip", "Sigmoid", "Exp", "HardSwish", "HardSigmoid"})
#: Operators that broadcast their inputs against each other, numpy style.
_BROADCAST = frozenset({"Add", "Mul", "Div"})
#: Operators on N x C x ... images that keep the items apart: weights must not be batched.
_PER_IMAGE = frozenset({"Conv", "GlobalAveragePool"})


def with_free_batch(model: "onnx.ModelProto", *, origin: str = "ONNX graph") -> "onnx.ModelProto":
    """A copy of a batch-1 ``model`` in which every input and output has the symbolic batch
    dimension ``"batch"``.

    Reshape shapes that start with the batch's 1 copy the batch instead (0); a depthwise
    correlation with a batch-folded kernel (Reshape to ``[C, 1, k, k]`` feeding a Conv with
    ``group=C``) becomes Pad, a Slice of the search map per kernel offset, and one MatMul of
    the stacked windows with each item's own kernel (on onnxruntime's CPU provider this gave
    the Conv's values bit for bit). ``value_info`` is cleared, so shapes are inferred afresh.
    ``origin`` names the graph (its file) in errors. Raises :class:`CheckpointError` naming
    the node for a construct that it cannot rewrite.
    """
    import onnx

    result = onnx.ModelProto()
    result.CopyFrom(model)
    del result.graph.value_info[:]
    rewriter = _Rewriter(result, origin)
    rewriter.replace_depthwise_correlations()
    rewriter.free_batch_axes()
    rewriter.drop_unused_constants()
    for value in rewriter.batched_values():
        dim = value.type.tensor_type.shape.dim[0]
        dim.ClearField("dim_value")
        dim.dim_param = BATCH
    return result


class _Rewriter:
    """The graph being rewritten, with its constants and its batch-1 static shapes."""

    def __init__(self, model: "onnx.ModelProto", origin: str) -> None:
        self.model, self.graph, self.origin = model, model.graph, origin
        self.opset = next(
            (o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0
        )
        initializers = {i.name for i in self.graph.initializer}
        self.inputs = [v for v in self.graph.input if v.name not in initializers]
        for value in self.inputs:
            dims = value.type.tensor_type.shape.dim
            if not dims or dims[0].dim_value != 1:
                shown = [d.dim_value or d.dim_param for d in dims]
                raise CheckpointError(
                    f"{origin}: input {value.name!r} has shape {shown}, not batch size 1; "
                    "with_free_batch rewrites graphs exported for one crop"
                )
        self.names = {n for node in self.graph.node for n in node.output} | initializers | {
            v.name for v in self.graph.input}
        self.orphans: List[str] = []
        #: Each batch-1 Reshape shape's batch-copying replacement, by the original's name.
        self.batch_shapes: Dict[str, str] = {}
        self._infer_shapes()

    # ---- reading the graph

    def _infer_shapes(self) -> None:
        """Static (batch-1) shapes of every tensor the graph's shape inference can tell."""
        import onnx

        try:
            inferred = onnx.shape_inference.infer_shapes(self.model, strict_mode=True)
        except Exception as error:  # onnx raises its own inference errors
            raise CheckpointError(f"{self.origin}: shape inference failed ({error})") from None
        graph = inferred.graph
        self.shapes: Dict[str, Tuple[int, ...]] = {i.name: tuple(i.dims) for i in graph.initializer}
        for value in list(graph.value_info) + list(graph.input) + list(graph.output):
            tensor = value.type.tensor_type
            if tensor.HasField("shape") and all(d.HasField("dim_value") for d in tensor.shape.dim):
                self.shapes[value.name] = tuple(d.dim_value for d in tensor.shape.dim)

    def shape(self, name: str, node: "onnx.NodeProto") -> Tuple[int, ...]:
        if name not in self.shapes:
            raise CheckpointError(
                f"{self.origin}: the shape of {name!r} (an input of {_describe(node)}) is not "
                "static at batch size 1, so with_free_batch cannot follow the batch through it"
            )
        return self.shapes[name]

    def constant(self, name: str) -> Optional[np.ndarray]:
        """The value of an initializer or a Constant node's output; None for other tensors."""
        from onnx import helper, numpy_helper

        for initializer in self.graph.initializer:
            if initializer.name == name:
                return numpy_helper.to_array(initializer)
        for node in self.graph.node:
            if node.op_type == "Constant" and node.output[0] == name:
                (attribute,) = node.attribute
                if attribute.name == "value":
                    return numpy_helper.to_array(attribute.t)
                return np.array(helper.get_attribute_value(attribute))
        return None

    def batched_values(self) -> List["onnx.ValueInfoProto"]:
        return self.inputs + list(self.graph.output)

    # ---- writing the graph

    def fresh(self, base: str) -> str:
        name, count = base, 1
        while name in self.names:
            name, count = f"{base}_{count}", count + 1
        self.names.add(name)
        return name

    def add_constant(self, base: str, value: Sequence[int]) -> str:
        from onnx import numpy_helper

        name = self.fresh(base)
        self.graph.initializer.append(numpy_helper.from_array(np.asarray(value, np.int64), name))
        return name

    def set_input(self, node: "onnx.NodeProto", index: int, name: str) -> None:
        """Point input ``index`` of ``node`` at ``name``; the old tensor may become unused."""
        self.orphans.append(node.input[index])
        node.input[index] = name

    def drop_unused_constants(self) -> None:
        """Remove the initializers and Constant nodes that the rewrite left unused."""
        used = {n for node in self.graph.node for n in node.input} | {
            v.name for v in self.graph.output}
        gone = set(self.orphans) - used
        keep = [i for i in self.graph.initializer if i.name not in gone]
        del self.graph.initializer[:]
        self.graph.initializer.extend(keep)
        nodes = [n for n in self.graph.node if not (n.op_type == "Constant" and n.output[0] in gone)]
        del self.graph.node[:]
        self.graph.node.extend(nodes)

    # ---- the depthwise correlation

    def replace_depthwise_correlations(self) -> None:
        """Every Conv whose weights come from the graph (a per-target kernel) becomes a
        batch-dynamic depthwise correlation, or the rewrite is refused."""
        producers = {o: node for node in self.graph.node for o in node.output}
        nodes: List["onnx.NodeProto"] = []
        folds = []
        for node in self.graph.node:
            if node.op_type != "Conv" or self.constant(node.input[1]) is not None:
                nodes.append(node)
                continue
            fold = producers.get(node.input[1])
            nodes.extend(self._correlation(node, self._folded_kernel(node, fold)))
            folds.append(fold)
        used = {n for node in nodes for n in node.input} | {v.name for v in self.graph.output}
        unused = {f.output[0] for f in folds} - used
        self.orphans.extend(f.input[1] for f in folds if f.output[0] in unused)
        del self.graph.node[:]
        self.graph.node.extend(n for n in nodes if n.output[0] not in unused)
        self._infer_shapes()

    def _folded_kernel(self, conv: "onnx.NodeProto", reshape: Optional["onnx.NodeProto"]) -> str:
        """The ``[1, C, k, k]`` kernel that ``conv``'s weights are reshaped from."""
        attributes = _attributes(conv)
        group = attributes.get("group", 1)
        shape = None if reshape is None or reshape.op_type != "Reshape" else self.constant(reshape.input[1])
        folded = shape is not None and len(shape) == 4 and shape[0] == group > 1 and shape[1] == 1
        if not folded or self.shape(reshape.input[0], reshape) != (1, group, *shape[2:]):
            raise CheckpointError(
                f"{self.origin}: {_describe(conv)} takes its weights from the graph, but not as "
                "a depthwise correlation (a Reshape of a [1, C, k, k] kernel to [C, 1, k, k] "
                "with group=C); with_free_batch cannot give it a batch"
            )
        unsupported = [
            f"{key}={attributes[key]}" for key in ("strides", "dilations")
            if any(v != 1 for v in attributes.get(key, [1]))
        ]
        if attributes.get("auto_pad", b"NOTSET") != b"NOTSET":
            unsupported.append(f"auto_pad={attributes['auto_pad'].decode()}")
        if len(conv.input) > 2 and conv.input[2]:
            unsupported.append("a bias")
        if self.opset < 11:
            unsupported.append(f"opset {self.opset} (the rewrite needs 11 or later)")
        if unsupported:
            raise CheckpointError(
                f"{self.origin}: {_describe(conv)} is a depthwise correlation with "
                f"{', '.join(unsupported)}, which with_free_batch cannot rewrite"
            )
        return reshape.input[0]

    def _correlation(self, conv: "onnx.NodeProto", kernel: str) -> List["onnx.NodeProto"]:
        """Nodes computing ``conv`` (stride 1, no dilation) for a batch of kernels, written for
        batch size 1 (the batch is freed with the rest of the graph): the padded search map's
        window at each kernel offset, flattened and stacked into ``[1, C, k*k, H'*W']``, times
        the kernel flattened to ``[1, C, 1, k*k]`` (one MatMul: the product onnxruntime's
        grouped Conv computes), reshaped to the Conv's output ``[1, C, H', W']``."""
        from onnx import helper

        base = conv.name or conv.output[0]
        channels, kh, kw = self.shape(kernel, conv)[1:]
        pads = list(_attributes(conv).get("pads", [0, 0, 0, 0]))
        search, nodes = conv.input[0], []
        if any(pads):
            padded = self.fresh(f"{base}/padded")
            pads_name = self.add_constant(f"{base}/pads", [0, 0, pads[0], pads[1], 0, 0, pads[2], pads[3]])
            nodes.append(helper.make_node("Pad", [search, pads_name], [padded], name=padded))
            search = padded
        axes = self.add_constant(f"{base}/axes", [2, 3])
        flat = self.add_constant(f"{base}/flat", [1, channels, 1, -1])
        columns = []
        for i in range(kh):
            for j in range(kw):
                offset = f"{base}/offset{i}_{j}"
                starts = self.add_constant(f"{offset}/starts", [i, j])
                ends = self.add_constant(
                    f"{offset}/ends", [i - kh + 1 or _INT64_MAX, j - kw + 1 or _INT64_MAX]
                )
                window, column = self.fresh(f"{offset}/window"), self.fresh(f"{offset}/column")
                nodes += [
                    helper.make_node("Slice", [search, starts, ends, axes], [window], name=window),
                    helper.make_node("Reshape", [window, flat], [column], name=column),
                ]
                columns.append(column)
        stacked, weights = self.fresh(f"{base}/columns"), self.fresh(f"{base}/weights")
        product = self.fresh(f"{base}/product")
        output_shape = self.add_constant(f"{base}/output_shape", self.shape(conv.output[0], conv))
        nodes += [
            helper.make_node("Concat", columns, [stacked], name=stacked, axis=2),
            helper.make_node("Reshape", [kernel, flat], [weights], name=weights),
            helper.make_node("MatMul", [weights, stacked], [product], name=product),
            helper.make_node("Reshape", [product, output_shape], [conv.output[0]], name=f"{base}/output"),
        ]
        return nodes

    # ---- following the batch

    def free_batch_axes(self) -> None:
        """Follow the batch axis from the inputs through every node; make batch-1 Reshape
        shapes copy the batch; refuse nodes that would mix the items."""
        rules: Dict[str, Callable[["onnx.NodeProto", Dict[int, int]], int]] = {
            **{op: self._unary for op in _UNARY},
            **{op: self._broadcast for op in _BROADCAST},
            **{op: self._per_image for op in _PER_IMAGE},
            "Gemm": self._gemm, "MatMul": self._matmul, "Transpose": self._transpose,
            "Reshape": self._reshape, "Slice": self._slice, "Concat": self._concat,
            "Pad": self._pad,
        }
        axes = {value.name: 0 for value in self.inputs}
        for node in list(self.graph.node):
            carried = {i: axes[n] for i, n in enumerate(node.input) if n in axes}
            if not carried:
                continue
            if node.op_type not in rules:
                self._refuse(node, f"its operator {node.op_type} is not one that with_free_batch "
                                   "knows to keep the batch items apart")
            axis = rules[node.op_type](node, carried)
            axes.update((o, axis) for o in node.output if o)
        for value in self.graph.output:
            if axes.get(value.name) != 0:
                raise CheckpointError(
                    f"{self.origin}: output {value.name!r} does not hold the batch on its first "
                    "axis, so with_free_batch cannot give it one"
                )

    def _refuse(self, node: "onnx.NodeProto", why: str) -> None:
        raise CheckpointError(
            f"{self.origin}: cannot give {_describe(node)} a batch: {why}"
        )

    def _only_first(self, node: "onnx.NodeProto", carried: Dict[int, int], what: str) -> int:
        if set(carried) != {0}:
            self._refuse(node, f"its {what} come from the batch")
        return carried[0]

    def _unary(self, node: "onnx.NodeProto", carried: Dict[int, int]) -> int:
        return self._only_first(node, carried, "parameters")

    def _per_image(self, node: "onnx.NodeProto", carried: Dict[int, int]) -> int:
        if self._only_first(node, carried, "weights") != 0:
            self._refuse(node, "its images hold the batch on another axis than the first")
        return 0

    def _broadcast(self, node: "onnx.NodeProto", carried: Dict[int, int]) -> int:
        out = self.shape(node.output[0], node)
        aligned = {len(out) - len(self.shape(node.input[i], node)) + axis for i, axis in carried.items()}
        if len(aligned) != 1 or out[min(aligned)] != 1:
            self._refuse(node, "its inputs hold the batch on different axes or broadcast it")
        return aligned.pop()

    def _gemm(self, node: "onnx.NodeProto", carried: Dict[int, int]) -> int:
        expected = _attributes(node).get("transA", 0)
        if self._only_first(node, carried, "weights") != expected:
            self._refuse(node, "it multiplies along the batch axis")
        return 0

    def _matmul(self, node: "onnx.NodeProto", carried: Dict[int, int]) -> int:
        rank = len(self.shape(node.output[0], node))
        aligned = set()
        for index, axis in carried.items():
            own = len(self.shape(node.input[index], node))
            if own < 2 or axis == own - 1 - index:  # A's columns, B's rows: contracted
                self._refuse(node, "it multiplies along the batch axis")
            aligned.add(rank - own + axis)
        if len(aligned) != 1:
            self._refuse(node, "its inputs hold the batch on different axes")
        return aligned.pop()

    def _transpose(self, node: "onnx.NodeProto", carried: Dict[int, int]) -> int:
        rank = len(self.shape(node.input[0], node))
        perm = list(_attributes(node).get("perm", range(rank - 1, -1, -1)))
        return perm.index(carried[0])

    def _reshape(self, node: "onnx.NodeProto", carried: Dict[int, int]) -> int:
        shape = self.constant(node.input[1]) if self._only_first(node, carried, "shape") == 0 else None
        if shape is None or len(shape) == 0 or shape[0] != 1 or _attributes(node).get("allowzero", 0):
            self._refuse(
                node, f"it reshapes a batch of shape {list(self.shape(node.input[0], node))} "
                "with a shape that is computed, keeps allowzero=1 or does not start with the batch's 1"
            )
        if node.input[1] not in self.batch_shapes:
            copy = shape.astype(np.int64)
            copy[0] = 0  # Reshape's 0: the input's size on that axis, the batch
            self.batch_shapes[node.input[1]] = self.add_constant(f"{node.input[1]}/batch", copy)
        self.set_input(node, 1, self.batch_shapes[node.input[1]])
        return 0

    def _slice(self, node: "onnx.NodeProto", carried: Dict[int, int]) -> int:
        axis = self._only_first(node, carried, "bounds")
        rank = len(self.shape(node.input[0], node))
        given = len(node.input) > 3 and node.input[3]
        # without axes, Slice slices the first len(starts) axes
        values = self.constant(node.input[3] if given else node.input[1]) if self.opset >= 10 else None
        if values is None:
            self._refuse(node, "its axes are attributes (before opset 10) or computed")
        axes = values if given else range(len(values))
        if axis in {a % rank for a in axes}:
            self._refuse(node, "it slices the batch axis")
        return axis

    def _concat(self, node: "onnx.NodeProto", carried: Dict[int, int]) -> int:
        rank = len(self.shape(node.output[0], node))
        axes = set(carried.values())
        if len(carried) != len(node.input) or len(axes) != 1 or _attributes(node)["axis"] % rank in axes:
            self._refuse(node, "it joins the batch with a tensor without it, or along the batch axis")
        return axes.pop()

    def _pad(self, node: "onnx.NodeProto", carried: Dict[int, int]) -> int:
        axis = self._only_first(node, carried, "pads")
        pads = self.constant(node.input[1])
        rank = len(self.shape(node.input[0], node))
        if pads is None or pads[axis] or pads[axis + rank]:
            self._refuse(node, "it pads the batch axis, or its pads are computed")
        return axis


def _attributes(node: "onnx.NodeProto") -> Dict[str, object]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _describe(node: "onnx.NodeProto") -> str:
    return f"{node.op_type} node {node.name or node.output[0]!r}"
