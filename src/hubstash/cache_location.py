"""Which folder is the Hugging Face Hub cache, decided as huggingface_hub decides it.

huggingface_hub reads its environment once, at import; hubstash resolves the folder at
call time from the environment it is given, with the same precedence.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hubstash.errors import UsageError
from hubstash.repos import RepoId

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CacheLocation:
    """The cache folder and the reason it was chosen (shown to users)."""

    path: Path
    reason: str


def resolve_cache_dir(
    explicit: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> CacheLocation:
    """Find the Hub cache folder.

    Precedence: the explicit folder, ``HF_HUB_CACHE``, ``HUGGINGFACE_HUB_CACHE``,
    ``HF_HOME/hub``, ``XDG_CACHE_HOME/huggingface/hub``, ``~/.cache/huggingface/hub``.
    An explicit folder that holds a ``hub/`` folder is an ``HF_HOME``: its ``hub/`` is
    the cache, so files beside it (tokens) are never taken for cache content.
    """
    location = _resolve(explicit, os.environ if environ is None else environ)
    return CacheLocation(location.path.absolute(), location.reason)


def _resolve(
    explicit: str | os.PathLike[str] | None, env: Mapping[str, str]
) -> CacheLocation:
    if explicit is not None:
        path = Path(explicit).expanduser().absolute()
        if path.exists() and not path.is_dir():
            raise UsageError(f"--cache-dir {path} is a file, not a folder")
        return _explicit(path)
    if env.get("HF_HUB_CACHE"):
        return CacheLocation(_expand(env["HF_HUB_CACHE"], env), "HF_HUB_CACHE")
    if env.get("HUGGINGFACE_HUB_CACHE"):
        # The client does not expand this legacy variable; neither do we.
        return CacheLocation(
            Path(env["HUGGINGFACE_HUB_CACHE"]), "HUGGINGFACE_HUB_CACHE"
        )
    if env.get("HF_HOME"):
        return CacheLocation(_expand(env["HF_HOME"], env) / "hub", "HF_HOME/hub")
    if env.get("XDG_CACHE_HOME"):
        path = Path(env["XDG_CACHE_HOME"]) / "huggingface" / "hub"
        return CacheLocation(path, "XDG_CACHE_HOME/huggingface/hub")
    home = Path(env.get("HOME") or Path.home())
    return CacheLocation(home / ".cache" / "huggingface" / "hub", "default")


def _explicit(path: Path) -> CacheLocation:
    if is_hf_home(path):
        logger.debug("%s is an HF_HOME: using %s as the cache", path, path / "hub")
        return CacheLocation(path / "hub", "--cache-dir is an HF_HOME, so its hub/")
    return CacheLocation(path, "--cache-dir")


# What the client keeps in HF_HOME beside the cache; never inside a cache.
_HF_HOME_ENTRIES = ("hub", "token", "stored_tokens", "xet", "assets", "sandbox")


def is_hf_home(path: Path) -> bool:
    """Whether a folder is an ``HF_HOME`` rather than a Hub cache.

    It is when it holds what the client keeps beside the cache (``hub/``, a token,
    ``xet/``...) and no repo folders. This holds even after ``hub/`` was wiped, so
    a restore lands where the client will look, never beside a token.
    """
    if not path.is_dir():
        return False
    names = {entry.name for entry in path.iterdir()}
    holds_repos = any(RepoId.from_folder(name) is not None for name in names)
    return not holds_repos and any(name in names for name in _HF_HOME_ENTRIES)


def _expand(value: str, env: Mapping[str, str]) -> Path:
    expanded = os.path.expanduser(value)
    if env is os.environ:
        expanded = os.path.expandvars(expanded)
    return Path(expanded)
