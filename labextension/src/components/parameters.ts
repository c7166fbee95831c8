/**
 * The Parameters section: a typed form built from the notebook's parameters cell, to run
 * the pipeline with other values.
 *
 * Each field shows the notebook's value until the user changes it: numbers and text in a
 * text field, booleans as a checkbox, lists and dicts as JSON. What the user changed is
 * sent as text (a checkbox as a boolean) and converted by the server as the CLI converts
 * `-p NAME=VALUE`; a value it refuses is shown next to its field. "Run again with these
 * parameters" from a past run fills the form (state.parameterFill).
 */
import type { Parameter } from '../api';
import { h } from '../dom';
import { clearEdits, control, patchAttribute, patchChecked, patchText, patchValue, replaceForm, trackEdits } from '../form';
import type { PanelState } from '../state';
import { Component } from './component';

const KIND_HELP: Record<string, string> = {
  int: 'a whole number',
  float: 'a number',
  str: 'text',
  bool: 'true or false',
  list: 'a JSON list, e.g. [1, 2]',
  dict: 'a JSON object, e.g. {"a": 1}',
  none: 'any JSON value'
};

/** The text a field shows for a value of the parameter's type. */
export function parameterText(kind: string, value: unknown): string {
  if (kind === 'str') {
    return typeof value === 'string' ? value : JSON.stringify(value);
  }
  if (typeof value === 'number' && kind === 'float' && Number.isInteger(value)) {
    return value.toFixed(1); // 1.0, not 1: still a float when sent back as text
  }
  return typeof value === 'string' && kind !== 'none' ? value : JSON.stringify(value);
}

/** A problem the form can tell without the server (JSON that does not parse), or null. */
export function localProblem(kind: string, text: string): string | null {
  if (kind === 'list' || kind === 'dict' || kind === 'none') {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return `not valid JSON: ${KIND_HELP[kind]}`;
    }
    if (kind === 'list' && !Array.isArray(value)) {
      return `a list is expected: ${KIND_HELP.list}`;
    }
    if (kind === 'dict' && (value === null || typeof value !== 'object' || Array.isArray(value))) {
      return `a dict is expected: ${KIND_HELP.dict}`;
    }
  }
  return null;
}

export class ParametersComponent extends Component {
  protected select = (s: Readonly<PanelState>) => [s.notebook, s.analysis?.parameters, s.parameterProblems, s.parameterFill, s.busy];
  private form: HTMLFormElement | null = null;
  private formKey: string | null = null;
  private filled = 0;

  render(s: Readonly<PanelState>): void {
    const parameters = s.analysis?.parameters;
    if (!parameters || !parameters.length) {
      this.form = null;
      this.formKey = null;
      this.body.replaceChildren(
        h('p', { className: 'cp-empty' }, s.analysis ? 'No parameters: tag the cell that assigns them `parameters`.' : '')
      );
      return;
    }
    const key = parameters.map(p => `${p.name}:${p.type}`).join(',');
    if (!this.form || !this.form.isConnected || key !== this.formKey) {
      const next = this.build(parameters);
      replaceForm(this.form, next, this.body);
      this.form = next;
      this.formKey = key;
    }
    const form = this.form;
    if (s.parameterFill.version !== this.filled) {
      this.filled = s.parameterFill.version;
      clearEdits(form); // the run's values replace what was typed
      for (const p of parameters) {
        if (p.name in s.parameterFill.values) {
          this.show(form, p, s.parameterFill.values[p.name], true);
        }
      }
    }
    for (const p of parameters) {
      if (!(p.name in s.parameterFill.values) || s.parameterFill.version === 0) {
        this.show(form, p, p.default, false);
      }
      this.problem(form, p.name, s.parameterProblems[p.name] ?? null);
    }
    const run = form.querySelector<HTMLButtonElement>('.cp-run-parameters');
    if (run) {
      run.disabled = !s.notebook || s.busy;
    }
  }

  /** Show `value` in the parameter's field (forced: even over what the user typed). */
  private show(form: HTMLFormElement, p: Parameter, value: unknown, force: boolean): void {
    const field = control(form, p.name);
    if (!field) {
      return;
    }
    if (force) {
      field.blur();
    }
    if (p.type === 'bool') {
      patchChecked(field, Boolean(value));
      if (force) {
        field.checked = Boolean(value);
        field.dataset.edited = String(Boolean(value) !== Boolean(p.default));
      }
      return;
    }
    const text = parameterText(p.type, value);
    patchValue(field, text);
    if (force) {
      field.value = text;
      if (text !== parameterText(p.type, p.default)) {
        field.dataset.edited = 'true';
      }
    }
  }

