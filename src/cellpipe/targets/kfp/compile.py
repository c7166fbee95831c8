"""Compile a PipelineSpec to Kubeflow Pipelines v2 IR YAML, with the kfp SDK's own compiler.

Every step becomes a *lightweight Python component* whose ``base_image`` is the step's
image: its function runs the step in-process through cellpipe's step runtime
(``cellpipe.runtime.__main__.main``), with the step's output ``Dataset`` artifact directory
as the artifact store and each producer's ``Dataset`` as an ``--input-store``. A
lightweight component (rather than a container component) runs under both
``kfp.local.SubprocessRunner`` and ``kfp.local.DockerRunner``, and on a cluster.

The step's spec slice is embedded in the component's source as a string constant: the IR
alone says what runs, and stays byte-identical between compilations. Notebook parameters
become typed pipeline parameters; a reporting step logs its metrics to a ``Metrics``
artifact, and every step publishes its report, figures, classification metrics and models
for the KFP UI (:mod:`cellpipe.targets.kfp.artifacts`). Retries, resources, timeouts,
caching and the cluster settings (secrets, node selector, tolerations, pod labels and
annotations, a volume) are set on the tasks.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import json
import keyword
import linecache
import re
import string
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Optional

from cellpipe.core.layout import OUTPUT_METRICS
from cellpipe.core.spec import PipelineSpec, StepSpec
from cellpipe.errors import CellpipeError, MissingDependencyError
from cellpipe.targets.carried import missing_runtime_message
from cellpipe.targets.checks import check_quantity
from cellpipe.targets.cluster import ClusterSettings, cluster_settings
from cellpipe.targets.kfp.artifacts import ARTIFACT_TYPES, publish_code, ui_outputs

__all__ = ["VOLUME_PATH", "compile_kfp"]

VOLUME_PATH = "/mnt/cellpipe"  # where the pipeline's volume is mounted, when it asks for one
_ANNOTATIONS = {"int": "int", "float": "float", "str": "str", "bool": "bool", "list": "list",
                "dict": "dict", "none": "Optional[str] = None"}
# kfp reads the pipeline's signature at run time: ``str | None`` is no type it knows.
_PYTHON_TYPES: dict[str, Any] = {"int": int, "float": float, "str": str, "bool": bool,
                                 "list": list, "dict": dict, "none": Optional[str]}  # noqa: UP045

# The component function, one per step. kfp builds a lightweight component from the
# function's *source* (inspect.getsource), and the signature differs per step (its
# parameters, the producers it reads, its outputs), so the source is generated from this
# template, written to a module file and imported (see _generated_functions). The body must
# be self-contained: KFP runs it as a file of its own in the step's container.
_COMPONENT = string.Template('''\
def $function($signature):
    """cellpipe step $step_repr: the notebook's code for it, run by cellpipe's step runtime."""
    import json as _json
    import os as _os
    import shutil as _shutil
    import tempfile as _tempfile

    try:
        from cellpipe.runtime.__main__ import main as _main
    except ImportError as _error:
        raise RuntimeError($missing_repr + " (" + str(_error) + ")") from None

    _step = $step_repr
    _spec = $spec_repr
    _kinds = $kinds_repr
    _defaults = $defaults_repr
    _values = {$values}
    _inputs = {$inputs}
    _metrics = $metrics$tracking

    def _whole(value):
        # KFP carries the numbers inside lists and dicts as floats: 3 arrives as 3.0
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, list):
            return [_whole(item) for item in value]
        if isinstance(value, dict):
            return {key: _whole(item) for key, item in value.items()}
        return value

    _work = _tempfile.mkdtemp(prefix="cellpipe-kfp-")
    try:
        with open(_os.path.join(_work, "spec.json"), "w", encoding="utf-8") as _file:
            _file.write(_spec)
        _argv = ["--spec", _os.path.join(_work, "spec.json"), "--step", _step,
                 "--store", $store, "--step-dir", _os.path.join(_work, "step"),
                 "--outputs-dir", _os.path.join(_work, "outputs"),
                 "--artifacts"]$carry$publish_store
        for _name, _value in _values.items():
            _kind = _kinds[_name]
            if _value is None or (_kind in ("list", "dict") and _value == _defaults[_name]):
                continue  # the notebook's own default, with its exact types
            _text = _value if _kind in ("str", "none") else _json.dumps(_whole(_value))
            _argv += ["--param", _name + "=" + _text]
        for _producer, _path in _inputs.items():
            _argv += ["--input-store", _producer + "=" + _path]
        _code = _main(_argv)
        _reported = _os.path.join(_work, "outputs", $metrics_file)
        if _metrics is not None and _os.path.exists(_reported):
            with open(_reported, encoding="utf-8") as _file:
                for _name, _value in sorted(_json.load(_file).items()):
                    if isinstance(_value, (int, float)) and not isinstance(_value, bool):
                        _metrics.log_metric(_name, _value)
                    else:
                        print("cellpipe: metric " + _name + " is not a number; not logged")
$publish    finally:
        _shutil.rmtree(_work, ignore_errors=True)
    if _code != 0:
        _why = "its code raised" if _code == 1 else "cellpipe or its surroundings failed"
        raise RuntimeError("cellpipe step " + repr(_step) + " failed (exit code "
                           + str(_code) + ": " + _why + "); see the log above")
''')

_MODULE_HEAD = f'''\
"""Generated by cellpipe.targets.kfp.compile: one component function per step."""
from typing import Optional

from kfp.dsl import {", ".join(sorted({"Dataset", "Input", "Metrics", "Output", *ARTIFACT_TYPES}))}

'''


def compile_kfp(
    spec: PipelineSpec,
    images: Mapping[str, str],
    *,
    caching: bool | None = None,
    settings: ClusterSettings | None = None,
) -> str:
    """Compile ``spec`` to a Kubeflow Pipelines v2 pipeline (IR YAML) with the kfp SDK.

    Args:
        spec: The PipelineSpec (``cellpipe.api.compile_spec``).
        images: Step name → image reference; every image holds cellpipe and kfp.
        caching: ``False`` turns KFP's caching off for every step; ``True`` leaves it on
            except for steps annotated ``cache:off``; ``None`` follows the notebook's
            ``cellpipe.cluster.kfp.caching`` (on when absent).
        settings: The cluster settings; ``None`` reads them from the spec.

    Returns:
        The IR YAML text, byte-identical for the same inputs.

    Raises:
        CellpipeError: A step has no image, a resource annotation is malformed, or two
            steps' names become the same KFP task name.
        MissingDependencyError: ``kfp`` or ``kfp-kubernetes`` is not installed.
    """
    try:
        from kfp import compiler, dsl
        from kfp import kubernetes as _kubernetes  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError.for_extra(
            exc.name or "kfp", "kfp", "compiling for Kubeflow Pipelines") from None
    settings = settings if settings is not None else cluster_settings(spec)
    if caching is None:
        caching = settings.kfp_caching
    missing = [s.name for s in spec.steps if s.name not in images]
    if missing:
        raise CellpipeError(f"no image for step(s) {', '.join(missing)}", step=missing[0],
                            hint="build the step images first (cellpipe build)")
    names = _function_names(spec)
    with (tempfile.TemporaryDirectory(prefix="cellpipe-kfp-") as directory,
          _generated_functions(spec, names, Path(directory), settings.storage,
                               settings.tracking is not None) as functions):
        components = {
            step.name: dsl.component(
                functions[step.name], base_image=images[step.name],
                packages_to_install=[], install_kfp_package=False)
            for step in spec.steps
        }
        pipeline = dsl.pipeline(
            name=spec.pipeline.name,
            description=spec.pipeline.description
            or f"cellpipe pipeline of notebook {spec.notebook.name}",
        )(_pipeline_function(spec, components, caching, settings))
        package = Path(directory) / "pipeline.yaml"
        with _default_yaml_strings():
            compiler.Compiler().compile(pipeline, str(package))
        return package.read_text(encoding="utf-8")


@contextlib.contextmanager
def _default_yaml_strings() -> Iterator[None]:
    """PyYAML's own string style while kfp writes the IR.

    Importing hera (the Argo target) registers a process-wide representer that writes
    multi-line strings as ``|`` blocks; without this, the IR's bytes would depend on
    whether hera happened to be imported first.
    """
    import yaml

    saved = yaml.Dumper.__dict__.get("yaml_representers")
    yaml.Dumper.yaml_representers = {**yaml.Dumper.yaml_representers,
                                     str: yaml.representer.SafeRepresenter.represent_str}
    try:
        yield
    finally:
        if saved is None:
            del yaml.Dumper.yaml_representers
        else:
            yaml.Dumper.yaml_representers = saved


def _function_names(spec: PipelineSpec) -> dict[str, str]:
    """Step name → component function name; kfp names the task after it (``_`` → ``-``)."""
    names: dict[str, str] = {}
    tasks: dict[str, str] = {}
    for step in spec.steps:
        function = re.sub(r"\W", "_", step.name)
        if not function.isidentifier() or keyword.iskeyword(function):
            function = f"step_{function}"
        task = re.sub(r"[^a-z0-9]+", "-", function.lower()).strip("-")
        if task in tasks:
            raise CellpipeError(
                f"steps {tasks[task]!r} and {step.name!r} both become the KFP task {task!r}",
                step=step.name, hint="rename one of the steps")
        names[step.name], tasks[task] = function, step.name
    return names


def _writes_data(spec: PipelineSpec, name: str) -> bool:
    return any(name in s.producers for s in spec.steps) or any(
        s.name == name and (s.writes or s.mutates) for s in spec.steps)


def _io_names(spec: PipelineSpec, step: StepSpec) -> dict[str, str]:
    """Names of the step's artifact inputs and outputs, clear of its parameter names."""
    taken = set(step.parameters)
    names: dict[str, str] = {}

    def unique(key: str, base: str) -> None:
        while base in taken:
            base += "_"
        taken.add(base)
        names[key] = base

    for producer in step.producers:
        unique(producer, re.sub(r"\W", "_", producer) + "_data")
    if _writes_data(spec, step.name):
        unique(":data", "data")
    if step.metrics:
        unique(":metrics", "metrics")
    unique(":run", "cellpipe_run")  # the run's id, for a --storage store (else unused)
    for output in ui_outputs(step):
        unique(output.key, output.name)
    return names


