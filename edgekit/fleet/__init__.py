"""`edgekit batch FLEET.yaml`: many models x devices as tasks on an executor, one fleet report."""
