"""Device facts under emulation: the harness python's own view (machine, ARM features) and the
`emulated` mark, from the device (EDGEKIT_EMULATED, an ISA mismatch) or from devices.yaml."""

from __future__ import annotations

import platform

from edgekit.devices.base import collect_facts, parse_facts
from edgekit.devices.inventory import DeviceEntry, open_device

X86_SHELL = """@@edgekit:cpuinfo
processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC
flags\t\t: fpu sse avx2
@@edgekit:uname
Linux 6.1.0 x86_64
@@edgekit:runtimes
numpy=2.4.6
"""
ARM_PYTHON = """@@edgekit:python
machine=aarch64
emulated={emulated}
features=fp asimd asimddp i8mm
cpu=ARMv8 Processor rev 0 (v8l)
@@edgekit:end
"""


def test_translated_userland_reports_the_pythons_isa_and_is_emulated():
    facts = parse_facts(X86_SHELL + ARM_PYTHON.format(emulated=""))
    assert facts.abi == "aarch64" and facts.runtimes == {"numpy": "2.4.6"}
    assert facts.emulated == "aarch64 userland on a x86_64 kernel"
    assert facts.cpu == "ARMv8 Processor rev 0 (v8l), emulated on AMD EPYC"
    assert facts.cpu_features == ["fp", "asimd", "asimddp", "i8mm"]  # not the host's x86 flags
    said = parse_facts(X86_SHELL + ARM_PYTHON.format(emulated="qemu-user 10.0 aarch64"))
    assert said.emulated == "qemu-user 10.0 aarch64"  # the wrapper's word wins


def test_native_board_is_not_emulated():
    native = X86_SHELL + "@@edgekit:python\nmachine=x86_64\nemulated=\nfeatures=\ncpu=AMD EPYC\n"
    facts = parse_facts(native)
    assert facts.abi == "x86_64" and facts.emulated is None and facts.cpu == "AMD EPYC"
    assert facts.cpu_features == []
    arm_shell = "@@edgekit:cpuinfo\nFeatures\t: fp asimd\n@@edgekit:uname\nLinux 5.10 aarch64\n"
    assert parse_facts(arm_shell).cpu_features == ["fp", "asimd"]  # no python: the shell's view


def test_this_host_and_the_inventory_flag():
    with open_device("local", DeviceEntry(kind="local")) as device:
        facts = collect_facts(device, timeout=60)
    assert facts.abi == platform.machine() and facts.emulated is None
    with open_device("local", DeviceEntry(kind="local", emulated=True)) as device:
        assert collect_facts(device, timeout=60).emulated == "marked emulated in devices.yaml"
