"""`edgekit devices`: list and check the inventory's devices; `devices add` writes an entry."""

from __future__ import annotations

import dataclasses
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click

from edgekit.errors import EdgekitError, UsageError, device_status, worst_outcome

CHECK_TIMEOUT_S = 30.0


def _check(name, entry, accept_new):
    """{'name', 'kind', 'address', 'status', 'error', 'facts'} for one device (never raises EdgekitError)."""
    from edgekit.devices.base import collect_facts
    from edgekit.devices.inventory import open_device

    row = {"name": name, "kind": entry.kind, "address": entry.address, "status": "ok",
           "error": None, "facts": {}}
    try:
        with open_device(name, entry, accept_new) as device:
            row["facts"] = dataclasses.asdict(collect_facts(device, CHECK_TIMEOUT_S))
    except EdgekitError as err:
        row["status"], row["error"], row["exit_code"] = device_status(err), str(err), err.exit_code
    return row


def _print_table(rows, checked: bool) -> None:
    headers = ["name", "kind", "address"] + (["status", "model / cpu", "os", "runtimes"] if checked else [])
    table = []
    for row in rows:
        facts = row["facts"]
        cells = [row["name"], row["kind"], row["address"] or "-"]
        if checked:
            runtimes = ", ".join(f"{k} {v}" for k, v in facts.get("runtimes", {}).items())
            cells += [row["status"] if not row["error"] else f"{row['status']}: {row['error']}",
                      facts.get("model") or facts.get("cpu") or "-", facts.get("os") or "-",
                      runtimes or "-"]
        table.append(cells)
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        rich_table = Table(*headers)
        for cells in table:
            rich_table.add_row(*[str(c) for c in cells])
        Console().print(rich_table)
    else:
        for cells in [headers] + table:
            click.echo("\t".join(str(c) for c in cells))


def _list(inventory, check, as_json, accept_new):
    from edgekit.devices.inventory import load_inventory, resolve

    inv, source = load_inventory(inventory)
    names = sorted({*inv.devices, "local"})
    entries = {name: resolve(inv, name, source) for name in names}
    if check:
        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            rows = list(pool.map(lambda n: _check(n, entries[n], accept_new), names))
    else:
        rows = [{"name": n, "kind": e.kind, "address": e.address, "status": None, "error": None,
                 "facts": {}} for n, e in entries.items()]
    if as_json:
        click.echo(json.dumps({"inventory": str(source) if source else None, "devices": rows}, indent=2))
    else:
        click.echo(f"inventory: {source or '(none; only local)'}", err=True)
        _print_table(rows, check)
    worst = worst_outcome(row["status"] for row in rows)
    if worst is not None:
        failed = [row for row in rows if row["error"]]
        raise worst[1](f"{len(failed)} of {len(rows)} devices failed the check: "
                    + "; ".join(row["error"] for row in failed))


_inventory_option = click.option("--inventory", type=click.Path(path_type=Path),
                                 help="devices.yaml [default: ./devices.yaml, else the user config].")


@click.group("devices", invoke_without_command=True)
@_inventory_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--accept-new-host-key", is_flag=True, help="Trust ssh host keys on first contact.")
@click.pass_context
def devices(ctx, inventory, as_json, accept_new_host_key):
    """List the devices and check each one (reachable? model, CPU, OS, runtimes).

    Exit 11 when a device is unreachable, 12 when a host key is refused, 9 when a device fails.
    """
    if ctx.invoked_subcommand is None:
        _list(inventory, True, as_json, accept_new_host_key)


@devices.command("list")
@_inventory_option
@click.option("--check/--no-check", default=True, show_default=True, help="Connect to each device.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--accept-new-host-key", is_flag=True)
def list_devices(inventory, check, as_json, accept_new_host_key):
    """List the inventory's devices (and check them)."""
    _list(inventory, check, as_json, accept_new_host_key)


@devices.command("add")
@click.argument("name")
@click.option("--adb", "serial", help="Android device serial (adb devices), or HOST:PORT.")
@click.option("--ssh", "dest", help="ssh destination: user@host or a ~/.ssh/config alias.")
@click.option("--local", "local", is_flag=True, help="This host (with its own settings).")
@click.option("--python", help="Python on the device [default: python3 over ssh].")
@click.option("--workdir", help="Working directory on the device.")
@click.option("--threads", type=click.IntRange(1, 256))
@click.option("--affinity", "cpu_affinity", help="Hex CPU mask, as taskset takes (e.g. f0).")
@click.option("--benchmark-model", help="Path of TFLite benchmark_model on the host, to push.")
@click.option("--trtexec", help="Path of trtexec on the device.")
@click.option("--ssh-option", "ssh_options", multiple=True,
              help="Extra ssh flag and value, e.g. --ssh-option '-p 2222' (repeatable).")
@click.option("--accept-new-host-key", is_flag=True, help="Trust the host key on first contact.")
@click.option("--replace", is_flag=True, help="Overwrite an existing entry of that name.")
@_inventory_option
def add(name, serial, dest, local, python, workdir, threads, cpu_affinity, benchmark_model,
        trtexec, ssh_options, accept_new_host_key, replace, inventory):
    """Add device NAME to the inventory (written atomically)."""
    from pydantic import ValidationError

    from edgekit.devices.inventory import DeviceEntry, add_device, find_inventory, user_inventory_path

    chosen = [kind for kind, value in (("adb", serial), ("ssh", dest), ("local", local)) if value]
    if len(chosen) != 1:
        raise UsageError("give exactly one of --adb SERIAL, --ssh DEST, --local")
    options = [part for option in ssh_options for part in option.split(None, 1)]
    fields = {"kind": chosen[0], "address": serial or dest, "python": python, "workdir": workdir,
              "threads": threads, "cpu_affinity": cpu_affinity, "benchmark_model": benchmark_model,
              "trtexec": trtexec, "ssh_options": options, "accept_new_host_key": accept_new_host_key}
    fields = {key: value for key, value in fields.items() if value not in (None, [], False)}
    try:
        entry = DeviceEntry(**fields)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise UsageError(f"{where + ': ' if where else ''}{message}") from None
    path = Path(inventory) if inventory else (find_inventory() or user_inventory_path())
    add_device(path, name, entry, replace=replace)
    click.echo(f"added {name} ({entry.kind} {entry.address or ''}) to {path}".replace(" )", ")"))


@devices.command("ray-resources")
@click.argument("names", nargs=-1, required=True)
@_inventory_option
def ray_resources(names, inventory):
    """Print the `ray start --resources` JSON for the node that reaches device(s) NAMES, so their
    benches in `edgekit batch --ray` run there, one at a time."""
    from edgekit.devices.inventory import load_inventory, resolve
    from edgekit.executor.ray import device_resources

    inv, source = load_inventory(inventory)
    for name in names:
        resolve(inv, name, source)  # an unknown name is a usage error naming the inventory
    click.echo(device_resources(names))
