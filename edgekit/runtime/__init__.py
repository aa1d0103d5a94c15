"""Host runtimes (LiteRT, onnxruntime) behind one Runner contract; targets choose them
(`edgekit.backends.open_runner`)."""
