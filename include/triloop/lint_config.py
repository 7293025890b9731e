"""Which ruff configuration a scan runs with: the repository's own, else the policy's rule set.

A repository that configures ruff anywhere (``ruff.toml``, ``.ruff.toml``, or a
``pyproject.toml`` with ``[tool.ruff]``, at the root or in a subdirectory) is scanned with that
configuration as ruff finds it: its ``select``, ``ignore``, ``extend-*``, ``per-file-ignores``,
``target-version`` and ``src`` decide what is reported, so no ticket is opened for a rule the
repository turned off. One that configures none gets the policy's rule set
(``code_scans.lint.default_select``): the host writes it as ``ruff.toml`` into the scan's
``/out/analysis/``, and the sandbox passes it with ``--config``. Scans never write to the
checkout whatever the configuration says (``--no-fix``: a ``fix = true`` changes nothing).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

NAMES = (".ruff.toml", "ruff.toml", "pyproject.toml")  # ruff's own precedence in one directory
SKIP_DIRS = frozenset({".git", ".venv", "venv", "node_modules", "__pycache__", ".tox", ".nox"})
MAX_DIRS = 20_000
ANALYSIS = "analysis"


def ruff_config(directory: Path) -> Path | None:
    """The ruff configuration file ``directory`` itself holds (ruff's precedence), or None."""
    for name in NAMES:
        path = directory / name
        if not path.is_file() or path.is_symlink():
            continue
        if name != "pyproject.toml":
            return path
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue  # ruff would fail on it: not a configuration to honour here
        if "ruff" in data.get("tool", {}):
            return path
    return None


def configures_ruff(checkout: Path) -> bool:
    """Whether any directory of the checkout holds a ruff configuration."""
    for seen, (root, dirs, _files) in enumerate(os.walk(checkout)):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        if ruff_config(Path(root)) is not None:
            return True
        if seen > MAX_DIRS:
            return False
    return False


def default_config_text(select: list[str]) -> str:
    """A ruff.toml selecting ``select`` and nothing else."""
    rules = ", ".join(f'"{rule}"' for rule in select)
    return f"# Triloop: the policy's code_scans.lint.default_select\n[lint]\nselect = [{rules}]\n"


def write_default(out: Path, select: list[str]) -> Path:
    """``out/analysis/ruff.toml`` with the policy's rule set, readable by the sandbox user."""
    target = out / ANALYSIS
    target.mkdir(exist_ok=True)
    target.chmod(0o755)
    path = target / "ruff.toml"
    path.write_text(default_config_text(select), encoding="utf-8")
    path.chmod(0o644)
    return path
