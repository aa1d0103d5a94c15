"""Stage: accuracy-aware float fallback for INT8 artifacts that miss the recipe's accuracy budget.

Runs only when an accuracy gate is set (max_accuracy_drop, min_agreement, min_sqnr_db,
min_sequence_match, min_map_iou or min_box_f1) and
`fallback.enabled` (default on). For each INT8 artifact whose target can keep layers in float, the search in
`edgekit.debug.fallback` keeps the most sensitive layers in float until the budget holds; where the
target's selective builder offers a precision ladder (`ladder()`: ONNX), `edgekit.debug.ladder`
raises tensor groups W8A8 -> W8A16 -> float instead (details["fallback"]["ladder"]: per-layer
precision map, MAC shares, latency next to plain INT8 and FP32). The artifact file is replaced by
the chosen model and every step is recorded in its details, with the float near ties among the
held-out samples next to how many samples the budget lets differ (`near_tie_record`).
"""

from __future__ import annotations

import math

from edgekit.recipe.schema import Recipe


def budget_of(recipe: Recipe):
    """The fallback Budget from the recipe's gates, or None when there is none or fallback is off."""
    from edgekit.debug.scoring import Budget

    g = recipe.gates
    limits = (g.max_accuracy_drop, g.min_agreement, g.min_sqnr_db, g.min_sequence_match, g.min_map_iou, g.min_box_f1)
    if not recipe.fallback.enabled or limits == (None,) * len(limits):
        return None
    return Budget(*limits)


def apply_fallback(built: list, source, recipe: Recipe, data, ref_outputs, ctx, roles=None, executor=None) -> None:
    """Replace each INT8 artifact that misses the budget by its smallest float-fallback model.

    Every target that gives a selective builder (`Target.selective`) is searched on the graph its
    plain INT8 build quantized. ctx: the BuildContext of the run; roles: the outputs' roles
    (OutputRoles); the budget reads the primary output [default: inferred]; executor: where the
    search's candidates may run (edgekit.executor.LazyExecutor) [default: serial in this process].
    """
    budget = budget_of(recipe)
    if budget is None or data.calibration_factory() is None:
        return
    from edgekit import backends
    from edgekit.backends.base import with_inventory
    from edgekit.debug.confirm import split_for_confirmation
    from edgekit.debug.fallback import run_fallback
    from edgekit.debug.ladder import search_ladder
    from edgekit.debug.parallel import evaluate_many, ladder_executor
    from edgekit.debug.scoring import Evaluator, confidence

    fb = recipe.fallback
    for artifact in built:
        if artifact.precision != "int8":
            continue
        target = backends.get(artifact.target)
        siblings = [b for b in built if b.target == artifact.target]
        selective = target.selective(source, data.calibration_factory(), recipe, ctx, siblings)
        if selective is None:
            continue
        ctx.on_step(f"float fallback search for {artifact.name}")
        ladder = None
        try:
            evaluator, confirm = split_for_confirmation(
                Evaluator(data.validation_feeds, ref_outputs, data.labels, threads=recipe.validation.threads,
                          roles=roles), fb.confirm_fraction)
            if hasattr(selective, "ladder"):
                result, ladder = search_ladder(selective.ladder(), evaluator, budget,
                                               max_float_layers=fb.max_float_layers,
                                               time_budget_s=fb.time_budget_s, on_step=ctx.on_step,
                                               executor=ladder_executor(executor), confirm=confirm)
            else:
                calibration = data.calibration_factory()
                result = run_fallback(selective, evaluator, budget, max_float_layers=fb.max_float_layers,
                                      time_budget_s=fb.time_budget_s, on_step=ctx.on_step,
                                      parallel=lambda ev: evaluate_many(selective, ev, executor, calibration),
                                      confirm=confirm)
        finally:
            selective.close()
        if result.best.float_nodes or result.best.precisions:
            artifact.path.write_bytes(result.model)
            with_inventory(target, artifact)  # float layers changed its ops and MAC shares
        artifact.details["fallback"] = {
            "budget": budget.describe(), "met": result.met, "strategy": result.strategy,
            "stopped": result.stopped, "float_layers": result.float_layers,
            "steps": [step.to_dict() for step in result.steps], "confirmation": result.confirmation,
            "final_confirmation": result.best.confirmation,
        }
        checked = result.best.confirmation  # measured on samples the search did not use
        bounds = None if not result.met or len(result.steps) < 2 else \
            confidence(budget, checked["accuracy"], checked["samples"]) if checked else \
            confidence(budget, result.best.accuracy, len(evaluator.feeds))  # chosen among candidates
        if bounds:
            candidates = result.confirmation["steps_confirmed"] if checked else len(result.steps)
            artifact.details["fallback"]["confidence"] = {**bounds, "candidates": candidates, "confirmed": bool(checked)}
        ties = near_tie_record(budget, ref_outputs, roles, len(evaluator.feeds))
        if ties:
            artifact.details["fallback"]["near_ties"] = ties
        if ladder is not None:
            artifact.details["fallback"]["ladder"] = ladder


def near_tie_record(budget, reference, roles, search: int) -> dict | None:
    """{"metric", "limit", "margin", "search"/"confirmation": {"samples", "near_ties", "may_differ"}}:
    of the primary output's per-sample floor in the budget (sequence match; top-1 agreement of
    one class vector per sample), how many of the search's (the first `search` reference samples)
    and the confirmation's samples are float near ties (`validate.evaluate.near_tie_samples`),
    and how many samples the floor lets differ there; None without such a floor."""
    from edgekit.validate.evaluate import near_tie_samples
    from edgekit.validate.roles import resolve_roles
    from edgekit.validate.task_metrics import NEAR_TIE

    roles = roles or resolve_roles(reference)
    role = roles[roles.primary]
    if role.role == "sequence":
        metric, limit = "sequence_match", budget.min_sequence_match
    else:
        one_row = role.class_axis is not None and \
            reference[0][roles.primary].size == reference[0][roles.primary].shape[role.class_axis]
        metric, limit = "top1_agreement", budget.min_agreement if one_row else None
    ties = None if limit is None else near_tie_samples(reference, roles)
    if ties is None:
        return None
    parts = {"search": ties[:search], "confirmation": ties[search:]}
    return {"metric": metric, "limit": limit, "margin": NEAR_TIE,
            **{name: {"samples": len(part), "near_ties": int(part.sum()),
                      "may_differ": math.floor((1 - limit) * len(part) + 1e-9)}
               for name, part in parts.items() if len(part)}}
