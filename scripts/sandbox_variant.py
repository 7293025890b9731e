"""Sandbox image variants per agent harness: ``triloop-sandbox-NAME:latest``.

``scripts/build_sandbox_image.py --harness NAME`` first builds (or confirms) the default sandbox
image, then this layers the harness's CLI on it (include/sandbox/Dockerfile.harness) from its
fully pinned requirements (include/sandbox/harnesses/NAME.txt). The wheels are downloaded on the
host (PyPI, cached in .cache/agent-wheels/NAME) and the build runs with ``--network none``.
Content-hash cached like the default image: a no-op run takes about a second.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SANDBOX_DIR = ROOT / "include" / "sandbox"
REQUIREMENTS_DIR = SANDBOX_DIR / "harnesses"
CACHE_DIR = ROOT / ".cache" / "agent-wheels"
PLATFORMS = (
    "manylinux2014_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux_2_28_x86_64",
    "manylinux_2_34_x86_64",
    "any",
)
# Harnesses whose CLI is not a PyPI package installable on the image's Python 3.11.
VENDOR_INSTALL = {
    "claude-code": "npm package @anthropic-ai/claude-code (Node.js 18+)",
    "codex": "npm package @openai/codex, or the standalone binary from its GitHub releases",
    "gemini-cli": "npm package @google/gemini-cli (Node.js 20+)",
    "openhands": "PyPI package openhands (needs Python 3.12+), or the vendor's standalone binary",
}


class VariantError(RuntimeError):
    """The variant cannot be built; the message says why and what to do."""


def _docker(*args: str) -> str:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise VariantError(f"`docker {' '.join(args[:3])}` failed: {proc.stderr.strip()[-2000:]}")
    return proc.stdout.strip()


def _exists(ref: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", ref], capture_output=True).returncode == 0


def requirements_for(name: str) -> Path:
    path = REQUIREMENTS_DIR / f"{name}.txt"
    if path.exists():
        return path
    if name in VENDOR_INSTALL:
        raise VariantError(
            f"no pinned requirements for {name}: its CLI comes from the {VENDOR_INSTALL[name]}; "
            "build that variant as README.md ('Harnesses') explains"
        )
    known = sorted({p.stem for p in REQUIREMENTS_DIR.glob("*.txt")} | set(VENDOR_INSTALL))
    raise VariantError(f"unknown harness {name!r}; known: {known}")


def wheels_for(name: str, requirements: Path) -> Path:
    key = hashlib.sha256(requirements.read_bytes() + " ".join(PLATFORMS).encode()).hexdigest()
    wheels = CACHE_DIR / name / key[:16]
    if (wheels / ".complete").exists():
        return wheels
    wheels.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--no-deps"]
    argv += [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    argv += ["--python-version", "3.11", "--implementation", "cp"]
    if subprocess.run([*argv, "-r", str(requirements), "-d", str(wheels)]).returncode != 0:
        raise VariantError(f"pip download failed for {requirements} (is PyPI reachable?)")
    (wheels / ".complete").touch()
    return wheels


def build_variant(name: str, sandbox_ref: str) -> str:
    """Build ``triloop-sandbox-NAME`` on ``sandbox_ref``; return its content-hash tag."""
    requirements = requirements_for(name)
    repo = f"triloop-sandbox-{name}"
    digest = hashlib.sha256(
        f"{_docker('image', 'inspect', '-f', '{{.Id}}', sandbox_ref)}\n".encode()
    )
    for path in (SANDBOX_DIR / "Dockerfile.harness", requirements):
        digest.update(path.read_bytes())
    tag = f"{repo}:{digest.hexdigest()[:16]}"
    if _exists(tag):
        _docker("tag", tag, f"{repo}:latest")
        print(f"sandbox variant up to date: {tag}")
        return tag
    started = time.monotonic()
    wheels = wheels_for(name, requirements)
    with tempfile.TemporaryDirectory(prefix="triloop-variant-") as tmp:
        ctx = Path(tmp)
        shutil.copy2(SANDBOX_DIR / "Dockerfile.harness", ctx / "Dockerfile")
        shutil.copy2(requirements, ctx / "harness-requirements.txt")
        shutil.copytree(wheels, ctx / "agent-wheels", ignore=shutil.ignore_patterns(".complete"))
        argv = ["build", "--network", "none", "--build-arg", f"SANDBOX_IMAGE={sandbox_ref}"]
        argv += ["--build-arg", f"HARNESS={name}", "--build-arg", f"CONTENT_HASH={tag}"]
        proc = subprocess.run(["docker", *argv, "-t", tag, "-t", f"{repo}:latest", str(ctx)])
        if proc.returncode != 0:
            raise VariantError(f"docker build of {tag} failed (see output above)")
    size = int(_docker("image", "inspect", "--format", "{{.Size}}", tag))
    print(f"sandbox variant built: {tag} ({size / 1e6:.0f} MB, {time.monotonic() - started:.0f}s)")
    return tag
