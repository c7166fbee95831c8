"""Checks that make a manifest's mistakes clear before it is submitted.

Kubernetes rejects a bad name or quantity only when the object reaches the API server, with
a message about a field path the user never wrote. These checks run while compiling and
name the step and the annotation (``memory:2GB``) or metadata key the value came from.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from cellpipe.errors import CellpipeError

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
# Kubernetes' quantity grammar (apimachinery resource.Quantity): a signed decimal number
# and an optional binary suffix, decimal suffix or decimal exponent.
_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))(?P<suffix>[KMGTPE]i|[eE][+-]?\d+|[mkMGTPE])?"
)
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
# What people write instead: 2GB, 2gb, 512 MiB, 1g.
_SIZE_TYPO = re.compile(r"\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[kKmMgGtTpPeE])[iI]?[bB]?\s*")
_MEBIBYTE = 2**20
_SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "KEY", "CREDENTIAL")


def dns1123_name(name: str, *, max_length: int = 63) -> str:
    """Turn a step or pipeline name into a valid DNS-1123 label.

    Letters are lowercased and ``_``, ``.`` and spaces become ``-``. A name longer than
    ``max_length`` is shortened and given a suffix from its hash, so two long names that
    share a prefix stay distinct.

    Args:
        name: The step or pipeline name.
        max_length: The longest label to return (63 for a Kubernetes name).

    Returns:
        The label, e.g. ``train-logreg`` for ``train_logreg``.

    Raises:
        CellpipeError: The name has characters no label can hold, or none at all.
    """
    label = re.sub(r"[_.\s]", "-", name.strip().lower()).strip("-")
    hint = "use lowercase letters, digits, '-' and '_' in step and pipeline names"
    if not label:
        raise CellpipeError(f"{name!r} cannot become a Kubernetes name: it is empty", hint=hint)
    bad = sorted(set(re.sub(r"[-a-z0-9]", "", label)))
    if bad:
        raise CellpipeError(
            f"{name!r} cannot become a Kubernetes name: it contains {''.join(bad)!r}", hint=hint
        )
    if len(label) > max_length:
        digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
        label = f"{label[: max_length - len(digest) - 1].rstrip('-')}-{digest}"
    if not _DNS1123_LABEL.fullmatch(label):  # pragma: no cover - the steps above ensure it
        raise CellpipeError(f"{name!r} cannot become a Kubernetes name", hint=hint)
    return label


def check_quantity(
    value: Any,
    *,
    kind: Literal["cpu", "memory"],
    step: str | None,
    annotation: str,
) -> str:
    """Check that ``value`` is a Kubernetes quantity fit for ``kind`` and return it as text.

    CPU is returned in cores or millicores (``2``, ``500m``; ``0.5`` becomes ``500m``);
    memory (also used for volume sizes) as written (``512Mi``, ``2G``) or in bytes for a
    bare number. Beyond the grammar, it rejects what Kubernetes would accept but nobody
    means: ``memory:512m`` (milli-bytes), a memory size under 1Mi, CPU in ``Gi``.

    Args:
        value: The value as written in the tag, ``%%step`` option or notebook metadata.
        kind: ``cpu`` or ``memory``.
        step: The step the value belongs to, if any; errors name it.
        annotation: Where the value was written: a tag name such as ``memory`` (the error
            then reads ``memory:2GB``) or a metadata key.

    Returns:
        The canonical quantity text.

    Raises:
        CellpipeError: The value is not a quantity, not positive, or not fit for ``kind``.
    """
    shown = f"{annotation}:{value}" if annotation.isidentifier() else f"{annotation}: {value!r}"

    def fail(problem: str, hint: str) -> CellpipeError:
        return CellpipeError(f"{shown} {problem}", step=step, hint=hint)

    hint = _quantity_hint(value, kind)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise fail("is not a Kubernetes quantity", hint)
    text = repr(value) if isinstance(value, float) else str(value).strip()
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise fail("is not a Kubernetes quantity", hint)
    number, suffix = match["number"].lstrip("+"), match["suffix"] or ""
    try:
        amount = Decimal(number) * _multiplier(suffix)
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise fail("is not a Kubernetes quantity", hint) from None
    if amount <= 0:
        raise fail("must be more than zero", hint)
    if kind == "cpu":
        if suffix in _BINARY:
            raise fail("counts CPU in bytes; CPU is counted in cores", hint)
        millicores = amount * 1000
        if millicores != millicores.to_integral_value():
            raise fail("is finer than a millicore (1m)", hint)
        whole = int(millicores)
        return str(whole // 1000) if whole % 1000 == 0 else f"{whole}m"
    if suffix == "m":
        raise fail("is in milli-bytes ('m'), which no memory size means", hint)
    if amount < _MEBIBYTE:
        raise fail(f"is only {amount.normalize():f} bytes", hint)
    if suffix:
        return f"{number}{suffix}"
    if amount != amount.to_integral_value():
        raise fail("is a fraction of a byte", hint)
    return str(int(amount))


def _multiplier(suffix: str) -> Decimal:
    if suffix in _BINARY:
        return Decimal(1024) ** _BINARY[suffix]
    if suffix in _DECIMAL:
        return Decimal(10) ** _DECIMAL[suffix]
    return Decimal(10) ** int(suffix[1:])  # an exponent: e3, E-2


def _quantity_hint(value: Any, kind: str) -> str:
    if kind == "cpu":
        return "write cores or millicores, e.g. 2, 0.5 or 500m"
    typo = _SIZE_TYPO.fullmatch(str(value)) if isinstance(value, str) else None
    if typo is not None:
        unit = typo["unit"].upper()
        number = typo["number"]
        return f"write {number}{unit}i or {number}{'k' if unit == 'K' else unit}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"write a size with a unit, e.g. {value}Mi or {value}Gi"
    return "write a size such as 512Mi, 2Gi or 2G"


def looks_secret(name: str) -> bool:
    """Tell whether an environment variable's name suggests it holds a secret."""
    upper = name.upper()
    return any(word in upper for word in _SECRET_WORDS)


