"""``cellpipe``: lint, graph and compile notebooks from the shell (and CI).

Every command parses its options, makes one call into :mod:`cellpipe.api`, and prints.
Errors become a one-line message and exit code 2 (``--verbose`` shows the traceback);
lint findings exit 1.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from cellpipe import __version__
from cellpipe.cli.options import (
    cluster_options,
    note_shared_image,
    print_image,
    print_note,
    search_for,
    search_options,
)
from cellpipe.errors import CellpipeError, PipelineError

F = TypeVar("F", bound=Callable[..., Any])

SPLIT_HELP = (
    "How to cut a notebook without step tags: 'headings' (markdown H1/H2 sections; the "
    "default when it has headings), 'cells' (each code cell a step) or 'none' (one step)."
)


def errors_to_messages(func: F) -> F:
    """Turn cellpipe errors into one clear line on stderr; tracebacks only with --verbose."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        try:
            return func(*args, **kwargs)
        except PipelineError as exc:
            for diagnostic in exc.diagnostics:
                click.echo(_format(diagnostic, exc.path), err=True)
            click.secho(f"error: {exc}", fg="red", err=True)
            if ctx.obj and ctx.obj.get("verbose"):
                raise
            ctx.exit(1)
        except CellpipeError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            if ctx.obj and ctx.obj.get("verbose"):
                raise
            ctx.exit(2)

    return wrapper  # type: ignore[return-value]


def _format(diagnostic: Any, path: str | None) -> str:
    color = {"error": "red", "warning": "yellow", "info": "cyan"}[diagnostic.severity]
    where = diagnostic.where()
    head = f"{path}: " if path else ""
    head += f"{where}: " if where else ""
    text = (
        f"{head}{click.style(diagnostic.severity, fg=color, bold=True)} {diagnostic.code} "
        f"{diagnostic.message}"
    )
    if diagnostic.hint:
        text += f"\n    fix: {diagnostic.hint}"
    return text


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="cellpipe")
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """Turn a Jupyter notebook into a pipeline that computes what the notebook computes.

    Mark steps with cell tags (step:NAME, after:NAME, parameters, metrics, skip, …) or a
    `%%step NAME` first line; untagged notebooks are split at their headings.

    \b
    Examples:
      cellpipe lint train.ipynb                 check the notebook, with cell and line
      cellpipe lint train.ipynb --strict        warnings fail too (for CI)
      cellpipe graph train.ipynb --format svg -o dag.svg
      cellpipe compile train.ipynb -o train.pipeline.json
    """
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose


notebook_argument = click.argument(
    "notebook", type=click.Path(dir_okay=False, path_type=Path), metavar="NOTEBOOK"
)
output_option = click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of stdout.",
)
split_option = click.option(
    "--split", type=click.Choice(["headings", "cells", "none"]), default=None, help=SPLIT_HELP
)


@main.command()
@notebook_argument
@split_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Human text, or JSON for tools.",
)
@click.option("--strict", is_flag=True, help="Treat warnings as errors (exit 1 on any).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors and warnings, no step summary.")
@click.option("--target", metavar="TARGET", default=None,
              help="Also check what a run on this cluster target (argo, kfp, or a target an "
              "installed package registers) would break on that a local run would not: "
              "files from the notebook's folder, this machine's paths, localhost, GPUs "
              "without placement, memory limits (CP6xx).")
@errors_to_messages
def lint(notebook: Path, split: str | None, fmt: str, strict: bool, quiet: bool,
         target: str | None) -> None:
    """Check NOTEBOOK: steps, data edges, parameters, and every problem with cell and line.

    Exits 1 when there are errors (or warnings, with --strict).

    \b
    Examples:
      cellpipe lint train.ipynb --strict
      cellpipe lint train.ipynb --target kfp      what would break on Kubeflow Pipelines
    """
    from cellpipe import api

    report = api.lint(notebook, split=split, strict=strict, target=target)
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print_lint(report, quiet)
    if not report.ok:
        sys.exit(1)


