"""Search spaces. `SPACES` maps a name to its `CategoricalSpace`.

Adding a space: one file here defining a `CategoricalSpace` (options per position, an optional validity rule over
earlier positions, a printer, and the factory of its candidate network when candidates are trained) and one
`SPACES.register` line below. Random search, evolution and REINFORCE then search it as they search every other.
"""

from jaxnas.common.registry import Registry
from jaxnas.spaces import hierarchical, macro, metaqnn, nasnet, nb201
from jaxnas.spaces.base import CategoricalSpace

SPACES: Registry[CategoricalSpace] = Registry("space")
SPACES.register("nb201")(nb201.SPACE)
SPACES.register("macro")(macro.SPACE)
SPACES.register("metaqnn")(metaqnn.SPACE)
SPACES.register("nasnet")(nasnet.SPACE)
SPACES.register("hierarchical")(hierarchical.SPACE)

__all__ = ["SPACES", "CategoricalSpace", "hierarchical", "macro", "metaqnn", "nasnet", "nb201"]
