"""Text renderings of a pipeline's DAG: Mermaid and Graphviz dot."""

from __future__ import annotations

from cellpipe.core.pipeline import Pipeline


def _label(variables: tuple[str, ...], limit: int = 4) -> str:
    shown = ", ".join(variables[:limit])
    return shown + (f" +{len(variables) - limit}" if len(variables) > limit else "")


def to_mermaid(pipeline: Pipeline) -> str:
    """Render the DAG as a Mermaid flowchart (edges labeled by the variables they carry)."""
    ids = {s.name: f"s{i}" for i, s in enumerate(pipeline.steps)}
    lines = ["flowchart TD"]
    for step in pipeline.steps:
        lines.append(f'    {ids[step.name]}["{step.name}"]')
    for edge in pipeline.edges:
        label = _label(edge.variables)
        arrow = f'-->|"{label}"|' if label else ("-.->" if edge.explicit else "-->")
        lines.append(f"    {ids[edge.source]} {arrow} {ids[edge.target]}")
    return "\n".join(lines) + "\n"


def to_dot(pipeline: Pipeline) -> str:
    """Render the DAG as Graphviz dot."""

    def quote(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [
        f"digraph {quote(pipeline.notebook.name)} {{",
        "  rankdir=TB;",
        '  node [shape=box, style="rounded,filled", fillcolor="#eef3fb", fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    for step in pipeline.steps:
        lines.append(f"  {quote(step.name)};")
    for edge in pipeline.edges:
        attrs = []
        if edge.variables:
            attrs.append(f"label={quote(_label(edge.variables))}")
        if edge.explicit and not edge.variables:
            attrs.append("style=dashed")
        suffix = f" [{', '.join(attrs)}]" if attrs else ""
        lines.append(f"  {quote(edge.source)} -> {quote(edge.target)}{suffix};")
    lines.append("}")
    return "\n".join(lines) + "\n"