def _print_lint(report: Any, quiet: bool) -> None:
    pipeline = report.pipeline
    path = pipeline.notebook.path
    shown = [d for d in report.diagnostics if not (quiet and d.severity == "info")]
    for diagnostic in shown:
        click.echo(_format(diagnostic, path))
    if not quiet:
        if shown:
            click.echo()
        params = ", ".join(f"{p.name}: {p.type} = {p.default!r}" for p in pipeline.parameters)
        click.echo(
            f"{len(pipeline.steps)} steps (split: {pipeline.split})"
            + (f"; parameters: {params}" if params else "")
        )
        for step in pipeline.steps:
            cells = ", ".join(str(i + 1) for i, _ in step.cells)
            click.echo(f"  {click.style(step.name, bold=True)}  cells {cells}")
            for upstream in step.upstream:
                variables = sorted(v for v, p in step.reads.items() if p == upstream)
                carried = ", ".join(variables) if variables else "(after: tag)"
                click.echo(f"      ← {upstream}: {carried}")
            if step.parameters:
                click.echo(f"      parameters: {', '.join(step.parameters)}")
            if step.setup:  # session setup replayed first: options, chdir, sys.path, …
                shown_setup = "; ".join(line.splitlines()[0][:60] for line in step.setup)
                click.echo(f"      setup: {shown_setup}")
        if pipeline.metrics:
            click.echo(f"metrics: {', '.join(n for n, _ in pipeline.metrics)}")
    counts = {s: sum(d.severity == s for d in report.diagnostics) for s in ("error", "warning")}
    verdict = "ok" if report.ok else "failed"
    target = f" for target {report.target}" if report.target else ""
    click.echo(f"{path}: {verdict}{target} ({counts['error']} errors, "
               f"{counts['warning']} warnings)")


@main.command()
@notebook_argument
@split_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["mermaid", "dot", "svg"]),
    default="mermaid",
    show_default=True,
    help="Mermaid or dot text, or SVG (needs graphviz's `dot`).",
)
@output_option
@errors_to_messages
def graph(notebook: Path, split: str | None, fmt: str, output: Path | None) -> None:
    """Draw NOTEBOOK's pipeline DAG, edges labeled with the variables they carry."""
    from cellpipe import api

    text = api.render_graph(notebook, fmt, split=split)
    write_output(text, output)


@main.command(name="compile")
@notebook_argument
@split_option
@click.option(
    "--target",
    default="spec",
    show_default=True,
    metavar="TARGET",
    help="spec (cellpipe's PipelineSpec JSON), argo (an Argo Workflow), kfp (a Kubeflow "
    "Pipelines IR YAML), katib (a Katib Experiment searching the parameters), or a target "
    "an installed package registers.",
)
@output_option
@click.option("--strict", is_flag=True, help="Refuse to compile when lint has warnings.")
@click.option("-p", "--parameter", "params", multiple=True, metavar="NAME=SPACE",
              help="Katib: a parameter's search space, e.g. 'lr=loguniform(1e-4, 1e-1)', "
              "'depth=int(2, 8)', 'kernel=choice(rbf, linear)'; NAME=VALUE fixes one "
              "[the metadata's cellpipe.tune.space].")
@search_options
@cluster_options
@errors_to_messages
def compile_(notebook: Path, split: str | None, target: str, output: Path | None, strict: bool,
             params: tuple[str, ...], **cluster: Any) -> None:
    """Compile NOTEBOOK to a pipeline (refuses when lint finds errors).

    \b
    Examples:
      cellpipe compile train.ipynb -o train.pipeline.json
      cellpipe compile train.ipynb --target argo --registry 127.0.0.1:5000/ml -o wf.yaml
      cellpipe compile train.ipynb --target kfp --images images.json -o pipeline.yaml
      cellpipe compile train.ipynb --target kfp -o pipeline.yaml   # one image, no build
      cellpipe compile train.ipynb --target katib -p "lr=loguniform(1e-4, 1e-1)" \\
          --objective best_accuracy --maximize --trials 20 -o experiment.yaml
    """
    from cellpipe import api

    search = search_for(target, params, cluster)
    if search is None and params:
        raise click.UsageError("-p on compile is a search space, for --target katib; other "
                               "targets take parameter values on submit")
    if target == "spec":
        spec = api.compile_spec(notebook, split=split, strict=strict)
        from cellpipe.api import spec_to_json

        text = spec_to_json(spec)
        summary = f"{len(spec.steps)} steps"
    else:
        if strict:
            api.compile_spec(notebook, split=split, strict=True)
        note_shared_image(notebook, split, cluster)
        text = api.compile_target(notebook, target, split=split, on_image=print_image,
                                  on_note=print_note, target_options=search, **cluster)
        summary = f"target {target}"
    write_output(text, output)
    if output is not None:
        click.echo(f"wrote {output} ({summary})", err=True)


def write_output(text: str, output: Path | None) -> None:
    """``text`` to stdout, or atomically to ``output``."""
    if output is None:
        click.echo(text, nl=False)
        return
    from cellpipe.api import write_text_atomic

    write_text_atomic(output, text)


def _register() -> None:
    from cellpipe.cli import (  # noqa: F401  (register their commands)
        build_commands,
        cluster_commands,
        compare_commands,
        run_commands,
        tune_commands,
    )


_register()

if __name__ == "__main__":  # pragma: no cover
    # Run as a script this module is a second copy; use the one the commands register on.
    from cellpipe.cli.main import main as registered

    registered()
