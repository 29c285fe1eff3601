"""Network runners: the same numpy-in, numpy-out contract on torch or onnxruntime.

:data:`BACKENDS` names each backend's loader; every loader has the signature
``load_runner(config, weights=None, *, device=None, threads=None, spinning=None) -> NetworkRunner`` and finds
the model's published weights itself when ``weights`` is ``None``. A new backend is its own
module plus one line here.
"""

from ..registry import Entry, Registry

BACKENDS = Registry(
    "backend",
    {
        "torch": Entry("tracker.backends.torch_backend:load_runner"),
        "onnxruntime": Entry("tracker.backends.onnx_backend:load_runner"),
    },
)