# A tracked pipeline's steps get the pipeline job's id (the ``:run`` argument, shared with
# a store's publishing): it groups them under one MLflow run (cellpipe.tracking.step). KFP
# fills placeholders in arguments, not in environment values.
_TRACKING_CODE = """
    if $run_argument:
        _os.environ["CELLPIPE_TRACKING_RUN"] = $run_argument"""


def _component_source(spec: PipelineSpec, step: StepSpec, function: str,
                      storage: str | None = None, tracked: bool = False) -> str:
    declared = {p.name: p for p in spec.parameters}
    params = [declared[name] for name in step.parameters]
    io = _io_names(spec, step)
    signature = [f"{p.name}: {_ANNOTATIONS[p.type]}" for p in params
                 if p.type != "none"]
    signature += [f"{io[producer]}: Input[Dataset]" for producer in step.producers]
    signature += [f"{io[':data']}: Output[Dataset]"] if ":data" in io else []
    signature += [f"{io[':metrics']}: Output[Metrics]"] if ":metrics" in io else []
    signature += [f"{io[o.key]}: Output[{o.kind}]" for o in ui_outputs(step)]
    signature += [f"{io[':run']}: str"] if storage or tracked else []
    signature += [f"{p.name}: {_ANNOTATIONS['none']}" for p in params if p.type == "none"]
    slice_json = json.dumps(spec.slice(step.name).to_dict(), sort_keys=True,
                            separators=(",", ":"))
    return _COMPONENT.substitute(
        function=function,
        signature=", ".join(signature),
        step_repr=repr(step.name),
        missing_repr=repr(missing_runtime_message()),
        spec_repr=repr(slice_json),
        kinds_repr=repr({p.name: p.type for p in params}),
        defaults_repr=repr({p.name: p.default_copy for p in params
                            if p.type in ("list", "dict")}),
        values=", ".join(f"{p.name!r}: {p.name}" for p in params),
        inputs=", ".join(f"{producer!r}: {io[producer]}.path" for producer in step.producers),
        metrics=io.get(":metrics", "None"),
        store=f"{io[':data']}.path" if ":data" in io else '_os.path.join(_work, "store")',
        # files a step writes or reads from other steps travel in its Dataset
        carry=' + ["--carry-files"]' if step.files else "",
        metrics_file=repr(OUTPUT_METRICS),
        publish=publish_code(step, io),
        # with an object store, the step also leaves its values, result and report under
        # STORAGE/<run id>, where ClusterRun reads them back
        publish_store=(f' + ["--publish", {storage.rstrip("/") + "/"!r} + {io[":run"]}]'
                       if storage else ""),
        tracking=(string.Template(_TRACKING_CODE).substitute(run_argument=io[":run"])
                  if tracked else ""),
    )


