"""An ONNX model with every name it carries replaced by one the gate chose: before a converter turns it into code.

onnx2torch names torch.fx modules and values after ONNX node and tensor names, and torch.fx pastes those names
into the Python source it compiles: a node named `a")(a) if open(...) else getattr(self, "a` is a program. So
nothing of the artifact's text may reach a converter: nodes become `n_0, n_1, ...`, tensors (inputs, outputs,
initializers, value infos, node inputs and outputs, in subgraphs and local functions too) `t_0, t_1, ...`, the
graph `g`, and free text (doc strings, metadata, producer) is dropped. Order is kept, so the converted module's
positional inputs and outputs are the original ones, which the caller maps back by position.
"""

from __future__ import annotations

import re
from typing import Any

# Every name `anonymised` writes matches this; a test pins it, and `check_identifiers` enforces it on the result.
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")


class _Names:
    def __init__(self) -> None:
        self.tensors: dict[str, str] = {"": ""}  # "" is an omitted optional input and stays omitted
        self.nodes = 0

    def tensor(self, name: str) -> str:
        if name not in self.tensors:
            self.tensors[name] = f"t_{len(self.tensors) - 1}"
        return self.tensors[name]

    def node(self) -> str:
        self.nodes += 1
        return f"n_{self.nodes - 1}"


def _rename_values(values: Any, names: _Names) -> None:
    for v in values:
        v.name = names.tensor(v.name)
        v.doc_string = ""


def _rename_graph(graph: Any, names: _Names, graph_name: str) -> None:
    graph.name = graph_name
    graph.doc_string = ""
    for seq in (graph.input, graph.output, graph.value_info, graph.initializer):
        _rename_values(seq, names)
    for s in graph.sparse_initializer:
        s.values.name = names.tensor(s.values.name)
        s.indices.name = ""
    graph.ClearField("quantization_annotation")
    if hasattr(graph, "metadata_props"):
        graph.ClearField("metadata_props")
    _rename_nodes(graph.node, names)


def _rename_nodes(nodes: Any, names: _Names) -> None:
    for n in nodes:
        n.name = names.node()
        n.doc_string = ""
        for i, x in enumerate(n.input):
            n.input[i] = names.tensor(x)
        for i, x in enumerate(n.output):
            n.output[i] = names.tensor(x)
        if hasattr(n, "metadata_props"):
            n.ClearField("metadata_props")
        for a in n.attribute:
            a.doc_string = ""
            if a.HasField("g"):
                _rename_graph(a.g, names, f"g_{names.nodes}")
            for k, sub in enumerate(a.graphs):
                _rename_graph(sub, names, f"g_{names.nodes}_{k}")


def anonymised(model: Any) -> Any:
    """A copy of `model` whose every node, tensor and graph name is one chosen here (see the module's docstring)."""
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(model)
    for field in ("doc_string", "producer_name", "producer_version", "domain"):
        m.ClearField(field)
    m.ClearField("metadata_props")
    m.ClearField("training_info")
    names = _Names()
    _rename_graph(m.graph, names, "g")
    for f in m.functions:  # local functions: their formal parameters and bodies, renamed consistently
        f.doc_string = ""
        f.input[:] = [names.tensor(x) for x in f.input]
        f.output[:] = [names.tensor(x) for x in f.output]
        _rename_nodes(f.node, names)
    check_identifiers(m)
    return m


def check_identifiers(model: Any) -> None:
    """Raise ValueError unless every node, tensor and graph name in `model` is a plain identifier."""
    bad: list[str] = []

    def ok(name: str) -> None:
        if name and not IDENTIFIER.match(name):
            bad.append(name)

    def graph(g: Any) -> None:
        ok(g.name)
        for seq in (g.input, g.output, g.value_info, g.initializer):
            for v in seq:
                ok(v.name)
        nodes(g.node)

    def nodes(ns: Any) -> None:
        for n in ns:
            ok(n.name)
            for x in (*n.input, *n.output):
                ok(x)
            for a in n.attribute:
                if a.HasField("g"):
                    graph(a.g)
                for sub in a.graphs:
                    graph(sub)

    graph(model.graph)
    for f in model.functions:
        for x in (*f.input, *f.output):
            ok(x)
        nodes(f.node)
    if bad:
        raise ValueError(f"{len(bad)} name(s) are not plain identifiers after renaming (first: {bad[0][:40]!r})")
