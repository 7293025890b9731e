#!/usr/bin/env python3
"""Build the Triloop sandbox image `triloop-sandbox:<content hash>` (and tag it `:latest`).

Works without any container registry: the base image is TRILOOP_BASE_IMAGE (default
python:3.11-slim-bookworm) when it is present or pullable, otherwise `triloop-base:bookworm`,
built here with debootstrap from a Debian mirror (TRILOOP_DEBIAN_MIRROR) and `docker import`.
The toolchain wheels are downloaded on the host (PyPI, cached in .cache/sandbox-wheels) and
installed in the image with `pip --no-index`, so the debootstrap path builds with
`docker build --network none`. A no-op run (image for this content hash exists) takes well
under 2 s. Run: `.venv/bin/python scripts/build_sandbox_image.py` (or `make image`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SANDBOX_DIR = ROOT / "include" / "sandbox"
SEMGREP_DIR = ROOT / "include" / "semgrep"
CACHE_DIR = ROOT / ".cache"
IMAGE = "triloop-sandbox"
TOOLCHAIN = "triloop-sandbox-toolchain"
DEFAULT_BASE = "python:3.11-slim-bookworm"
DEBOOTSTRAP_BASE = "triloop-base:bookworm"
DEBOOTSTRAP_PACKAGES = "python3,python3-venv,git,ca-certificates"
# manylinux_2_34: semgrep >= 1.158 only ships glibc 2.34 wheels (bookworm has 2.36).
PLATFORMS = (
    "manylinux2014_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux_2_28_x86_64",
    "manylinux_2_34_x86_64",
    "any",
)
RECIPE_VERSION = "1"  # bump when this script changes what goes into the image
IMPORT_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["/bin/bash"]',
)
TRIM_PATHS = (
    "var/cache/apt/archives",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
)


class BuildError(RuntimeError):
    """A build step failed; the message names the step and what to do."""


def step(label: str, started: float) -> None:
    print(f"[sandbox-image] {label}: {time.monotonic() - started:.1f}s", flush=True)


def docker(*args: str, timeout: float | None = None, quiet: bool = True) -> str:
    try:
        proc = subprocess.run(
            ["docker", *args], capture_output=quiet, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise BuildError("docker CLI not found: install Docker Engine and its CLI") from exc
    except subprocess.TimeoutExpired as exc:
        raise BuildError(f"`docker {' '.join(args[:2])}` timed out after {timeout}s") from exc
    if proc.returncode != 0:
        detail = (proc.stderr or "").strip()[-2000:] if quiet else "see output above"
        raise BuildError(f"`docker {' '.join(args[:3])}` failed ({proc.returncode}): {detail}")
    return (proc.stdout or "").strip()


def image_id(ref: str) -> str | None:
    try:
        return docker("image", "inspect", "--format", "{{.Id}}", ref, timeout=30) or None
    except BuildError:
        return None


def pull(ref: str) -> bool:
    timeout = float(os.environ.get("TRILOOP_PULL_TIMEOUT_S", "180"))
    print(f"[sandbox-image] trying `docker pull {ref}` (timeout {timeout:.0f}s)", flush=True)
    try:
        docker("pull", "--quiet", ref, timeout=timeout)
    except BuildError as exc:
        print(f"[sandbox-image] pull failed: {str(exc)[-300:]}", flush=True)
        return False
    return True


def resolve_base() -> tuple[str, bool]:
    """Return (base image reference, built-by-debootstrap)."""
    wanted = os.environ.get("TRILOOP_BASE_IMAGE") or DEFAULT_BASE
    if wanted == DEBOOTSTRAP_BASE:
        return build_debootstrap_base(), True
    if image_id(wanted):
        return wanted, False
    # Default base and a debootstrap base built earlier: reuse it, no network round trip.
    if "TRILOOP_BASE_IMAGE" not in os.environ and image_id(DEBOOTSTRAP_BASE):
        return DEBOOTSTRAP_BASE, True
    if pull(wanted):
        return wanted, False
    print(f"[sandbox-image] {wanted} unavailable; falling back to {DEBOOTSTRAP_BASE}", flush=True)
    return build_debootstrap_base(), True


def build_debootstrap_base() -> str:
    if image_id(DEBOOTSTRAP_BASE):
        print(f"[sandbox-image] base {DEBOOTSTRAP_BASE} exists (cached)", flush=True)
        return DEBOOTSTRAP_BASE
    if os.geteuid() != 0:
        raise BuildError("building the debootstrap base needs root (debootstrap chroots)")
    ensure_debootstrap()
    mirror = os.environ.get("TRILOOP_DEBIAN_MIRROR", "http://deb.debian.org/debian")
    debs = CACHE_DIR / "debootstrap"
    debs.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="triloop-base-"))
    rootfs = tmp / "rootfs"
    try:
        argv = ["debootstrap", "--variant=minbase", f"--include={DEBOOTSTRAP_PACKAGES}"]
        argv += [f"--cache-dir={debs}", "bookworm", str(rootfs), mirror]
        print(f"[sandbox-image] {' '.join(argv)}", flush=True)
        if subprocess.run(argv, check=False).returncode != 0:
            log = rootfs / "debootstrap" / "debootstrap.log"
            tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
            raise BuildError(f"debootstrap failed (mirror {mirror}): {tail}")
        step("debootstrap", started)
        for rel in TRIM_PATHS:
            shutil.rmtree(rootfs / rel, ignore_errors=True)
        for rel in ("var/cache/apt/archives/partial", "var/lib/apt/lists/partial"):
            (rootfs / rel).mkdir(parents=True, exist_ok=True)  # apt expects them
        import_rootfs(rootfs)
    finally:
        unmount_below(rootfs)  # raises, keeping the directory, if a mount survives
        shutil.rmtree(tmp, ignore_errors=True)
    step(f"base {DEBOOTSTRAP_BASE} built", started)
    return DEBOOTSTRAP_BASE


def ensure_debootstrap() -> None:
    """Install debootstrap from the host's Debian packages when it is missing (we are root)."""
    if shutil.which("debootstrap") is not None:
        return
    if shutil.which("apt-get") is None:
        raise BuildError("debootstrap is not installed and there is no apt-get to install it")
    started = time.monotonic()
    print("[sandbox-image] debootstrap missing: installing it with apt-get", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "debootstrap"],
    ):
        if subprocess.run(argv, env=env, check=False).returncode != 0:
            raise BuildError(f"`{' '.join(argv)}` failed: install debootstrap by hand")
    if shutil.which("debootstrap") is None:
        raise BuildError("apt-get installed debootstrap but it is not on PATH")
    step("debootstrap installed", started)


