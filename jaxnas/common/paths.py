"""Locating data files that live outside the repository (e.g. `../shared/data`)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from jaxnas.common.errors import ConfigError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def resolve_data_file(explicit: str | None, env_var: str, relative_candidates: Sequence[str], field: str, hint: str) -> str:
    """Returns the first existing file among: `explicit`, `$env_var`, then each relative candidate
    looked up from the current directory and from the repository root.

    Raises `ConfigError(field, ...)` at once, naming every place searched and `hint` (how to get the file).
    """
    if explicit:
        if os.path.isfile(explicit):
            return os.path.abspath(explicit)
        raise ConfigError(field, f"file not found: {explicit!r}. {hint}")
    tried = []
    env_value = os.environ.get(env_var)
    if env_value:
        if os.path.isfile(env_value):
            return os.path.abspath(env_value)
        tried.append(f"${env_var}={env_value}")
    for rel in relative_candidates:
        for base in (os.getcwd(), REPO_ROOT):
            candidate = os.path.normpath(os.path.join(base, rel))
            if os.path.isfile(candidate):
                return candidate
            tried.append(candidate)
    raise ConfigError(field, f"no file given and none found (searched: {', '.join(dict.fromkeys(tried))}). {hint}")
