"""Export side of stylecast: checkpoint -> verified ONNX artifact -> TensorRT engine."""
