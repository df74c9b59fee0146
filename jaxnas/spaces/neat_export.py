"""A NEAT genome outside the evolution: readable Python source, a callable, and a drawing.

`to_python(genome, space)` writes the network a genome encodes (`jaxnas.spaces.neat`, Stanley & Miikkulainen 2002)
as plain Python that needs only the `math` module: one assignment per node, in evaluation order, each a weighted
sum of its enabled in-connections plus its bias through the node's activation, e.g.

    h5 = sigmoid(2.3187 * x0 - 1.05 * x1 + 0.4)
    y0 = sigmoid(-3.1 * h5 + 0.9 * x1 - 0.2)

Inputs are `x0..x{I-1}`, outputs `y0..y{O-1}`, hidden nodes `h{id}` (their gene ids). Disabled genes, and hidden
nodes that reach no output, are left out; parallel genes between the same two nodes are written as separate terms
(the decoded network sums them). Numbers are printed as the shortest decimals that round to the same float32, so the
function computes what `space.apply` does up to float64 against float32 rounding. A feed-forward genome becomes
`def network(x0, ...)` returning the tuple of outputs; a recurrent one (`space.recurrent`) becomes `def network_step(inputs, state)`, one
synchronous time step as `NeatSpace.step`: every non-input node from the previous step's activations (`state`, a
dict from node name to value, missing names 0.0: a flushed network) and this step's inputs; it returns the new
state and the outputs. A CPPN (`space.activations`) writes each node with its own function (sin, gauss, ...).

`to_function` compiles that source (the source is ours: no user text is executed); `draw_network` draws the genome
with matplotlib (nodes in columns by evaluation level, edges coloured by sign and sized by weight).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from jaxnas.common.errors import check

# The activations as Python source over a float z (the same functions as `jaxnas.spaces.neat.ACTIVATIONS`).
_PY_ACTIVATIONS = {
    "sigmoid": "def sigmoid(z):\n    z = max(-60.0, min(60.0, 4.9 * z))  # 1 / (1 + exp(-4.9 z)), overflow-safe\n"
               "    return 1.0 / (1.0 + math.exp(-z))\n",
    "sigmoid5": "def sigmoid5(z):\n    z = max(-60.0, min(60.0, 5.0 * z))  # neat-python's sigmoid\n"
                "    return 1.0 / (1.0 + math.exp(-z))\n",
    "tanh": "def tanh(z):\n    return math.tanh(z)\n",
    "relu": "def relu(z):\n    return max(z, 0.0)\n",
    "identity": "def identity(z):\n    return z\n",
    "sin": "def sin(z):\n    return math.sin(z)\n",
    "gauss": "def gauss(z):\n    return math.exp(-min(z * z, 700.0))\n",
    "abs": "def absolute(z):\n    return math.fabs(z)\n",
    "signed_sigmoid": "def signed_sigmoid(z):\n    return math.tanh(0.5 * z)  # 2 / (1 + exp(-z)) - 1\n",
    "clipped_linear": "def clipped_linear(z):\n    return max(-3.0, min(3.0, z)) / 3.0\n",
}
_PY_NAMES = {"abs": "absolute"}  # Python builtins the exported module must not shadow


def _genome_dict(genome: Any) -> dict[str, Any]:
    """A `Genome` (one, not a population) or `to_host`'s dict -> `to_host`'s dict."""
    if isinstance(genome, dict):
        check("nodes" in genome and "connections" in genome, "genome",
              "a dict needs 'nodes' and 'connections' (as jaxnas.spaces.neat.to_host writes them)")
        return genome
    from jaxnas.spaces.neat import to_host

    check(getattr(genome.node_id, "ndim", 0) == 1, "genome",
          f"expected one genome, got node_id of shape {tuple(genome.node_id.shape)}; index the population first")
    return to_host(genome)


def _cppn_functions(g: dict[str, Any], space: Any) -> dict[int, str]:
    """A CPPN genome's node id -> activation name; refused (naming `genome`) where a node lacks its gene."""
    missing = [n["id"] for n in g["nodes"] if n["id"] >= space.num_inputs and "activation" not in n]
    check(not missing, "genome", f"nodes {missing} have no 'activation': a CPPN space (activations="
          f"{space.activations}) needs each node's activation gene (to_host writes it from node_act)")
    return {n["id"]: space.activations[n["activation"]] for n in g["nodes"] if n["id"] >= space.num_inputs}


