"""The ``%cellpipe params`` form: one widget per parameter of the parameters cell.

"Use these values" converts what was typed to each parameter's type (the same conversion
``cellpipe run -p`` uses) and stores the values in the user namespace under
``_cellpipe_params``, where ``%cellpipe run`` finds them; a value that does not convert is
shown next to its field and nothing is stored.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

from cellpipe import api
from cellpipe.errors import CellpipeError

PARAMS_VARIABLE = "_cellpipe_params"
_JSON_TYPES = ("list", "dict", "none")


class ParamsForm:
    """A widget form for a notebook's parameters; display it, or drive it from code.

    The fields start at the values already in ``_cellpipe_params`` (so the form shows what
    ``%cellpipe run`` will use), else at the notebook's defaults.

    Args:
        parameters: The notebook's parameters: :class:`cellpipe.api.Parameter` objects, or
            their JSON objects (``name``, ``type`` — ``int``, ``float``, ``str``, ``bool``,
            ``list``, ``dict`` or ``none`` — and ``default``).
        user_ns: The namespace :meth:`apply` stores the values in.

    Attributes:
        fields: The input widget of each parameter, by name.
        errors: The HTML widget beside each field that shows why its value is refused.
        status: The HTML widget under the buttons (confirmation or problem count).
        widget: The whole form (an ``ipywidgets.VBox``).
    """

    def __init__(
        self, parameters: Sequence[api.Parameter | Mapping[str, Any]],
        user_ns: MutableMapping[str, Any],
    ) -> None:
        import ipywidgets as widgets  # only when a form is made

        self._parameters = tuple(
            p if isinstance(p, api.Parameter) else api.Parameter.from_dict(p) for p in parameters)
        self._user_ns = user_ns
        current = user_ns.get(PARAMS_VARIABLE)
        chosen = current if isinstance(current, Mapping) else {}
        self.fields: dict[str, Any] = {}
        self.errors: dict[str, Any] = {}
        rows = []
        for parameter in self._parameters:
            name, kind = parameter.name, parameter.type
            field = _make_field(widgets, kind, name)
            self.fields[name] = field
            self._fill(name, self._start_value(name, chosen, parameter.default_copy))
            self.errors[name] = widgets.HTML()
            rows.append(widgets.HBox([field, widgets.Label(kind), self.errors[name]]))
        self.apply_button = widgets.Button(description="Use these values", button_style="primary")
        self.apply_button.on_click(lambda _button: self.apply())
        self.reset_button = widgets.Button(description="Notebook defaults")
        self.reset_button.on_click(lambda _button: self.reset())
        self.status = widgets.HTML()
        self.widget = widgets.VBox(
            [*rows, widgets.HBox([self.apply_button, self.reset_button]), self.status]
        )

    def values(self) -> dict[str, Any]:
        """Return the typed values of every field.

        Raises:
            CellpipeError: A field holds a value its parameter's type refuses.
        """
        values, problems = self._convert()
        if problems:
            raise CellpipeError(
                "; ".join(problems.values()), hint="fix the value(s) in the form"
            )
        return values

    def apply(self) -> bool:
        """Store the typed values in ``_cellpipe_params``, or show what is wrong.

        Returns:
            True when the values were stored; False when a field is refused (its message
            is shown beside it and ``_cellpipe_params`` is left as it was).
        """
        values, problems = self._convert()
        for name, label in self.errors.items():
            problem = problems.get(name)
            label.value = "" if problem is None else _red(problem)
        if problems:
            self.status.value = _red(
                f"{len(problems)} value(s) to fix; {PARAMS_VARIABLE} was not changed"
            )
            return False
        self._user_ns[PARAMS_VARIABLE] = values
        changed = [
            f"{name}={values[name]!r}"
            for name, default in ((p.name, p.default_copy) for p in self._parameters)
            if values[name] != default
        ]
        self.status.value = html.escape(
            f"Stored in {PARAMS_VARIABLE}: %cellpipe run uses these values ("
            + (", ".join(changed) if changed else "all as in the notebook")
            + ")."
        )
        return True

    def reset(self) -> None:
        """Put the notebook's defaults back in every field (nothing is stored)."""
        for parameter in self._parameters:
            self._fill(parameter.name, parameter.default_copy)
        for label in self.errors.values():
            label.value = ""
        self.status.value = ""

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _start_value(self, name: str, chosen: Mapping[str, Any], default: Any) -> Any:
        if name not in chosen:
            return default
        try:
            return api.convert_parameter(self._parameters, name, chosen[name])
        except CellpipeError:
            return default  # a stale or hand-written value: the form starts from the notebook

    def _fill(self, name: str, value: Any) -> None:
        kind = next(p.type for p in self._parameters if p.name == name)
        field = self.fields[name]
        if kind in _JSON_TYPES:
            field.value = json.dumps(value)
        elif kind == "float" and isinstance(value, int) and not isinstance(value, bool):
            field.value = float(value)
        else:
            field.value = value

    def _convert(self) -> tuple[dict[str, Any], dict[str, str]]:
        values: dict[str, Any] = {}
        problems: dict[str, str] = {}
        for name, field in self.fields.items():
            try:
                values[name] = api.convert_parameter(self._parameters, name, field.value)
            except CellpipeError as exc:
                problems[name] = exc.message + (f" ({exc.hint})" if exc.hint else "")
        return values, problems


def _make_field(widgets: Any, kind: str, name: str) -> Any:
    """The input widget for a parameter of type ``kind``."""
    style = {"description_width": "initial"}
    if kind == "int":
        return widgets.IntText(description=name, style=style)
    if kind == "float":
        return widgets.FloatText(description=name, style=style)
    if kind == "bool":
        return widgets.Checkbox(description=name, indent=False)
    if kind in ("list", "dict"):
        return widgets.Textarea(description=name, placeholder=f"a JSON {kind}", style=style)
    if kind == "none":
        return widgets.Text(description=name, placeholder="a JSON value", style=style)
    return widgets.Text(description=name, style=style)


def _red(text: str) -> str:
    return f"<span style='color:#c62828'>{html.escape(text)}</span>"
