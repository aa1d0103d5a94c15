"""Packaging: every extra installs from wheels on the platforms mobile developers build on.

For Linux x86_64 and aarch64 (glibc 2.28), macOS 14 arm64 and Windows x86_64, and for every CPython
minor version `requires-python` allows, pip resolves the core dependencies plus every extra
against the configured package index with `install --dry-run --only-binary=:all: --platform
--python-version`. One resolution per platform and version covers each extra alone too: extras
only add requirements, so a solution for all of them together also solves any subset.

pip evaluates environment markers (`sys_platform`, `platform_machine`, `python_version`) against
the interpreter that runs it, whatever `--platform` says. So pip runs here with its marker
environment replaced by the target's, and each test checks in pip's report that it was.
The tests skip, quoting pip's network error, only when no package index answers.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

try:
    import tomllib
except ImportError:  # Python 3.10
    from pip._vendor import tomli as tomllib

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
GLIBC_MINOR = 28  # the oldest glibc the Linux wheels are resolved for (2.28: Debian 10, RHEL 8)
MACOS = "14_0"  # the oldest macOS (onnxruntime's arm64 wheels start at 14.0)


def _manylinux(arch: str) -> list[str]:
    """Every manylinux tag a glibc-2.28 machine accepts, newest first (legacy aliases included)."""
    oldest = 5 if arch == "x86_64" else 17
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(GLIBC_MINOR, oldest - 1, -1)]
    legacy = ["manylinux2014", "manylinux2010", "manylinux1"] if arch == "x86_64" else ["manylinux2014"]
    return tags + [f"{name}_{arch}" for name in legacy]


# name -> (pip --platform tags, marker values that differ from platform to platform)
PLATFORMS = {
    "linux-x86_64": (_manylinux("x86_64"), {"sys_platform": "linux", "platform_system": "Linux",
                                            "platform_machine": "x86_64", "os_name": "posix"}),
    "linux-aarch64": (_manylinux("aarch64"), {"sys_platform": "linux", "platform_system": "Linux",
                                              "platform_machine": "aarch64", "os_name": "posix"}),
    "macos-arm64": ([f"macosx_{MACOS}_arm64"], {"sys_platform": "darwin", "platform_system": "Darwin",
                                                "platform_machine": "arm64", "os_name": "posix"}),
    "windows-x86_64": (["win_amd64"], {"sys_platform": "win32", "platform_system": "Windows",
                                       "platform_machine": "AMD64", "os_name": "nt"}),
}  # fmt: skip

# Runs pip with argv[2:] after replacing its marker environment by the JSON object in argv[1].
_PIP_WITH_MARKERS = """
import json, sys
from pip._vendor.packaging import markers
target = {**markers.default_environment(), **json.loads(sys.argv[1])}
markers.default_environment = lambda: dict(target)
from pip._internal.cli.main import main
sys.exit(main(sys.argv[2:]))
"""
_NETWORK_ERRORS = re.compile(
    r"NewConnectionError|ConnectTimeoutError|Failed to establish a new connection|Max retries exceeded"
    r"|Temporary failure in name resolution|Name or service not known|Network is unreachable"
    r"|Connection refused|ProxyError|connection error|Could not fetch URL"
)


def python_versions(requires_python: str) -> list[str]:
    """The CPython minor versions from 3.0 to 3.99 that a requires-python specifier allows."""
    spec = SpecifierSet(requires_python)
    return [f"3.{minor}" for minor in range(0, 100) if spec.contains(f"3.{minor}.0")]


def requirements(extras: list[str]) -> list[str]:
    """The core dependencies plus EXTRAS, self-references (edgekit[a,b]) expanded, markers kept."""
    found, pending, seen = list(PROJECT["dependencies"]), list(extras), set()
    while pending:
        extra = pending.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for line in PROJECT["optional-dependencies"][extra]:
            req = Requirement(line)
            if req.name == PROJECT["name"]:
                pending.extend(req.extras)
            else:
                found.append(line)
    return found


def marker_environment(platform: str, python: str) -> dict[str, str]:
    return {**PLATFORMS[platform][1], "python_version": python, "python_full_version": f"{python}.0",
            "implementation_name": "cpython", "platform_python_implementation": "CPython",
            "implementation_version": f"{python}.0"}  # fmt: skip


def pip_resolve(platform: str, python: str, reqs: list[str], *options: str) -> tuple[int, str, dict]:
    """pip install --dry-run of REQS for PLATFORM/PYTHON: (exit code, pip's output, its report)."""
    tags = [arg for tag in PLATFORMS[platform][0] for arg in ("--platform", tag)]
    with tempfile.TemporaryDirectory(prefix="edgekit-resolve-") as tmp:
        report = Path(tmp) / "report.json"
        # fast-deps: wheel metadata by HTTP range requests where an index serves no PEP 658 files
        argv = ["install", "--dry-run", "--ignore-installed", "--disable-pip-version-check",
                "--use-feature=fast-deps", "--only-binary=:all:", *tags, "--python-version", python,
                "--report", str(report), *options, *reqs]  # fmt: skip
        env = json.dumps(marker_environment(platform, python))
        proc = subprocess.run([sys.executable, "-c", _PIP_WITH_MARKERS, env, *argv],
                              capture_output=True, text=True, timeout=600)  # fmt: skip
        return proc.returncode, proc.stdout + proc.stderr, json.loads(report.read_text()) if report.exists() else {}


def unreachable(output: str) -> str | None:
    """pip's first line about a network failure, or None."""
    return next((line.strip() for line in output.splitlines() if _NETWORK_ERRORS.search(line)), None)


def missing_package(output: str) -> str:
    """The requirement pip found no wheel for (or its first error line)."""
    match = re.search(r"No matching distribution found for (.+)", output)
    if match:
        return f"no wheel for {match.group(1).strip()}"
    errors = [line for line in output.splitlines() if line.startswith("ERROR")]
    return " | ".join(errors) or output.strip()[-2000:]


@cache
def registry_problem() -> str | None:
    """Why no package index can be reached (pip's own line), or None when one answers."""
    code, output, _ = pip_resolve("linux-x86_64", "3.11", ["six"], "--no-deps", "--retries", "1",
                                  "--timeout", "15")  # fmt: skip
    return unreachable(output) or (None if code == 0 else f"pip could not resolve six: {missing_package(output)}")


VERSIONS = python_versions(PROJECT["requires-python"])
BOUNDED = "3.99" not in VERSIONS  # an open-ended requires-python claims versions nobody can resolve yet
COMBOS = [(platform, python) for platform in PLATFORMS for python in VERSIONS] if BOUNDED else []


@pytest.fixture(scope="module")
def resolutions() -> dict[tuple[str, str], tuple[int, str, dict]]:
    """Every (platform, python) resolved concurrently; skips when no index can be reached."""
    problem = registry_problem()
    if problem:
        pytest.skip(f"no package index reachable: {problem}")
    reqs = requirements(list(PROJECT["optional-dependencies"]))
    with ThreadPoolExecutor(len(COMBOS)) as pool:
        results = pool.map(lambda combo: pip_resolve(*combo, reqs, "--retries", "2"), COMBOS)
        return dict(zip(COMBOS, results))


@pytest.mark.slow  # 16 resolutions: about 100 s of CPU and 700 MB of wheel metadata
@pytest.mark.parametrize(("platform", "python"), COMBOS)
def test_every_extra_resolves_from_wheels(resolutions, platform, python):
    code, output, report = resolutions[platform, python]
    if code != 0 and unreachable(output):
        pytest.skip(f"package index unreachable: {unreachable(output)}")
    assert code == 0, f"{platform}, CPython {python}: {missing_package(output)}"
    assert report["environment"]["sys_platform"] == PLATFORMS[platform][1]["sys_platform"], (
        "pip evaluated markers for the host, not the target: the marker patch no longer works"
    )
    installed = {canonicalize_name(item["metadata"]["name"]) for item in report["install"]}
    reqs = [Requirement(line) for line in requirements(list(PROJECT["optional-dependencies"]))]
    expected = {canonicalize_name(req.name) for req in reqs
                if req.marker is None or req.marker.evaluate(report["environment"])}
    assert expected <= installed, f"{platform}, CPython {python}: {sorted(expected - installed)} not installed"


def test_requires_python_names_its_newest_version():
    """Each claimed version gets resolved, so requires-python needs an upper bound."""
    assert BOUNDED, f"requires-python {PROJECT['requires-python']!r} has no upper bound"
    assert python_versions(">=3.10,<3.14") == ["3.10", "3.11", "3.12", "3.13"]


def test_missing_wheel_is_named():
    """A requirement with no wheel for the target fails naming it (tensorflow-cpu has no macOS wheel)."""
    if registry_problem():
        pytest.skip(f"no package index reachable: {registry_problem()}")
    code, output, _ = pip_resolve("macos-arm64", "3.11", ["tensorflow-cpu==2.21.0"], "--no-deps")
    assert code != 0
    assert missing_package(output) == "no wheel for tensorflow-cpu==2.21.0"


def test_unreachable_index_is_reported(monkeypatch):
    """With only a closed port as index, the reason to skip is pip's connection error."""
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    for var in ("PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS"):
        monkeypatch.delenv(var, raising=False)
    code, output, _ = pip_resolve("linux-x86_64", "3.11", ["six"], "--no-deps", "--retries", "1")
    assert code != 0 and "Connection refused" in unreachable(output), output


def test_editable_install_has_no_build_backend_deprecation(tmp_path):
    """`pip install -e .` (setuptools in pip's isolated build env) warns about nothing deprecated."""
    if registry_problem():
        pytest.skip(f"no package index reachable: {registry_problem()}")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-v", "--no-deps", "--ignore-installed",
                           "--disable-pip-version-check", "--prefix", str(tmp_path), "-e", str(ROOT)],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "Successfully installed edgekit" in output
    deprecations = [line.strip() for line in output.splitlines() if re.search(r"[Dd]eprecat", line)]
    assert not deprecations, "\n".join(deprecations)