def _name(node: int, space: Any) -> str:
    if node < space.num_inputs:
        return f"x{node}"
    if node < space.num_io:
        return f"y{node - space.num_inputs}"
    return f"h{node}"


def _evaluation_order(nodes: list[int], conns: list[dict[str, Any]], space: Any) -> list[int]:
    """The non-input nodes that feed an output (outputs included), each after every node it reads."""
    reads: dict[int, set[int]] = {n: set() for n in nodes}
    for c in conns:
        reads[c["out"]].add(c["in"])
    needed, stack = set(), list(range(space.num_inputs, space.num_io))
    while stack:
        n = stack.pop()
        if n not in needed:
            needed.add(n)
            stack.extend(m for m in reads[n] if m >= space.num_inputs)
    order: list[int] = []
    done = set(range(space.num_inputs))
    while len(order) < len(needed):
        ready = sorted(n for n in needed if n not in done and reads[n] <= done)
        check(bool(ready), "genome", "its enabled connections form a cycle; a feed-forward space needs an acyclic "
              "genome (recurrent genomes are exported with space.recurrent=True)")
        order.extend(ready)
        done.update(ready)
    return order


def _num(v: float) -> str:
    """The shortest decimal that is the same float32 (weights are float32; their float64 error is below float32's)."""
    return str(np.float32(v))


def _assignment(node: int, bias: float, conns: list[dict[str, Any]], act: str, space: Any, read) -> str:
    terms = [f"{_num(c['weight'])} * {read(c['in'])}" for c in conns if c["out"] == node]
    total = " + ".join(terms + [_num(bias)]).replace("+ -", "- ")
    return f"{_name(node, space)} = {_PY_NAMES.get(act, act)}({total})"


def to_python(genome: Any, space: Any, name: str | None = None) -> str:
    """The genome's network as Python source (see the module docstring); `name`: the function's name."""
    g = _genome_dict(genome)
    nodes = {n["id"]: n["bias"] for n in g["nodes"]}
    conns = [c for c in g["connections"] if c["enabled"]]
    hidden_act, out_act = space.activation, space.output_activation or space.activation
    if space.activations is not None:  # a CPPN: each node's own function
        act = _cppn_functions(g, space).__getitem__
    else:
        act = lambda n: out_act if space.num_inputs <= n < space.num_io else hidden_act  # noqa: E731
    used = dict.fromkeys(act(n) for n in sorted(nodes) if n >= space.num_inputs)
    header = "import math\n\n\n" + "\n".join(_PY_ACTIVATIONS[a] for a in used)
    outputs = ", ".join(_name(o, space) for o in range(space.num_inputs, space.num_io))
    inputs = [_name(i, space) for i in range(space.num_inputs)]
    if not space.recurrent:
        order = _evaluation_order(sorted(nodes), conns, space)
        body = [_assignment(n, nodes[n], conns, act(n), space, lambda m: _name(m, space)) for n in order]
        return (f"{header}\n\ndef {name or 'network'}({', '.join(inputs)}):\n"
                f'    """{space.num_inputs} inputs -> {space.num_outputs} outputs (NEAT genome, '
                f'{len(order) - space.num_outputs} hidden nodes)."""\n'
                + "".join(f"    {line}\n" for line in body) + f"    return ({outputs},)\n")
    computed = [n for n in sorted(nodes) if n >= space.num_inputs]

    def read(m: int) -> str:
        return _name(m, space) if m < space.num_inputs else f"state.get({_name(m, space)!r}, 0.0)"

    body = [_assignment(n, nodes[n], conns, act(n), space, read) for n in computed]
    names = ", ".join(f"{_name(n, space)!r}: {_name(n, space)}" for n in computed)
    return (f"{header}\n\ndef {name or 'network_step'}(inputs, state):\n"
            f'    """One time step: inputs ({space.num_inputs} values), state (dict node -> activation of the previous '
            f'step; missing: 0.0) -> (new state, {space.num_outputs} outputs)."""\n'
            f"    {', '.join(inputs)}{',' if len(inputs) == 1 else ''} = inputs\n"
            + "".join(f"    {line}\n" for line in body)
            + f"    return {{{names}}}, ({outputs},)\n")


