"""The environment that makes Hugging Face libraries run from the cache alone."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from hubstash.errors import UsageError

FORMATS = ("sh", "fish", "powershell", "dotenv", "github")


def offline_variables(cache_dir: Path) -> dict[str, str]:
    """Variables for offline runs against ``cache_dir``, in a stable order."""
    return {
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_CACHE": str(cache_dir),
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }


def render(variables: Mapping[str, str], fmt: str) -> str:
    """The variables as a shell (or dotenv, or ``$GITHUB_ENV``) would read them."""
    lines = [_line(name, value, fmt) for name, value in variables.items()]
    return "".join(line + "\n" for line in lines)


def append_to_github_env(variables: Mapping[str, str]) -> Path:
    """Append the variables to the file ``$GITHUB_ENV`` names, for later steps.

    Raises:
        UsageError: ``$GITHUB_ENV`` is not set (not inside GitHub Actions).
    """
    target = os.environ.get("GITHUB_ENV")
    if not target:
        raise UsageError(
            "GITHUB_ENV is not set: this is not a GitHub Actions step",
            hint='outside Actions, use eval "$(hubstash env)"',
        )
    with open(target, "a", encoding="utf-8") as f:
        f.write(render(variables, "github"))
    return Path(target)


def _line(name: str, value: str, fmt: str) -> str:
    if fmt == "sh":
        return f"export {name}={_sh_quote(value)}"
    if fmt == "fish":
        return f"set -gx {name} {_fish_quote(value)}"
    if fmt == "powershell":
        return f"$env:{name} = {_ps_quote(value)}"
    if fmt in ("dotenv", "github"):
        if "\n" in value:
            raise UsageError(f"{name} holds a newline, which {fmt} files cannot carry")
        return f"{name}={value}" if fmt == "github" else f"{name}={json.dumps(value)}"
    raise UsageError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def _sh_quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def _fish_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _ps_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