  private problem(form: HTMLFormElement, name: string, problem: string | null): void {
    const input = control(form, name);
    if (!input) {
      return;
    }
    const noteId = `${input.id}-problem`;
    input.classList.toggle('cp-invalid', Boolean(problem));
    patchAttribute(input, 'aria-invalid', problem ? 'true' : null);
    patchAttribute(input, 'aria-describedby', problem ? noteId : `${input.id}-help`);
    let note = form.querySelector<HTMLElement>(`#${CSS.escape(noteId)}`);
    if (problem) {
      if (!note) {
        note = h('div', { className: 'cp-problem', id: noteId, role: 'alert' });
        input.closest('.cp-field')?.append(note);
      }
      patchText(note, problem);
    } else {
      note?.remove();
    }
  }

  private build(parameters: Parameter[]): HTMLFormElement {
    const fields = parameters.map(p => {
      const id = `cp-param-${p.name}`;
      const help = `${p.type}: ${KIND_HELP[p.type] ?? p.type} — the notebook has ${JSON.stringify(p.default)} (cell ${p.cell + 1}, line ${p.line})`;
      if (p.type === 'bool') {
        return h(
          'div',
          { className: 'cp-field cp-checkbox cp-param', 'data-parameter': p.name },
          h('input', { id, name: p.name, type: 'checkbox', 'aria-describedby': `${id}-help` }),
          h('label', { for: id }, p.name),
          h('span', { className: 'cp-param-help', id: `${id}-help` }, help)
        );
      }
      return h(
        'div',
        { className: 'cp-field cp-param', 'data-parameter': p.name },
        h('label', { for: id }, h('span', {}, p.name), ' ', h('span', { className: 'cp-param-kind' }, p.type)),
        h('input', {
          id,
          name: p.name,
          className: 'jp-mod-styled cp-input',
          type: 'text',
          inputmode: p.type === 'int' || p.type === 'float' ? 'decimal' : undefined,
          spellcheck: 'false',
          autocomplete: 'off',
          title: help,
          'aria-describedby': `${id}-help`
        }),
        h('span', { className: 'cp-param-help', id: `${id}-help` }, help)
      );
    });
    const form = h(
      'form',
      {
        className: 'cp-parameters-form',
        'aria-label': 'run with parameters',
        onsubmit: (event: Event) => {
          event.preventDefault();
          void this.run(form, parameters);
        },
        onfocusout: () => window.setTimeout(() => this.form === form && this.render(this.store.get()))
      },
      ...fields,
      h(
        'div',
        { className: 'cp-form-actions' },
        h(
          'button',
          {
            type: 'submit',
            className: 'jp-Button jp-mod-accept cp-button cp-run-parameters',
            'aria-label': 'Run the pipeline with these parameters'
          },
          'Run with these values'
        ),
        h(
          'button',
          {
            type: 'button',
            className: 'jp-Button cp-button cp-reset-parameters',
            'aria-label': "Put the notebook's values back in the form",
            onclick: () => {
              clearEdits(form);
              for (const p of parameters) {
                this.show(form, p, p.default, true);
                delete control(form, p.name)?.dataset.edited;
              }
              this.store.update({ parameterProblems: {} });
            }
          },
          'Reset'
        )
      )
    );
    trackEdits(form);
    return form;
  }

  /** Check what the form can check, then run with the values the user changed. */
  private async run(form: HTMLFormElement, parameters: Parameter[]): Promise<void> {
    const values: Record<string, unknown> = {};
    const problems: Record<string, string> = {};
    for (const p of parameters) {
      const field = control(form, p.name);
      if (!field || field.dataset.edited !== 'true') {
        continue;
      }
      if (p.type === 'bool') {
        values[p.name] = field.checked;
        continue;
      }
      const text = field.value.trim();
      const problem = localProblem(p.type, text);
      if (problem) {
        problems[p.name] = problem;
      } else {
        values[p.name] = p.type === 'str' ? field.value : text; // the server converts the text
      }
    }
    if (Object.keys(problems).length) {
      this.store.update({ parameterProblems: problems });
      this.actions.setStatus('Not started: fix the marked parameters.', 'error');
      form.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus();
      return;
    }
    await this.actions.startRun(values);
    const refused = form.querySelector<HTMLElement>('[aria-invalid="true"]');
    refused?.focus();
  }
}
