"""What a model expects its image inputs to look like: inferred, probed on labels, resolved."""
