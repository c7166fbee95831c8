"""``%cellpipe submit``: the saved notebook sent to a cluster target, followed in the cell.

The same live view as ``%cellpipe run`` (a :class:`~cellpipe_kernel.widgets.RunView` fed
with the target's step events while ``--watch`` follows the run); the run is left in the
user namespace as ``_cellpipe_cluster_run`` (a :class:`cellpipe.api.ClusterRun`), whose
``wait()``, ``metrics``, ``load(name)`` and ``report(step)`` read the results back when the
run keeps them in an object store.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cellpipe import api
from cellpipe.errors import CellpipeError
from cellpipe_kernel.notebook import runs_root
from cellpipe_kernel.parsing import HelpShown, MagicParser
from cellpipe_kernel.run_view import in_kernel, parameters_for

CLUSTER_RUN_VARIABLE = "_cellpipe_cluster_run"


def make_parser() -> argparse.ArgumentParser:
    """The parser of ``%cellpipe submit``'s options."""
    parser = MagicParser(
        prog="%cellpipe submit", allow_abbrev=False,
        description="Submit the saved notebook to a cluster target and follow it; the run "
        f"is `{CLUSTER_RUN_VARIABLE}` (.wait(), .metrics, .load(name), .report(step)).",
    )
    parser.add_argument("--target", required=True, metavar="TARGET",
                        help="argo, kfp, or a target an installed package registers")
    parser.add_argument("-p", "--parameter", dest="params", action="extend", nargs="+",
                        default=[], metavar="NAME=VALUE",
                        help="a parameter value; these win over the parameters form")
    parser.add_argument("--watch", action="store_true",
                        help="follow the run in the view until it ends")
    parser.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="with --watch: stop following after this long (the run goes on)")
    parser.add_argument("--image", help="one image for every step, no build (the default: "
                        "the pipeline's base image)")
    parser.add_argument("--images", help="a step → image map file (cellpipe build)")
    parser.add_argument("--registry", help="build the step images and push them here")
    parser.add_argument("--storage", metavar="URL",
                        help="keep the run's data in this object store (s3://bucket/prefix), "
                        "where the results are read back from")
    for name in ("namespace", "host", "experiment"):
        parser.add_argument(f"--{name}", help=f"the target's {name}, when it reads one")
    parser.add_argument("--notebook", help=argparse.SUPPRESS)
    return parser


def submit_command(shell: Any, argv: list[str], notebook: Path) -> Any:
    """Submit ``notebook``; show the run's steps as they change; store the ``ClusterRun``.

    Returns None (the run is ``shell.user_ns["_cellpipe_cluster_run"]``).
    """
    from cellpipe_kernel.widgets import RunView

    try:
        args = make_parser().parse_args(argv)
    except HelpShown:
        return None
    notebook = Path(notebook)
    spec = api.compile_spec(notebook)
    parameters = parameters_for(shell, spec, args.params)
    fields = api.target_connection(args.target)
    given = {"namespace": args.namespace, "host": args.host, "experiment": args.experiment}
    for field in fields:
        if field.required and not given.get(field.name):
            raise CellpipeError(f"--target {args.target} needs --{field.name}",
                                    hint=field.description)
    connection = {f.name: given[f.name] for f in fields if given.get(f.name) is not None}
    options = {k: v for k, v in (("image", args.image), ("images", args.images),
                                 ("registry", args.registry), ("storage", args.storage))
               if v is not None}
    kernel = in_kernel(shell)
    view = RunView(notebook, [s.name for s in spec.steps], engine=args.target,
                   root=runs_root(notebook), echo=not kernel)
    shell.user_ns["_cellpipe_view"] = view
    if kernel and view.widget is not None:
        view.display()
    run = api.submit(notebook, args.target, connection=connection, watch=args.watch,
                     timeout=args.timeout, on_event=view.on_event if args.watch else None,
                     parameters=parameters, **options)
    shell.user_ns[CLUSTER_RUN_VARIABLE] = run
    where = (f"; results in {run.store}" if run.store
             else "; its values stay in the cluster (--storage s3://… keeps them readable)")
    print(f"{run.title or f'{args.target} run {run.name}'}: {run.status}{where} "
          f"({CLUSTER_RUN_VARIABLE})")
    return None
