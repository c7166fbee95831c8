"""The host-side wheel cache and cellpipe's own runtime wheel."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest

import cellpipe
from cellpipe.engines.docker import wheels
from cellpipe.engines.docker.runtime_wheel import build_runtime_wheel
from cellpipe.engines.docker.wheels import CachedWheel, WheelCache
from cellpipe.errors import CellpipeError

PIN = {"iniconfig": "2.0.0"}
PIN_FILE = "iniconfig-2.0.0-py3-none-any.whl"


def _no_pip(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    raise AssertionError(f"pip must not run: {list(args)}")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class FakePip:
    """Stands in for ``python -m pip``: writes fake wheels, remembers its calls.

    ``sdist_only`` dists fail ``pip download`` (and make a batch holding them fail) but
    ``pip wheel`` builds them; ``absent`` dists fail everything.
    """

    def __init__(self, sdist_only: Sequence[str] = (), absent: Sequence[str] = ()) -> None:
        self.sdist_only = set(sdist_only)
        self.absent = set(absent)
        self.calls: list[list[str]] = []
        self.lock = threading.Lock()

    def __call__(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        args = list(args)
        with self.lock:
            self.calls.append(args)
        command = args[0]
        target = Path(args[args.index("-d" if command == "download" else "-w") + 1])
        reqs = [a for a in args if "==" in a or ">=" in a]
        names = {r.split("=")[0].split(">")[0] for r in reqs}
        bad = self.absent | (self.sdist_only if command == "download" else set())
        if names & bad:
            missing = sorted(names & bad)[0]
            return subprocess.CompletedProcess(
                args, 1, "", f"noise\nERROR: No matching distribution found for {missing}\n"
            )
        for req in reqs:
            name, _, version = req.partition("==")
            if not version:  # a loose ">=" requirement: pretend it resolved with a dependency
                name, version = name.split(">=")[0], "1.0"
                (target / "dep_of_loose-0.5-py3-none-any.whl").write_bytes(b"dep")
            (target / f"{name.replace('-', '_')}-{version}-py3-none-any.whl").write_bytes(
                f"{name} {version}".encode()
            )
        return subprocess.CompletedProcess(args, 0, "", "")


# -- the runtime wheel ----------------------------------------------------------------------


def test_runtime_wheel_is_deterministic(tmp_path: Path) -> None:
    first = build_runtime_wheel(tmp_path / "a")
    second = build_runtime_wheel(tmp_path / "b")
    assert first.name == second.name
    assert first.read_bytes() == second.read_bytes()
    assert re.fullmatch(
        re.escape(f"cellpipe-{cellpipe.__version__}") + r"\+g[0-9a-f]{10}-py3-none-any\.whl",
        first.name,
    )


def test_runtime_wheel_contents_and_record(tmp_path: Path) -> None:
    wheel = build_runtime_wheel(tmp_path)
    version = wheel.name.split("-")[1]
    dist_info = f"cellpipe-{version}.dist-info"
    package_dir = Path(cellpipe.__file__).resolve().parent
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        infos = archive.infolist()
        contents = {name: archive.read(name) for name in names}

    assert names[-3:] == [f"{dist_info}/METADATA", f"{dist_info}/WHEEL", f"{dist_info}/RECORD"]
    package_names = names[:-3]
    assert package_names == sorted(package_names)
    assert all(n.startswith(("cellpipe/", "cellpipe_kernel/")) for n in package_names)
    assert "cellpipe/runtime/execute.py" in names and "cellpipe/py.typed" in names
    # the magics' package too: `%load_ext cellpipe` is replayed as session setup in steps
    assert "cellpipe_kernel/magics.py" in names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    import cellpipe_kernel

    kernel_dir = Path(cellpipe_kernel.__file__).resolve().parent
    expected = sorted(
        f"{prefix}/" + p.relative_to(root).as_posix()
        for prefix, root in (("cellpipe", package_dir), ("cellpipe_kernel", kernel_dir))
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )
    assert package_names == expected
    assert (
        contents["cellpipe/runtime/execute.py"]
        == (package_dir / "runtime" / "execute.py").read_bytes()
    )
    for info in infos:
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.external_attr == 0o644 << 16
        assert info.compress_type == zipfile.ZIP_DEFLATED

    metadata = contents[f"{dist_info}/METADATA"].decode()
    assert metadata.splitlines() == [
        "Metadata-Version: 2.1",
        "Name: cellpipe",
        f"Version: {version}",
    ]
    assert contents[f"{dist_info}/WHEEL"].decode().splitlines() == [
        "Wheel-Version: 1.0",
        "Generator: cellpipe",
        "Root-Is-Purelib: true",
        "Tag: py3-none-any",
    ]

    rows = list(csv.reader(io.StringIO(contents[f"{dist_info}/RECORD"].decode())))
    assert [row[0] for row in rows] == names
    assert rows[-1] == [f"{dist_info}/RECORD", "", ""]
    for path, digest, size in rows[:-1]:
        raw = hashlib.sha256(contents[path]).digest()
        assert digest == "sha256=" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        assert int(size) == len(contents[path])


def test_runtime_wheel_is_not_rewritten(tmp_path: Path) -> None:
    wheel = build_runtime_wheel(tmp_path)
    wheel.write_bytes(b"left alone")
    assert build_runtime_wheel(tmp_path) == wheel
    assert wheel.read_bytes() == b"left alone"
    assert [p.name for p in tmp_path.iterdir()] == [wheel.name]  # no temp files left behind


def test_runtime_wheel_version_follows_the_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = build_runtime_wheel(tmp_path / "original")
    copy = tmp_path / "src" / "cellpipe"
    shutil.copytree(Path(cellpipe.__file__).resolve().parent, copy)
    (copy / "__pycache__").mkdir(exist_ok=True)
    (copy / "__pycache__" / "junk.cpython-311.pyc").write_bytes(b"junk")
    (copy / "stray.pyc").write_bytes(b"junk")
    monkeypatch.setattr(cellpipe, "__file__", str(copy / "__init__.py"))

    same = build_runtime_wheel(tmp_path / "same")  # bytecode does not count
    assert same.name == original.name
    assert same.read_bytes() == original.read_bytes()

    with (copy / "runtime" / "execute.py").open("a", encoding="utf-8") as handle:
        handle.write("\n# changed\n")
    changed = build_runtime_wheel(tmp_path / "changed")
    assert changed.name != original.name
    assert changed.read_bytes() != original.read_bytes()


def test_runtime_wheel_installs_and_imports(tmp_path: Path) -> None:
    wheel = build_runtime_wheel(tmp_path / "dist")
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--disable-pip-version-check",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    assert (target / "cellpipe" / "runtime" / "execute.py").is_file()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import cellpipe.runtime.execute; "
        "print(cellpipe.__file__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(target)],
        cwd=target,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    assert Path(done.stdout.strip()).resolve() == (target / "cellpipe" / "__init__.py").resolve()


# -- the wheel cache: the real pip ----------------------------------------------------------


def test_ensure_downloads_then_hits_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = WheelCache(tmp_path / "cache")
    [wheel] = cache.ensure(PIN)
    assert wheel.name == "iniconfig" and wheel.version == "2.0.0"
    assert wheel.path.name == PIN_FILE
    assert wheel.path == cache.root / "blobs" / wheel.sha256 / PIN_FILE
    assert _sha(wheel.path) == wheel.sha256
    with zipfile.ZipFile(wheel.path) as archive:
        assert archive.testzip() is None

    index = json.loads((cache.root / "index.json").read_text(encoding="utf-8"))
    assert index == {
        "iniconfig==2.0.0": {"sha256": wheel.sha256, "file": f"blobs/{wheel.sha256}/{PIN_FILE}"}
    }
    assert not [p for p in cache.root.iterdir() if p.name.startswith(".download-")]

    monkeypatch.setattr(wheels, "_run_pip", _no_pip)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    assert cache.ensure({"IniConfig": "2.0.0"}) == [wheel]
    assert WheelCache(tmp_path / "cache").ensure(PIN) == [wheel]  # another process, same root


def test_ensure_impossible_pin_names_it(tmp_path: Path) -> None:
    cache = WheelCache(tmp_path / "cache")
    with pytest.raises(CellpipeError) as caught:
        cache.ensure({"iniconfig": "999.0.0"})
    assert "iniconfig==999.0.0" in caught.value.message
    assert "pip said" in caught.value.message
    assert caught.value.hint is not None and "CELLPIPE_WHEELHOUSE" in caught.value.hint


def test_ensure_loose_downloads_with_dependencies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = WheelCache(tmp_path / "cache")
    got = cache.ensure({}, loose=["iniconfig==2.0.0"])
    assert [(w.name, w.version, w.path.name) for w in got] == [("iniconfig", "2.0.0", PIN_FILE)]
    key = "loose:" + hashlib.sha256(b"iniconfig==2.0.0").hexdigest()
    index = json.loads((cache.root / "index.json").read_text(encoding="utf-8"))
    assert index[key] == [{"sha256": got[0].sha256, "file": f"blobs/{got[0].sha256}/{PIN_FILE}"}]

    monkeypatch.setattr(wheels, "_run_pip", _no_pip)
    assert cache.ensure({}, loose=[" iniconfig==2.0.0"]) == got


# -- the wheel cache: the logic, with a fake pip --------------------------------------------


def test_batch_failure_falls_back_per_pin_then_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakePip(sdist_only=["builtonly"])
    monkeypatch.setattr(wheels, "_run_pip", fake)
    cache = WheelCache(tmp_path)
    got = cache.ensure({"Zeta-Pkg": "1.0", "builtonly": "0.3", "alpha": "2.0"})

    assert [(w.name, w.version) for w in got] == [
        ("alpha", "2.0"),
        ("builtonly", "0.3"),
        ("zeta-pkg", "1.0"),
    ]
    assert got[2].path.name == "zeta_pkg-1.0-py3-none-any.whl"
    commands = [(call[0], [a for a in call if "==" in a]) for call in fake.calls]
    assert commands == [
        ("download", ["alpha==2.0", "builtonly==0.3", "zeta-pkg==1.0"]),
        ("download", ["alpha==2.0"]),
        ("download", ["builtonly==0.3"]),
        ("wheel", ["builtonly==0.3"]),
        ("download", ["zeta-pkg==1.0"]),
    ]
    assert all("--no-deps" in call for call in fake.calls)
    assert all("--only-binary=:all:" in call for call in fake.calls if call[0] == "download")

    monkeypatch.setattr(wheels, "_run_pip", _no_pip)
    assert cache.ensure({"alpha": "2.0", "zeta_pkg": "1.0", "builtonly": "0.3"}) == got


def test_only_missing_pins_are_downloaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakePip()
    monkeypatch.setattr(wheels, "_run_pip", fake)
    cache = WheelCache(tmp_path)
    cache.ensure({"alpha": "1.0"})
    cache.ensure({"alpha": "1.0", "beta": "2.0"})
    assert [[a for a in c if "==" in a] for c in fake.calls] == [["alpha==1.0"], ["beta==2.0"]]
    index = json.loads((tmp_path / "index.json").read_text(encoding="utf-8"))
    assert sorted(index) == ["alpha==1.0", "beta==2.0"]


def test_a_deleted_blob_is_downloaded_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakePip()
    monkeypatch.setattr(wheels, "_run_pip", fake)
    cache = WheelCache(tmp_path)
    [wheel] = cache.ensure({"alpha": "1.0"})
    shutil.rmtree(wheel.path.parent)
    assert cache.ensure({"alpha": "1.0"}) == [wheel]
    assert len(fake.calls) == 2 and wheel.path.is_file()


def test_unobtainable_pin_fails_but_keeps_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakePip(absent=["ghost"])
    monkeypatch.setattr(wheels, "_run_pip", fake)
    cache = WheelCache(tmp_path)
    with pytest.raises(CellpipeError) as caught:
        cache.ensure({"ghost": "1.2.3", "alpha": "1.0"})
    message = caught.value.message
    assert "ghost==1.2.3" in message
    assert "No matching distribution found for ghost" in message
    assert "noise" in message  # the tail of pip's stderr is quoted
    monkeypatch.setattr(wheels, "_run_pip", _no_pip)
    assert [w.name for w in cache.ensure({"alpha": "1.0"})] == ["alpha"]


def test_loose_requirements_are_cached_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakePip()
    monkeypatch.setattr(wheels, "_run_pip", fake)
    cache = WheelCache(tmp_path)
    got = cache.ensure({"alpha": "1.0"}, loose=["xgboost>=1.7"])
    assert [(w.name, w.version) for w in got] == [
        ("alpha", "1.0"),
        ("dep-of-loose", "0.5"),
        ("xgboost", "1.0"),
    ]
    loose_call = fake.calls[-1]
    assert "--no-deps" not in loose_call and "xgboost>=1.7" in loose_call
    index = json.loads((tmp_path / "index.json").read_text(encoding="utf-8"))
    key = "loose:" + hashlib.sha256(b"xgboost>=1.7").hexdigest()
    assert len(index[key]) == 2

    monkeypatch.setattr(wheels, "_run_pip", _no_pip)
    assert cache.ensure({"alpha": "1.0"}, loose=["xgboost>=1.7"]) == got


def test_wheelhouse_is_passed_as_find_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakePip(sdist_only=["b"])
    monkeypatch.setattr(wheels, "_run_pip", fake)
    monkeypatch.setenv("CELLPIPE_WHEELHOUSE", str(tmp_path / "house"))
    WheelCache(tmp_path / "cache").ensure({"a": "1", "b": "2"}, loose=["c>=1"])
    assert len(fake.calls) == 5
    for call in fake.calls:
        assert call[call.index("--find-links") + 1] == str(tmp_path / "house")


def test_concurrent_updates_keep_every_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wheels, "_run_pip", FakePip())
    errors: list[BaseException] = []

    def fetch(number: int) -> None:
        try:
            WheelCache(tmp_path).ensure({f"pkg{number}": "1.0", "shared": "1.0"})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=fetch, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    index = json.loads((tmp_path / "index.json").read_text(encoding="utf-8"))
    assert sorted(index) == sorted([f"pkg{n}==1.0" for n in range(8)] + ["shared==1.0"])


@pytest.mark.parametrize(
    ("pins", "loose", "what"),
    [
        ({"--index-url=http://evil": "1.0"}, (), "not a valid distribution name"),
        ({"alpha": "not a version"}, (), "not a valid version"),
        ({"alpha": "1.0", "Alpha": "2.0"}, (), "pinned twice"),
        ({}, ["-r requirements.txt"], "not a requirement"),
    ],
)
def test_malformed_input_never_reaches_pip(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    pins: dict[str, str],
    loose: list[str],
    what: str,
) -> None:
    monkeypatch.setattr(wheels, "_run_pip", _no_pip)
    with pytest.raises(CellpipeError, match=what):
        WheelCache(tmp_path).ensure(pins, loose)


def test_missing_pip_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wheels, "_run_pip", _no_pip)
    monkeypatch.setattr(wheels.importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(CellpipeError, match="pip is not installed") as caught:
        WheelCache(tmp_path).ensure({"alpha": "1.0"})
    assert caught.value.hint is not None and "ensurepip" in caught.value.hint


def test_nothing_to_do_runs_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wheels, "_run_pip", _no_pip)
    assert WheelCache(tmp_path / "cache").ensure({}) == []


def test_default_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELLPIPE_WHEEL_CACHE", str(tmp_path / "env"))
    assert WheelCache().root == tmp_path / "env"
    monkeypatch.delenv("CELLPIPE_WHEEL_CACHE")
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: tmp_path / "home"))
    assert WheelCache().root == tmp_path / "home" / ".cache" / "cellpipe" / "wheels"
    assert WheelCache(tmp_path / "explicit").root == tmp_path / "explicit"


def test_cached_wheel_is_frozen(tmp_path: Path) -> None:
    wheel = CachedWheel("a", "1", tmp_path / "a-1-py3-none-any.whl", "0" * 64)
    with pytest.raises(AttributeError):
        wheel.name = "b"  # type: ignore[misc]