def import_rootfs(rootfs: Path) -> None:
    changes = [arg for change in IMPORT_CHANGES for arg in ("--change", change)]
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    imported = subprocess.run(
        ["docker", "import", *changes, "-", DEBOOTSTRAP_BASE], stdin=tar.stdout, check=False
    )
    if tar.stdout is not None:
        tar.stdout.close()
    if tar.wait() != 0 or imported.returncode != 0:
        raise BuildError(f"`tar | docker import` failed building {DEBOOTSTRAP_BASE}")


def unmount_below(rootfs: Path) -> None:
    """Never delete through a mount (proc, sys, dev) that debootstrap left behind."""
    with open("/proc/mounts", encoding="utf-8") as fh:
        points = [line.split()[1] for line in fh if line.split()[1].startswith(f"{rootfs}/")]
    for point in sorted(points, reverse=True):
        subprocess.run(["umount", "-l", point], check=False)
    with open("/proc/mounts", encoding="utf-8") as fh:
        if any(line.split()[1].startswith(f"{rootfs}/") for line in fh):
            raise BuildError(f"mounts remain under {rootfs}; unmount them and delete it by hand")


PROGRAMS = (
    "harness.py",
    "code_scan.py",
    "secret_scan.py",
    "secret_rules.py",
    "analyze.py",
    "triloop_pytest.py",
    "egress_proxy.py",
)
"""The image's programs (include/sandbox/), copied by its Dockerfile and in its content hash."""