def check_no_secret_values(obj: Any, where: str) -> None:
    """Check that no environment variable with a secret-looking name has an inline value.

    Every ``env`` list found anywhere in ``obj`` (a manifest as a dict) is checked: an entry
    whose name contains TOKEN, SECRET, PASSWORD, KEY or CREDENTIAL must take its value from
    ``valueFrom.secretKeyRef``, never from ``value``.

    Args:
        obj: The manifest (dicts and lists, as ``to_dict`` returns them).
        where: What the manifest is, for the error, e.g. ``Argo Workflow 'tabular-tags-'``.

    Raises:
        CellpipeError: An entry breaks the rule; the error names the field path.
    """
    for path, entry in _env_entries(obj, ""):
        name = str(entry.get("name", ""))
        if not looks_secret(name):
            continue
        hint = "create a Secret and reference it (valueFrom.secretKeyRef)"
        if "value" in entry:
            raise CellpipeError(
                f"{where}: {path} ({name}) holds a secret value inline; "
                "secret values never go into manifests",
                hint=hint,
            )
        value_from = entry.get("valueFrom")
        if not isinstance(value_from, Mapping) or "secretKeyRef" not in value_from:
            raise CellpipeError(
                f"{where}: {path} ({name}) looks secret but does not come from a Secret",
                hint=hint,
            )


def _env_entries(obj: Any, path: str) -> list[tuple[str, Mapping[str, Any]]]:
    found: list[tuple[str, Mapping[str, Any]]] = []
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            child = f"{path}.{key}" if path else str(key)
            if key == "env" and isinstance(value, list):
                found.extend(
                    (f"{child}[{index}]", entry)
                    for index, entry in enumerate(value)
                    if isinstance(entry, Mapping)
                )
            else:
                found.extend(_env_entries(value, child))
    elif isinstance(obj, list):
        for index, item in enumerate(obj):
            found.extend(_env_entries(item, f"{path}[{index}]"))
    return found
