"""Export side of stylecast: checkpoint -> verified ONNX artifact -> FP16/INT8 variants; the
`engine` command calls the device's TensorRT builder (stylecast.daemon.engines)."""
