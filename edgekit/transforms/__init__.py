"""Backend-neutral float-model transforms on weight arrays (numpy only): cross-layer
equalization and bias correction. Each backend has a thin adapter that finds the arrays."""