def content_hash(base_id: str, *, toolchain_only: bool = False) -> str:
    """Hash of everything that goes into the image (or, toolchain_only, its toolchain stage)."""
    digest = hashlib.sha256(f"recipe={RECIPE_VERSION}\nbase={base_id}\n".encode())
    digest.update(" ".join(PLATFORMS).encode())
    inputs = [SANDBOX_DIR / "Dockerfile", SANDBOX_DIR / "requirements.txt"]
    if not toolchain_only:
        inputs += [SANDBOX_DIR / name for name in PROGRAMS]
        inputs += sorted(SEMGREP_DIR.rglob("*.y*ml"))
    for path in inputs:
        digest.update(f"\n{path.relative_to(ROOT)}\n".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def ensure_wheels() -> Path:
    requirements = SANDBOX_DIR / "requirements.txt"
    key = hashlib.sha256(requirements.read_bytes() + " ".join(PLATFORMS).encode()).hexdigest()
    wheels = CACHE_DIR / "sandbox-wheels" / key[:16]
    if (wheels / ".complete").exists():
        print(f"[sandbox-image] wheels cached in {wheels.relative_to(ROOT)}", flush=True)
        return wheels
    started = time.monotonic()
    wheels.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:"]
    argv += [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    argv += ["--python-version", "3.11", "--implementation", "cp", "--no-deps"]
    argv += ["-r", str(requirements), "-d", str(wheels)]
    if subprocess.run(argv, check=False).returncode != 0:
        raise BuildError(f"pip download failed for {requirements} (is PyPI reachable?)")
    (wheels / ".complete").touch()
    for stale in wheels.parent.iterdir():
        if stale != wheels:
            shutil.rmtree(stale, ignore_errors=True)
    step("wheels downloaded", started)
    return wheels


def build_image(base: str, digest: str, toolchain: str, offline: bool) -> None:
    wheels = ensure_wheels()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="triloop-sandbox-ctx-") as tmp:
        ctx = Path(tmp)
        for name in ("Dockerfile", "requirements.txt", *PROGRAMS):
            shutil.copy2(SANDBOX_DIR / name, ctx / name)
        shutil.copytree(SEMGREP_DIR, ctx / "semgrep")
        shutil.copytree(wheels, ctx / "wheels", ignore=shutil.ignore_patterns(".complete"))
        argv = ["build", "--build-arg", f"BASE_IMAGE={base}", "--build-arg"]
        argv += [f"CONTENT_HASH={digest}", *(["--network", "none"] if offline else [])]
        # Tag the toolchain stage: named build cache instead of a dangling image, so a change
        # to harness.py or the rules rebuilds in seconds instead of reinstalling the wheels.
        if not image_id(f"{TOOLCHAIN}:{toolchain}"):
            docker(
                *argv,
                "--target",
                "toolchain",
                "-t",
                f"{TOOLCHAIN}:{toolchain}",
                str(ctx),
                quiet=False,
            )
        docker(*argv, "-t", f"{IMAGE}:{digest}", "-t", f"{IMAGE}:latest", str(ctx), quiet=False)
    step(f"docker build {IMAGE}:{digest}", started)


# Builds younger than this stay: another checkout on the same engine (a CI clone next to a
# working tree) may be running tests on its own content hash right now.
STALE_AFTER_S = 6 * 3600


def remove_stale_tags(repo: str, current: str, now: float | None = None) -> None:
    """Untag builds older than STALE_AFTER_S; one a container uses stays (docker refuses)."""
    listing = docker("image", "ls", "--format", "{{.Tag}}\t{{.CreatedAt}}", repo)
    for line in listing.splitlines():
        tag, _, created = line.partition("\t")
        if tag in (current, "latest", "<none>"):
            continue
        try:  # "2026-11-29 11:28:52 +0000 UTC"
            born = datetime.strptime(created[:25], "%Y-%m-%d %H:%M:%S %z").timestamp()
        except ValueError:
            continue  # an unreadable date: keep the tag rather than guess
        if (now or time.time()) - born > STALE_AFTER_S:
            subprocess.run(["docker", "image", "rm", f"{repo}:{tag}"], capture_output=True)


def main(argv: list[str] | None = None) -> int:
    """Build the default image; ``--harness NAME`` also builds that harness's variant."""
    args = sys.argv[1:] if argv is None else argv
    harness = args[args.index("--harness") + 1] if "--harness" in args[:-1] else None
    started = time.monotonic()
    try:
        base, offline = resolve_base()
        base_id = image_id(base)
        if base_id is None:
            raise BuildError(f"base image {base} vanished while building")
        digest = content_hash(base_id)
        toolchain = content_hash(base_id, toolchain_only=True)
        if image_id(f"{IMAGE}:{digest}"):
            docker("tag", f"{IMAGE}:{digest}", f"{IMAGE}:latest")
            print(f"sandbox image up to date: {IMAGE}:{digest} (base {base})")
        else:
            print(f"[sandbox-image] building {IMAGE}:{digest} FROM {base}", flush=True)
            build_image(base, digest, toolchain, offline)
            size = int(docker("image", "inspect", "--format", "{{.Size}}", f"{IMAGE}:{digest}"))
            print(f"sandbox image built: {IMAGE}:{digest} ({size / 1e6:.0f} MB)")
            remove_stale_tags(TOOLCHAIN, toolchain)
        remove_stale_tags(IMAGE, digest)
        if harness:
            from sandbox_variant import build_variant

            build_variant(harness, f"{IMAGE}:{digest}")
    except BuildError as exc:
        print(f"build_sandbox_image: error: {exc}", file=sys.stderr)
        return 1
    except RuntimeError as exc:  # sandbox_variant.VariantError
        print(f"build_sandbox_image: error: {exc}", file=sys.stderr)
        return 1
    step("total", started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
