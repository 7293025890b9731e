"""The scan's dependency wheelhouse: the host downloads what the sandbox installs offline.

The sandbox has no network, so before it scans, the host ``pip download``s what the repository's
environment installs (triloop.discovery.dependencies.declared_dependencies: index releases from
the top-level requirements files, ``requirements/`` and what they include, ``[project]``
dependencies and extras, dev/test dependency groups, setup.cfg/setup.py (read with ``ast``)
``install_requires``/extras/``tests_require`` and the Pipfile's packages and dev-packages; never
build requirements, constraints or lock files) as PEP 508 requirements: paths, URLs, VCS
references and pip options are never passed on, so no repository code is built or run here.
They are downloaded as wheels for the sandbox's interpreter (CPython 3.11, manylinux x86_64),
into ``<output_dir>/wheelhouse`` with a ``requirements.txt`` listing them. The sandbox installs
that into a throwaway venv and lists the licenses (include/sandbox/code_scan.py).

Idempotent: downloads are cached under ``<cache_dir>/<hash of the requirements>``, so an
unchanged dependency set costs no network; the stage is copied in read-only for the sandbox
user (files 0444, directory owned by the host). When the download fails, the wheelhouse holds
``error.txt`` saying why: the licenses scanner reports that, the other scanners still run.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from triloop.bootstrap import App
from triloop.discovery.dependencies import DependencyError, declared_dependencies
from triloop.domain.contracts import ScanRequest

log = logging.getLogger(__name__)
WHEELHOUSE = "wheelhouse"
# The sandbox image's interpreter (include/sandbox/Dockerfile, scripts/build_sandbox_image.py).
PLATFORMS = (
    "manylinux2014_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux_2_28_x86_64",
    "manylinux_2_34_x86_64",
    "any",
)
DOWNLOAD_TIMEOUT_S = 600


def requirements_text(checkout: Path) -> str:
    """The sorted, de-duplicated requirements the checkout declares ('' when none)."""
    return "".join(
        f"{text}\n" for text in sorted({d.requirement for d in declared_dependencies(checkout)})
    )


def download_argv(requirements: Path, dest: Path) -> list[str]:
    argv = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:"]
    argv += [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    argv += ["--python-version", "3.11", "--implementation", "cp", "--no-input"]
    return [*argv, "--disable-pip-version-check", "-r", str(requirements), "-d", str(dest)]


def cache_key(text: str) -> str:
    """The cache directory name of one requirements text (for the sandbox's platforms)."""
    return hashlib.sha256((text + " ".join(PLATFORMS)).encode()).hexdigest()[:16]


def ensure_cached(text: str, cache_dir: Path) -> Path:
    """Download the wheels for ``text`` once; the cached directory holds requirements.txt."""
    key = cache_key(text)
    cached = cache_dir / key
    if (cached / ".complete").is_file():
        log.info("wheelhouse %s: cached", key)
        return cached
    partial = cache_dir / f".{key}.{os.getpid()}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    (partial / "requirements.txt").write_text(text, encoding="utf-8")
    argv = download_argv(partial / "requirements.txt", partial)
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise OSError(f"pip download timed out after {DOWNLOAD_TIMEOUT_S}s") from exc
    if proc.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
        raise OSError(f"pip download failed (exit {proc.returncode}): {tail}")
    (partial / ".complete").touch()
    shutil.rmtree(cached, ignore_errors=True)
    partial.rename(cached)  # another worker may have won the race: either copy is complete
    log.info("wheelhouse %s: downloaded %d files", key, len(list(cached.glob("*.whl"))))
    return cached


def prepare_wheelhouse(checkout: Path, output_dir: Path, cache_dir: Path) -> Path | None:
    """Stage the checkout's dependency wheels at ``output_dir/wheelhouse``; None if it has none.

    Never raises for the repository's sake: a declaration that does not parse or a failed
    download becomes ``error.txt`` in the wheelhouse (the licenses scanner reports it).
    """
    dest = output_dir / WHEELHOUSE
    shutil.rmtree(dest, ignore_errors=True)
    try:
        text = requirements_text(checkout)
        if not text:
            log.info("%s declares no dependencies: no wheelhouse", checkout)
            return None
        source = ensure_cached(text, cache_dir)
    except (DependencyError, OSError) as exc:
        log.error("wheelhouse for %s: %s", checkout, exc)
        dest.mkdir(mode=0o755)
        (dest / "error.txt").write_text(f"{exc}\n", encoding="utf-8")
        (dest / "error.txt").chmod(0o444)
        return dest
    dest.mkdir(mode=0o755)
    for item in sorted(source.iterdir()):
        if item.name.startswith("."):
            continue
        shutil.copyfile(item, dest / item.name)
        (dest / item.name).chmod(0o444)
    dest.chmod(0o755)  # the sandbox user may read, never add, replace or remove
    return dest


def stage_wheelhouse(app: App, request: ScanRequest) -> Path | None:
    """The discovery DAG's step: the wheelhouse of one scan, from the shared download cache."""
    cache = app.settings.home / "cache" / "wheelhouse"
    return prepare_wheelhouse(Path(request.workspace), Path(request.output_dir), cache)
