"""Options and output helpers shared by commands: logging, --json/--quiet, progress."""

from __future__ import annotations

import contextlib
import json
import logging
import sys

import click

from edgekit.errors import UsageError


def output_options(func):
    """Add --json (machine summary on stdout) and --quiet (errors only on stderr)."""
    func = click.option("--quiet", "-q", is_flag=True, help="Print errors only.")(func)
    func = click.option("--json", "as_json", is_flag=True,
                        help="Print the machine-readable summary on stdout (logs go to stderr).")(func)
    return func


def setup_logging(quiet: bool) -> None:
    """Logs go to stderr: INFO normally, ERROR with --quiet."""
    from edgekit.logs import setup_logging as setup

    setup(logging.ERROR if quiet else logging.INFO)


def emit_json(data) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))


@contextlib.contextmanager
def progress(quiet: bool):
    """Yield on_step(description): a rich spinner on a TTY, log lines otherwise, nothing if quiet."""
    if quiet:
        yield lambda description: None
        return
    if not sys.stderr.isatty():
        log = logging.getLogger("edgekit")
        yield lambda description: log.info("%s", description)
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("starting", total=None)
        yield lambda description: bar.update(task, description=description)


def _present(mapping: dict) -> dict:
    return {k: v for k, v in mapping.items() if v is not None}


def parse_input_shape(value: str) -> tuple[str, list[int]]:
    """'NAME:1x224x224x3' -> ('NAME', [1, 224, 224, 3])."""
    name, sep, dims = value.rpartition(":")
    try:
        shape = [int(d) for d in dims.lower().split("x")]
    except ValueError:
        shape = []
    if not sep or not name or not shape or any(d < 1 for d in shape):
        raise UsageError(f"--input-shape '{value}': expected NAME:DIMxDIM..., e.g. image:1x224x224x3")
    return name, shape


def _floats(value: str | None, flag: str) -> list[float] | None:
    if value is None:
        return None
    try:
        return [float(v) for v in value.split(",")]
    except ValueError:
        raise UsageError(f"{flag} '{value}': expected comma-separated numbers") from None


DATA_OPTIONS = [
    click.option("--calibration", "-c", help="Calibration data: images or .npy/.npz directory."),
    click.option("--labels", help="labels.csv (filename,label) [default: labels.csv in the data dir]."),
    click.option("--num-calibration", type=int, help="Calibration samples [default: 300]."),
    click.option("--calibration-method", type=click.Choice(["minmax", "entropy", "percentile", "auto"]),
                 help="ONNX calibrator [default: minmax]; auto keeps the one that validates best."),
    click.option("--input-shape", multiple=True, help="Fix an input's shape: NAME:1x224x224x3 (repeatable)."),
    click.option("--io-dtype", type=click.Choice(["float32", "int8", "uint8"]),
                 help="INT8 model input/output type [default: float32]."),
    click.option("--resize", help="Resize images to HxW."),
    click.option("--scale", type=float, help="Pixel scale [default: 1/255]."),
    click.option("--offset", type=float, help="Added after scale [default: 0]."),
    click.option("--mean", help="Per-channel mean, comma-separated."),
    click.option("--std", help="Per-channel std, comma-separated."),
    click.option("--color", type=click.Choice(["rgb", "bgr", "grayscale"])),
    click.option("--layout", type=click.Choice(["nhwc", "nchw"])),
    click.option("--trust-model", is_flag=True, help="Allow Lambda layers / custom objects, or run a PyTorch entry point (runs model code)."),
]


def _with(options, func):
    for option in reversed(options):
        func = option(func)
    return func


def data_options(func):
    """The calibration, input-shape and image-preprocessing flags (recipe overrides)."""
    return _with(DATA_OPTIONS, func)