@contextlib.contextmanager
def _generated_functions(
    spec: PipelineSpec, names: Mapping[str, str], directory: Path,
    storage: str | None = None, tracked: bool = False,
) -> Iterator[dict[str, Callable[..., Any]]]:
    """Write the steps' component functions to a module in ``directory`` and import it.

    kfp reads a lightweight component's code with ``inspect.getsource``, so the functions
    must come from a real source file (its path does not reach the IR). The module is
    forgotten again when the compilation is done.
    """
    source = _MODULE_HEAD + "\n".join(
        "\n" + _component_source(spec, step, names[step.name], storage, tracked)
        for step in spec.steps)
    path = directory / "cellpipe_kfp_components.py"
    path.write_text(source, encoding="utf-8")
    module_name = f"_cellpipe_kfp_components_{uuid.uuid4().hex}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module  # inspect finds a function's module by its name
    try:
        module_spec.loader.exec_module(module)
        yield {step: getattr(module, function) for step, function in names.items()}
    finally:
        del sys.modules[module_name]
        linecache.checkcache(str(path))


def _pipeline_function(
    spec: PipelineSpec,
    components: Mapping[str, Any],
    caching: bool | None,
    settings: ClusterSettings,
) -> Callable[..., None]:
    """The pipeline function: its signature is the notebook's parameters with defaults.

    kfp reads a pipeline function's signature (not its source) and calls it with one
    channel per parameter, so a closure with a ``__signature__`` serves.
    """
    parameters = spec.parameters
    outputs = {s.name: _io_names(spec, s).get(":data") for s in spec.steps}

    def pipeline(*args: Any) -> None:
        channels = {p.name: arg for p, arg in zip(parameters, args, strict=True)}
        volume = _create_volume(spec, settings)
        tasks: dict[str, Any] = {}
        for step in spec.steps:
            io = _io_names(spec, step)
            arguments = {name: channels[name] for name in step.parameters}
            arguments.update({io[producer]: tasks[producer].outputs[outputs[producer]]
                              for producer in step.producers})
            if settings.storage or settings.tracking is not None:
                from kfp import dsl

                arguments[io[":run"]] = dsl.PIPELINE_JOB_ID_PLACEHOLDER
            task = components[step.name](**arguments)
            for upstream in step.upstream:
                if upstream not in step.producers:
                    task.after(tasks[upstream])
            _configure(task, step, caching, settings, volume)
            _track(task, spec, settings)
            tasks[step.name] = task
        if volume is not None:
            from kfp import kubernetes

            delete = kubernetes.DeletePVC(pvc_name=volume.outputs["name"])
            delete.after(*tasks.values()).set_caching_options(False)

    pipeline.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        inspect.Parameter(p.name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                          default=p.default_copy, annotation=_PYTHON_TYPES[p.type])
        for p in parameters
    ])
    return pipeline


