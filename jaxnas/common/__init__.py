"""Shared plumbing imported by every package (jaxnas, gans, mtl, experiments): one copy, never per package."""

from jaxnas.common.errors import ConfigError, check, check_choice, check_positive, check_range
from jaxnas.common.registry import Registry

__all__ = ["ConfigError", "Registry", "check", "check_choice", "check_positive", "check_range"]
