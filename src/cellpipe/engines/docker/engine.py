"""The docker engine: each step in its own container, from its own image.

Runs, the cache, resume, retries, timeouts and cancellation are the shared scheduler's
(:mod:`cellpipe.engines.scheduler`); this module only builds the images first and starts a
container per step attempt. The run's directory is bind-mounted at ``/cellpipe/run``
(:data:`RUN_MOUNT`) and the paths in the runtime's arguments are rewritten to it (stores
of earlier runs are mounted read-only beside it); the step's code comes from the image
(its baked slice of the spec), which is what a cluster would run. Containers get no
network unless asked, and the cpu/memory/gpu limits of their step's annotations.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cellpipe.core.layout import RunLayout
from cellpipe.core.spec import PipelineSpec
from cellpipe.engines.docker.builder import ImageBuilder, StepImage
from cellpipe.engines.docker.client import connect, docker_module
from cellpipe.engines.docker.context import HOME, STEP_DIR, USER_ID, WORKDIR
from cellpipe.engines.scheduler import Engine, Launcher, RunOptions, StepLaunch
from cellpipe.errors import CellpipeError

RUNTIME_COMMAND = ("python", "-m", "cellpipe.runtime")
RUN_MOUNT = "/cellpipe/run"
INPUTS_MOUNT = "/cellpipe/inputs"
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|K|M|G|T|k|m)?$")
_FACTORS = {None: 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
            "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


class DockerEngine(Engine):
    """Builds (or reuses) each step's image, then runs each step in a container.

    Args:
        base_image: ``--base-image`` (see :class:`ImageBuilder`).
        registry: ``HOST:PORT/PREFIX``: images are pushed there before the run.
        requirements: Extra requirement lines that win over the found pins.
        network: Docker network mode of the step containers (``none`` by default).
        client: A docker client (default: from the environment).
        on_image: Called with each step's image as it is built or found.
    """

    name = "docker"

    @classmethod
    def from_options(cls, **options: Any) -> DockerEngine:
        """The engine for ``cellpipe run --engine docker``'s options."""
        from cellpipe.engines.docker.requirements import read_requirements_file

        requirements = options.get("requirements")
        return cls(base_image=options.get("base_image"), registry=options.get("registry"),
                   requirements=read_requirements_file(requirements) if requirements else [],
                   network=options.get("network") or "none", on_image=options.get("on_image"))

    def __init__(
        self,
        base_image: str | None = None,
        registry: str | None = None,
        requirements: Sequence[str] = (),
        network: str = "none",
        client: Any = None,
        on_image: Callable[[StepImage], None] | None = None,
    ) -> None:
        self.base_image = base_image
        self.registry = registry
        self.requirements = tuple(requirements)
        self.network = network
        self.client = client
        self.on_image = on_image

    def _launcher(self, spec: PipelineSpec, options: RunOptions) -> Launcher:
        if options.runtime != "ipython":
            raise CellpipeError(
                f"--runtime {options.runtime} is not available with --engine docker",
                hint="step images run the IPython runtime; drop --runtime or use --engine local",
            )
        client = connect(self.client)
        builder = ImageBuilder(
            notebook_dir=Path(options.notebook_dir).resolve(), base_image=self.base_image,
            registry=self.registry, requirements=self.requirements, client=client,
            on_image=self.on_image,
        )
        images = builder.build(spec)
        return _ContainerLauncher(client, spec, images, options, self.network)


def memory_bytes(quantity: str) -> int:
    """A Kubernetes memory quantity (``512Mi``, ``2Gi``, ``1G``) in bytes."""
    match = _QUANTITY.match(str(quantity).strip())
    if not match:
        raise CellpipeError(f"memory {quantity!r} is not a memory quantity",
                            hint="write it like 512Mi or 2Gi")
    return int(float(match.group(1)) * _FACTORS[match.group(2)])


def cpu_nanos(quantity: str | float) -> int:
    """CPUs (``2``, ``0.5``, ``500m``) in Docker's nano-CPUs."""
    text = str(quantity).strip()
    cpus = float(text[:-1]) / 1000 if text.endswith("m") else float(text)
    return int(cpus * 1e9)


