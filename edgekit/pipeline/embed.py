"""Ship the preprocessing with each artifact, in the artifact's own format (`Target.embed_contract`)."""

from __future__ import annotations

from edgekit.preprocessing.contract import InputContract, input_range
from edgekit.preprocessing.probe import class_scores
from edgekit.recipe.schema import Recipe


def embed_contract(built: list, resolution, source, recipe: Recipe, ref_outputs: list[dict],
                   primary: str | None = None) -> None:
    """Write the resolved preprocessing and class names into every artifact (`Target.embed_contract`)
    (image models only: one 4-D input fed from images or synthetic data); the labels belong to
    the `primary` output when it holds class scores."""
    if not resolution.images or len(source.inputs) != 1 or len(source.inputs[0].shape) != 4:
        return
    from edgekit import backends

    pp = resolution.preprocess
    labels = recipe.class_names
    output = class_scores(ref_outputs[0], len(labels) if labels else 2, primary) if ref_outputs else None
    contract = InputContract(
        input_name=source.inputs[0].name, scale=pp.scale, offset=pp.offset, mean=pp.mean, std=pp.std,
        color=pp.color, layout=pp.layout, input_range=input_range(pp), labels=labels, output_name=output)
    for artifact in built:
        target = backends.for_artifact(artifact.path)
        if target is not None:
            target.embed_contract(artifact.path, contract)
