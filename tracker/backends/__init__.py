"""Network runners: the same numpy-in, numpy-out contract on torch or onnxruntime."""