def _create_volume(spec: PipelineSpec, settings: ClusterSettings) -> Any:
    """A PVC for the run when the notebook's cluster metadata asks for a ``volume``."""
    if "volume" not in (spec.pipeline.cluster or {}):
        return None
    from kfp import kubernetes

    options: dict[str, Any] = {"pvc_name_suffix": "-cellpipe",
                               "access_modes": [settings.volume_access_mode],
                               "size": settings.volume_size}
    if settings.volume_storage_class:
        options["storage_class_name"] = settings.volume_storage_class
    # never cached: a cached result would name the PVC an earlier run created and deleted
    return kubernetes.CreatePVC(**options).set_caching_options(False)


def _track(task: Any, spec: PipelineSpec, settings: ClusterSettings) -> None:
    """Where a tracked pipeline's step logs: URI, experiment, step names, credentials.

    The credentials by Secret reference; the job id comes as an argument
    (the ``:run`` argument).
    """
    if settings.tracking is None:
        return
    from kfp import kubernetes

    from cellpipe.tracking.step import ENV_STEPS

    for name, value in settings.tracking_env():
        task.set_env_variable(name, value)
    task.set_env_variable(ENV_STEPS, ",".join(spec.step_names))
    secret = settings.tracking.secret
    if secret is not None:
        kubernetes.use_secret_as_env(task, secret_name=secret.name,
                                     secret_key_to_env={key: env for env, key in secret.keys})