def to_function(genome: Any, space: Any) -> Callable[..., Any]:
    """`to_python`'s function, compiled: network(x0, ...) -> outputs, or network_step(inputs, state)."""
    scope: dict[str, Any] = {"math": math}
    exec(compile(to_python(genome, space, name="exported"), "<neat genome>", "exec"), scope)  # noqa: S102
    return scope["exported"]


def draw_network(genome: Any, space: Any, ax: Any, title: str = "") -> None:
    """Nodes in columns by evaluation level (inputs left, outputs right); edges blue > 0, red < 0, width ~ |w|;
    disabled genes dotted grey. Recurrent genomes: columns by distance from the inputs; connections that go
    back (or stay in a column) curve, and a self-loop is a ring around its node."""
    import matplotlib.pyplot as plt

    genome = _genome_dict(genome)
    nodes = {n["id"]: n for n in genome["nodes"]}
    enabled = [c for c in genome["connections"] if c["enabled"]]
    depth = {i: 0 for i in nodes}
    if space.recurrent:  # shortest distance from an input; unreachable nodes in the first hidden column
        depth = {i: (0 if i < space.num_inputs else 1) for i in nodes}
        frontier, seen = list(range(space.num_inputs)), set(range(space.num_inputs))
        while frontier:
            nxt = [c["out"] for c in enabled if c["in"] in frontier and c["out"] not in seen]
            for o in nxt:
                depth[o] = max(depth[c] for c in frontier) + 1
            seen.update(nxt)
            frontier = sorted(set(nxt))
    else:
        for _ in range(len(nodes)):
            for c in enabled:
                depth[c["out"]] = max(depth[c["out"]], depth[c["in"]] + 1)
    outputs = range(space.num_inputs, space.num_io)
    last = max(depth.values()) + 1
    for o in outputs:
        depth[o] = last
    for i in range(space.num_inputs):
        depth[i] = 0
    columns: dict[int, list[int]] = {}
    for i in sorted(nodes):
        columns.setdefault(depth[i], []).append(i)
    pos = {i: (d, (k + 1) / (len(ids) + 1)) for d, ids in columns.items() for k, i in enumerate(ids)}
    functions = _cppn_functions(genome, space) if space.activations is not None else {}
    wmax = max([abs(c["weight"]) for c in genome["connections"]] + [1e-6])
    for c in genome["connections"]:
        (x0, y0), (x1, y1) = pos[c["in"]], pos[c["out"]]
        color, lw = "tab:blue" if c["weight"] > 0 else "tab:red", 0.5 + 3 * abs(c["weight"]) / wmax
        if c["enabled"] and c["in"] == c["out"]:
            ax.add_patch(plt.Circle((x0 + 0.12, y0 + 0.05), 0.08, fill=False, color=color, lw=lw, alpha=0.8))
        elif c["enabled"]:
            back = x1 <= x0  # recurrent: drawn as an arc
            ax.annotate("", (x1, y1), (x0, y0), arrowprops={"arrowstyle": "->", "lw": lw, "color": color, "alpha": 0.8,
                                                             "shrinkA": 8, "shrinkB": 8,
                                                             "connectionstyle": f"arc3,rad={0.5 if back else 0.0}"})
        else:
            ax.plot([x0, x1], [y0, y1], ls=":", color="0.7", lw=0.8)
    for i, (x, y) in pos.items():
        kind = "input" if i < space.num_inputs else "output" if i < space.num_io else "hidden"
        color = {"input": "0.85", "output": "tab:orange", "hidden": "white"}[kind]
        ax.scatter([x], [y], s=300, c=color, edgecolors="k", zorder=3)
        label = _name(i, space)
        if i in functions:  # a CPPN: each node's function under its name
            label += "\n" + functions[i]
        ax.text(x, y, label, ha="center", va="center", fontsize=6 if "\n" in label else 7, zorder=4)
    ax.set_xlim(-0.5, last + 0.5)
    ax.set_ylim(0, 1)
    ax.axis("off")
    ax.set_title(title or "best genome (blue > 0, red < 0, width ~ |w|, dotted: disabled)", fontsize=9)


__all__ = ["to_python", "to_function", "draw_network"]
