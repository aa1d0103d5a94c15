"""The precision ladder in the report: per-layer precision map, MAC shares, latency, search steps.

Reads `details["fallback"]["ladder"]` of each artifact (written by the ONNX fallback stage,
`edgekit.debug.ladder.ladder_details`): `ladder_lines(report)` for Markdown, `ladder_figure(report)`
for report.html (per conv/matmul layer: MACs coloured by precision, sensitivity on a log axis).
"""

from __future__ import annotations

from edgekit.report.schema import Report

COLOURS = {"W8A8": "#4C72B0", "W8A16": "#DD8452", "W16A8": "#55A868", "W16A16": "#8172B3", "WfA8": "#937860",
           "WfA16": "#DA8BC3", "float": "#C44E52"}


def _ladders(report: Report):
    for a in report.artifacts:
        ladder = ((a.details or {}).get("fallback") or {}).get("ladder")
        if ladder:
            yield a, a.details["fallback"], ladder


def ladder_lines(report: Report) -> list[str]:
    lines = []
    for a, fallback, ladder in _ladders(report):
        lines += ladder_section(f"`{a.name}`", fallback, fallback["budget"], ladder)
    return lines


def ladder_section(title: str, fallback: dict, budget: str, ladder: dict) -> list[str]:
    """Markdown: outcome, MAC shares, latency, the steps and every conv/matmul not at W8A8."""
    share = ", ".join(f"{k} {v:.1%}" for k, v in ladder["mac_share"].items())
    lat = ladder.get("latency_p50_ms") or {}
    lines = ["", f"## Precision ladder: {title}", "",
             f"{fallback['strategy']}; {budget}: {'met' if fallback['met'] else 'NOT met'} "
             f"({fallback['stopped']}, {len(fallback['steps'])} builds).",
             f"Conv/matmul MACs: {share}. Host p50: final {lat.get('final')} ms, plain INT8 "
             f"{lat.get('int8_plain')} ms, FP32 {lat.get('fp32')} ms.", "",
             *_bias_lines(ladder.get("bias_correction")), *_confirmation_lines(fallback.get("confirmation")),
             "| step | phase | base | int16 | float | channel groups | met | shortfall | unseen samples |",
             "|---:|---|---|---:|---:|---:|---|---:|---|"]
    # int16 / float: tensor groups and conv/matmul weights (keys "weights:<node>") raised; channel
    # groups: tensors at W8A8 with a scale per channel group
    for i, step in enumerate(fallback["steps"]):
        levels = list(step.get("precisions", {}).values())
        base = "bias-corrected" if "bias_correction" in (step.get("quantization") or {}) else "plain"
        lines.append(f"| {i} | {step['phase']} | {base} | {levels.count('int16')} | {levels.count('float')} "
                     f"| {levels.count('groups')} | {step['met']} | {step['shortfall']} | {unseen_verdict(step.get('confirmation'))} |")
    lines += [f"- float before the search: `{node}`: {reason}" for node, reason in ladder.get("auto_float", {}).items()]
    lines += [f"- channel-group activation scales (W8A8): `{unit}`"
              for unit, level in ladder.get("precisions", {}).items() if level == "groups"]
    lines += [f"- channel-group INT8 weight scales (one per output channel and group): `{node}`"
              for node in ladder.get("regrouped_weights", [])]
    raised = [row for row in ladder["layers"] if row["precision"] != "W8A8"]
    lines += ["", "| layer | op | precision | sensitivity | MACs |", "|---|---|---|---:|---:|"]
    lines += [f"| `{r['layer']}` | {r['op']} | {r['precision']} | {_g(r['sensitivity'])} | {r['macs']} |"
              for r in raised] or ["| (every conv/matmul W8A8) | | | | |"]
    return lines


def unseen_verdict(confirmation: dict | None) -> str:
    """A step's verdict on the held-out samples the search did not use ("" when not measured)."""
    if not confirmation:
        return ""
    return "met" if confirmation["met"] else f"missed by {confirmation['shortfall']}"


def _confirmation_lines(confirmation: dict | None) -> list[str]:
    if not confirmation:
        return ["The search decided and reports on the same held-out samples (too few to set some apart).", ""]
    return [f"The search decided on {confirmation['search_samples']} held-out samples; its choice was confirmed on "
            f"{confirmation['samples']} it did not use ({confirmation['steps_confirmed']} step(s) measured there).",
            ""]


def _bias_lines(bias: dict | None) -> list[str]:
    if not bias:
        return []
    verdict = "the final model uses it" if bias["kept"] else "the final model does not (it scored no better)"
    return [f"Bias correction ({bias.get('layers')} layers, max shift {_g(bias.get('max_shift'))}): {verdict}; "
            f"SQNR plain {bias['plain_sqnr_db']} dB, corrected {bias['corrected_sqnr_db']} dB.", ""]


def _g(value) -> str:
    return "" if value is None else f"{value:.3g}"


def ladder_figure(report: Report) -> list[str]:
    """One PNG data URI per artifact with a ladder."""
    from edgekit.report.plots import figure_data_uri, pyplot

    uris = []
    for a, _, ladder in _ladders(report):
        rows = ladder["layers"]
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(13, 3.4))
        ax.bar(range(len(rows)), [r["macs"] for r in rows], color=[COLOURS.get(r["precision"], "#888") for r in rows])
        ax.set_ylabel("MACs")
        ax.set_title(f"{a.name}: conv/matmul layers by precision (blue W8A8, orange W8A16, green W16A8, "
                     "purple W16A16, red float); line: sensitivity")
        sens = [(i, r["sensitivity"]) for i, r in enumerate(rows) if r["sensitivity"] and r["sensitivity"] > 0]
        if sens:
            twin = ax.twinx()
            twin.plot([i for i, _ in sens], [s for _, s in sens], "k.-", linewidth=0.8)
            twin.set_yscale("log")
        uris.append(figure_data_uri(fig))
    return uris