def _configure(
    task: Any, step: StepSpec, caching: bool | None, settings: ClusterSettings,
    volume: Any,
) -> None:
    """Retries, resources, timeout, caching and cluster settings of one step's task."""
    from kfp import kubernetes

    name, options = step.name, step.settings
    task.set_caching_options(enable_caching=caching is not False and options.cacheable)
    if options.retries:
        task.set_retry(num_retries=int(options.retries))
    try:
        if options.cpu is not None:
            task.set_cpu_limit(check_quantity(options.cpu, kind="cpu", step=name,
                                              annotation=f"cpu:{options.cpu}"))
        if options.memory is not None:
            task.set_memory_limit(check_quantity(options.memory, kind="memory", step=name,
                                                 annotation=f"memory:{options.memory}"))
    except ValueError as exc:  # kfp's own grammar is narrower than Kubernetes'
        raise CellpipeError(f"Kubeflow Pipelines cannot take this resource: {exc}", step=name,
                            hint="use whole numbers with a suffix, like memory:1536Mi or "
                                 "cpu:500m") from None
    if options.gpu:
        task.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(int(options.gpu))
    if options.timeout:
        kubernetes.set_timeout(task, int(options.timeout))
    for ref in settings.secrets_for(name):
        kubernetes.use_secret_as_env(task, secret_name=ref.secret,
                                     secret_key_to_env={ref.key: ref.env})
    if settings.storage is not None:
        secret = settings.storage_secret
        assert secret is not None, "cluster_settings requires it with storage"
        kubernetes.use_secret_as_env(task, secret_name=secret.secret, secret_key_to_env={
            secret.access_key: "AWS_ACCESS_KEY_ID", secret.secret_key: "AWS_SECRET_ACCESS_KEY"})
        if settings.storage_endpoint:
            task.set_env_variable("AWS_ENDPOINT_URL", settings.storage_endpoint)
    for key, value in sorted(settings.node_selector_for(name).items()):
        kubernetes.add_node_selector(task, label_key=key, label_value=value)
    for toleration in settings.tolerations_for(name):
        kubernetes.add_toleration(task, key=toleration.key, operator=toleration.operator,
                                  value=toleration.value, effect=toleration.effect,
                                  toleration_seconds=toleration.toleration_seconds)
    for key, value in settings.labels:
        kubernetes.add_pod_label(task, label_key=key, label_value=value)
    for key, value in settings.annotations:
        kubernetes.add_pod_annotation(task, annotation_key=key, annotation_value=value)
    if volume is not None:
        kubernetes.mount_pvc(task, pvc_name=volume.outputs["name"], mount_path=VOLUME_PATH)
        task.set_env_variable("CELLPIPE_VOLUME", VOLUME_PATH)