class _ContainerLauncher:
    def __init__(self, client: Any, spec: PipelineSpec, images: Mapping[str, StepImage],
                 options: RunOptions, network: str) -> None:
        self.client = client
        self.images = images
        self.steps = {s.name: s for s in spec.steps}
        self.options = options
        self.network = network
        self.notebook_dir = Path(options.notebook_dir).resolve()
        self.as_root = os.getuid() == 0 if hasattr(os, "getuid") else False

    def fingerprint(self, step: str) -> str:
        # The image is the environment: its tag is a hash of everything in it.
        return "docker:" + self.images[step].ref.rsplit(":", 1)[1]

    def start(self, launch: StepLaunch) -> _ContainerHandle:
        step = self.steps[launch.step]
        run_dir = launch.run_dir.resolve()
        artifacts = RunLayout(run_dir).artifacts
        for directory in (artifacts, artifacts / launch.step, launch.step_dir):
            directory.mkdir(parents=True, exist_ok=True)
        # Host directories appear at fixed paths inside (a bind mount shows the directory
        # itself, so private parents on the host, like a 0700 home, don't get in the way).
        places = {str(run_dir): RUN_MOUNT}
        volumes: dict[str, dict[str, str]] = {str(run_dir): {"bind": RUN_MOUNT, "mode": "rw"}}
        for index, store in enumerate(launch.input_stores):
            if "://" not in store and Path(store).is_dir():
                path = str(Path(store).resolve())
                places[path] = f"{INPUTS_MOUNT}/{index}"
                volumes[path] = {"bind": places[path], "mode": "ro"}
        argv = [_translate(arg, places) for arg in launch.argv]
        argv[argv.index("--spec") + 1] = f"{STEP_DIR}/spec.json"  # the code the image holds
        if self.as_root:
            # The container runs as the image's non-root user: give it what it writes.
            for directory in (artifacts / launch.step, launch.step_dir):
                _chown_tree(directory, USER_ID)
            user = f"{USER_ID}:{USER_ID}"
            environment = {"HOME": HOME}
            can_enter = _others_can_enter(self.notebook_dir)
        else:
            user = f"{os.getuid()}:{os.getgid()}"
            environment = {"HOME": "/tmp"}
            can_enter = True
        if can_enter:  # files the notebook reads beside it, at the image's WORKDIR
            volumes[str(self.notebook_dir)] = {"bind": WORKDIR, "mode": "rw"}
        else:
            with launch.log.open("a", encoding="utf-8") as log:
                log.write(f"cellpipe: {self.notebook_dir} is private to root, so the step "
                          f"(user {USER_ID}) does not see the files beside the notebook; "
                          "make the directory readable (chmod o+rx) if it reads them\n")
        environment.update({"MPLCONFIGDIR": "/tmp/matplotlib", "IPYTHONDIR": "/tmp/ipython"})
        settings = step.settings
        limits: dict[str, Any] = {}
        if settings.cpu:
            limits["nano_cpus"] = cpu_nanos(settings.cpu)
        if settings.memory:
            limits["mem_limit"] = memory_bytes(settings.memory)
            limits["memswap_limit"] = limits["mem_limit"]
        if settings.gpu:
            docker = docker_module()
            limits["device_requests"] = [docker.types.DeviceRequest(
                count=int(settings.gpu), capabilities=[["gpu"]])]
        docker = docker_module()
        try:
            container = self.client.containers.run(
                self.images[launch.step].ref, command=[*RUNTIME_COMMAND, *argv], detach=True,
                user=user,
                network_mode=self.network, volumes=volumes, working_dir=WORKDIR,
                environment=environment, labels={"org.cellpipe.step": launch.step,
                                                 "org.cellpipe.run": run_dir.name},
                **limits,
            )
        except docker.errors.APIError as exc:
            raise CellpipeError(f"cannot start the container of step {launch.step!r}: "
                                f"{exc.explanation}", step=launch.step) from exc
        return _ContainerHandle(container, self.images[launch.step].ref, launch.log,
                                settings.memory)


class _ContainerHandle:
    """A step's container: its logs are copied to the step log until it ends.

    The sentinel is the read end of a pipe that a watcher thread closes when the
    container has ended and its logs are copied, so the scheduler waits on containers
    and processes alike.
    """

    def __init__(self, container: Any, ref: str, log: Path, memory: str | None) -> None:
        self.container = container
        self.ref = ref
        self.memory = memory
        self._read, self._write = os.pipe()
        self._exitcode: int | None = None
        self._failure: str | None = None
        self._killed = False
        self._thread = threading.Thread(target=self._follow, args=(log,), daemon=True,
                                        name=f"cellpipe-logs-{container.short_id}")
        self._thread.start()

    @property
    def sentinel(self) -> int:
        return self._read

    @property
    def exitcode(self) -> int | None:
        return self._exitcode

    @property
    def failure_message(self) -> str | None:
        return self._failure

    def _follow(self, log: Path) -> None:
        code: int | None = None
        try:
            with log.open("ab") as handle:
                for chunk in self.container.logs(stream=True, follow=True):
                    handle.write(chunk)
                    handle.flush()
            status = self.container.wait()
            code = int(status.get("StatusCode", 2))
            self.container.reload()
            if self.container.attrs.get("State", {}).get("OOMKilled"):
                self._failure = (f"out of memory: the container exceeded its limit of "
                                 f"{self.memory}; raise it with memory:SIZE")
        except Exception as exc:  # the daemon went away, the container vanished
            code = 2
            self._failure = f"lost the step's container: {exc}"
        finally:
            if self._killed and code in (137, None):
                code = -9
            self._exitcode = code
            with contextlib.suppress(Exception):
                self.container.remove(force=True)
            os.close(self._write)

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)
        if not self._thread.is_alive() and self._read >= 0:
            os.close(self._read)
            self._read = -1

    def stop(self) -> None:
        self._killed = True
        with contextlib.suppress(Exception):
            self.container.kill()
        self.join()

    def describe(self) -> dict[str, Any]:
        return {"container": self.container.short_id, "image": self.ref}


def _translate(argument: str, places: Mapping[str, str]) -> str:
    """A host path in the runtime's arguments, as the container sees it."""
    for host, inside in places.items():
        if argument == host or argument.startswith(host + os.sep):
            return inside + argument[len(host):]
        prefix, sep, rest = argument.partition("=")  # --input-store STEP=PATH
        if sep and (rest == host or rest.startswith(host + os.sep)):
            return f"{prefix}={inside}{rest[len(host):]}"
    return argument


def _others_can_enter(directory: Path) -> bool:
    try:
        mode = directory.stat().st_mode
    except OSError:
        return False
    return bool(mode & 0o005 == 0o005)


def _chown_tree(directory: Path, uid: int) -> None:
    for path in [directory, *directory.rglob("*")]:
        with contextlib.suppress(OSError):
            os.chown(path, uid, uid, follow_symlinks=False)