def data_overrides(opts: dict) -> dict:
    """Recipe overrides from the data_options flags that were given (None = not given)."""
    over: dict = {}
    if opts["input_shape"]:
        over["input_shapes"] = dict(parse_input_shape(v) for v in opts["input_shape"])
    pre = _present({"scale": opts["scale"], "offset": opts["offset"], "color": opts["color"],
                    "layout": opts["layout"], "mean": _floats(opts["mean"], "--mean"),
                    "std": _floats(opts["std"], "--std")})
    if opts["resize"]:
        h, _, w = opts["resize"].lower().partition("x")
        if not (h.isdigit() and w.isdigit()):
            raise UsageError(f"--resize '{opts['resize']}': expected HxW, e.g. 224x224")
        pre["resize"] = [int(h), int(w)]
    cal = _present({"source": opts["calibration"], "labels": opts["labels"],
                    "num_samples": opts["num_calibration"], "method": opts["calibration_method"]})
    for key, value in (("preprocess", pre), ("calibration", cal)):
        if value:
            over[key] = value
    if opts["io_dtype"]:
        over["int8"] = {"io_dtype": opts["io_dtype"]}
    return over


GATE_OPTIONS = [
    click.option("--min-sequence-match", type=float,
                 help="Gate: share of decoded sequences equal to FP32's (primary output a sequence), 0-1."),
    click.option("--min-map-iou", type=float, help="Gate: IoU of the thresholded map vs FP32 (map output), 0-1."),
    click.option("--min-box-f1", type=float, help="Gate: detection F1 vs FP32's detections (boxes output), 0-1."),
    click.option("--no-collapse-guard", is_flag=True,
                 help="Do not fail a collapsed INT8/FP16 artifact (see `gates.collapse_guard`)."),
    click.option("--primary-output", help="The output that carries the headline and the gates [default: inferred]."),
]


def gate_options(func):
    """The task-metric gates, the collapse guard switch and --primary-output."""
    return _with(GATE_OPTIONS, func)


def gate_overrides(opts: dict) -> dict:
    """Recipe overrides from the gate_options flags that were given."""
    over: dict = {}
    gates = _present({"min_sequence_match": opts.get("min_sequence_match"), "min_map_iou": opts.get("min_map_iou"),
                      "min_box_f1": opts.get("min_box_f1"),
                      "collapse_guard": False if opts.get("no_collapse_guard") else None})
    if gates:
        over["gates"] = gates
    if opts.get("primary_output"):
        over["outputs"] = {opts["primary_output"]: {"primary": True}}
    return over


class TargetName(click.ParamType):
    """A registered target name (edgekit.backends), checked when parsed: targets registered at
    run time are accepted too."""

    name = "target"

    def get_metavar(self, param, ctx=None):
        from edgekit import backends

        return "[" + "|".join(backends.names()) + "]"

    def convert(self, value, param, ctx):
        from edgekit import backends

        if value not in backends.names():
            self.fail(f"{value!r} is not one of {', '.join(backends.names())}", param, ctx)
        return value


def gate_budget_overrides(opts: dict) -> dict:
    """Recipe `gates` overrides from the accuracy flags shared by compress and debug."""
    return _present({"max_accuracy_drop": opts.get("max_accuracy_drop"), "min_agreement": opts.get("min_agreement"),
                     "min_sqnr_db": opts.get("min_sqnr")})


def executor_options(what: str, one: str = ""):
    """--jobs/-j N and --ray auto|ADDRESS: where `what` runs (jobs [default: the core count]; one:
    what --jobs 1 means, for the help)."""
    def add(func):
        func = click.option("--ray", "ray_address", metavar="auto|ADDRESS",
                            help=f"Run {what} on a Ray cluster instead (pip install \"edgekit[ray]\").")(func)
        return click.option("--jobs", "-j", type=click.IntRange(1, 1024),
                            help=f"Run {what} N at a time on this machine [default: the number of cores"
                                 f"{'; 1: ' + one if one else ''}].")(func)
    return add
