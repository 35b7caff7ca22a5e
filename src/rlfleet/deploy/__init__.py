"""From a trained run to a deployed agent: load its policy, evaluate it (with video), export it
without Ray (ONNX, TorchScript), register it as an MLflow model, serve it on Ray Serve, play
against the endpoint."""
