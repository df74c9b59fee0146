"""Search spaces. `SPACES` maps a name to its `CategoricalSpace`."""

from jaxnas.common.registry import Registry
from jaxnas.spaces import macro, nb201
from jaxnas.spaces.base import CategoricalSpace

SPACES: Registry[CategoricalSpace] = Registry("space")
SPACES.register("nb201")(nb201.SPACE)
SPACES.register("macro")(macro.SPACE)

__all__ = ["SPACES", "CategoricalSpace", "macro", "nb201"]
