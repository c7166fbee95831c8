/**
 * The Active cell section: the annotations of the active cell (step, after, role,
 * settings, cache) as a form that writes the cell's tags.
 *
 * The form is built once per cell and patched afterwards: a refresh or a poll updates
 * what is around the fields, never a field the user is in or has typed in.
 */
import type { Cell } from '@jupyterlab/cells';

import { updateBadges } from '../badges';
import { h } from '../dom';
import {
  clearEdits,
  control,
  fieldValue,
  patchAttribute,
  patchChecked,
  patchText,
  patchValue,
  replaceForm,
  trackEdits
} from '../form';
import type { PanelState } from '../state';
import { Annotation, SETTING_KEYS, SettingKey, emptyAnnotation, headerStep, parseTags, toTags, validate } from '../tags';
import { Component } from './component';

const SETTING_HELP: Record<SettingKey, [string, string]> = {
  gpu: ['1', 'whole number of GPUs'],
  cpu: ['2 or 500m', 'CPU request'],
  memory: ['2Gi', 'memory request (Kubernetes quantity)'],
  retries: ['2', 'retries on failure'],
  timeout: ['600', 'seconds (30m and 2h accepted)'],
  image: ['registry.local/team/train:1.0', 'container image of the step'],
  inputs: ['data/*.csv,config.yaml', 'files it reads that cellpipe cannot see (for the cache)'],
  model: ['clf', 'variables that hold models: model artifacts on Kubeflow Pipelines and Argo']
};
const TEXT_FIELDS = ['step', 'after', ...SETTING_KEYS] as const;
const ROLES = [
  ['', 'step code (no role)'],
  ['parameters', 'parameters'],
  ['metrics', 'metrics'],
  ['skip', 'skip (not in the pipeline)']
];

function tagsOf(cell: Cell): string[] {
  const raw = cell.model.getMetadata('tags');
  return Array.isArray(raw) ? raw.filter((t): t is string => typeof t === 'string') : [];
}

export class EditorComponent extends Component {
  protected select = (s: Readonly<PanelState>) => [
    s.notebook,
    s.activeCell?.cell,
    s.activeCell?.index,
    s.cellsVersion,
    s.analysis?.steps,
    s.fieldProblems
  ];
  private form: HTMLFormElement | null = null;
  private formKey: string | null = null;
  private other: string[] = []; // the cell's tags that are not cellpipe's, kept by Apply

  render(s: Readonly<PanelState>): void {
    const active = s.activeCell;
    if (!active) {
      this.showMessage('No active cell.');
      return;
    }
    const { cell, index } = active;
    if (cell.model.type !== 'code') {
      this.showMessage(`Cell ${index + 1} is a ${cell.model.type} cell: only code cells are steps.`);
      return;
    }
    const tags = tagsOf(cell);
    const { annotation, other } = parseTags(tags);
    this.other = other;
    const hasHeader = headerStep(cell.model.sharedModel.getSource()) !== null;
    const key = `${cell.model.id}|${hasHeader}`;
    if (!this.form || !this.form.isConnected || key !== this.formKey) {
      const sameCell = this.formKey !== null && this.formKey.split('|')[0] === cell.model.id;
      const next = this.build(hasHeader);
      replaceForm(sameCell ? this.form : null, next, this.body); // another cell: edits are dropped
      this.form = next;
      this.formKey = key;
    }
    const owner = s.analysis?.steps.find(step => step.cells.some(c => c.index === index));
    this.patch(this.form, annotation, s.fieldProblems);
    patchAttribute(this.form, 'aria-label', `annotations of cell ${index + 1}`);
    patchText(
      this.form.querySelector('.cp-cell-info'),
      `Cell ${index + 1}` + (owner ? ` — in step ${owner.name}` : annotation.role ? ` — ${annotation.role}` : '')
    );
    patchText(this.form.querySelector('.cp-tags'), tags.length ? `tags: ${tags.join('  ')}` : 'no tags');
  }

  private showMessage(text: string): void {
    this.form = null;
    this.formKey = null;
    this.body.replaceChildren(h('p', { className: 'cp-empty' }, text));
  }

  private build(hasHeader: boolean): HTMLFormElement {
    const field = (key: string, label: string, placeholder: string, help: string): HTMLElement =>
      h(
        'div',
        { className: 'cp-field' },
        h('label', { for: `cp-field-${key}` }, label),
        h('input', {
          id: `cp-field-${key}`,
          name: key,
          className: 'jp-mod-styled cp-input',
          type: 'text',
          placeholder,
          title: help,
          'aria-label': label,
          spellcheck: 'false',
          autocomplete: 'off'
        })
      );
    const form = h(
      'form',
      {
        className: 'cp-editor-form',
        onsubmit: (event: Event) => {
          event.preventDefault();
          this.apply(form);
        },
        onfocusout: () => window.setTimeout(() => this.form === form && this.render(this.store.get()))
      },
      h('p', { className: 'cp-cell-info' }),
      hasHeader
        ? h('p', { className: 'cp-note' }, 'This cell starts with a %%step header; edit the header for what it sets (tags add to it).')
        : null,
      field('step', 'Step name', 'e.g. train', 'step:NAME — this cell starts or continues step NAME'),
      field('after', 'After', 'upstream steps, space-separated', 'after:NAME — explicit upstream steps'),
      h(
        'div',
        { className: 'cp-field' },
        h('label', { for: 'cp-field-role' }, 'Role'),
        h(
          'select',
          { id: 'cp-field-role', name: 'role', className: 'jp-mod-styled', 'aria-label': 'role' },
          ...ROLES.map(([value, text]) => h('option', { value }, text))
        )
      ),
      h(
        'div',
        { className: 'cp-grid' },
        ...SETTING_KEYS.map(key => field(key, key, SETTING_HELP[key][0], `${key}:… — ${SETTING_HELP[key][1]}`))
      ),
      h(
        'div',
        { className: 'cp-field cp-checkbox' },
        h('input', { id: 'cp-field-cache', name: 'cache', type: 'checkbox' }),
        h('label', { for: 'cp-field-cache' }, 'never reuse a cached result (cache:off)')
      ),
      h(
        'div',
        { className: 'cp-form-actions' },
        h(
          'button',
          { type: 'submit', className: 'jp-Button jp-mod-accept cp-button cp-apply', 'aria-label': 'Apply the annotations to the cell' },
          'Apply'
        ),
        h(
          'button',
          {
            type: 'button',
            className: 'jp-Button cp-button cp-clear',
            'aria-label': 'Remove the cellpipe tags of the cell',
            onclick: () => this.writeTags(emptyAnnotation(), this.other)
          },
          'Clear'
        )
      ),
      h('div', { className: 'cp-tags' })
    );
    trackEdits(form);
    return form;
  }

  /** Show the cell's annotation in the fields that are not the user's, and the problems. */
  private patch(form: HTMLFormElement, annotation: Annotation, problems: Record<string, string>): void {
    patchValue(control(form, 'step'), annotation.step);
    patchValue(control(form, 'after'), annotation.after.join(' '));
    patchValue(control<HTMLSelectElement>(form, 'role'), annotation.role);
    for (const key of SETTING_KEYS) {
      patchValue(control(form, key), annotation.settings[key] ?? '');
    }
    patchChecked(control(form, 'cache'), annotation.cacheOff);
    for (const key of TEXT_FIELDS) {
      const input = control(form, key);
      if (!input) {
        continue;
      }
      const problem = problems[key];
      const noteId = `${input.id}-problem`;
      input.classList.toggle('cp-invalid', Boolean(problem));
      patchAttribute(input, 'aria-invalid', problem ? 'true' : null);
      patchAttribute(input, 'aria-describedby', problem ? noteId : null);
      let note = form.querySelector<HTMLElement>(`#${noteId}`);
      if (problem) {
        if (!note) {
          note = h('div', { className: 'cp-problem', id: noteId });
          input.after(note);
        }
        patchText(note, problem);
      } else {
        note?.remove();
      }
    }
  }

  private apply(form: HTMLFormElement): void {
    const annotation: Annotation = {
      step: fieldValue(form, 'step'),
      after: fieldValue(form, 'after').split(/[\s,]+/).filter(Boolean),
      role: fieldValue(form, 'role') as Annotation['role'],
      settings: {},
      cacheOff: control(form, 'cache')?.checked ?? false
    };
    for (const key of SETTING_KEYS) {
      const value = fieldValue(form, key);
      if (value) {
        annotation.settings[key] = value;
      }
    }
    const problems = validate(annotation);
    if (Object.keys(problems).length) {
      this.store.update({ fieldProblems: problems });
      this.actions.setStatus('Not applied: fix the marked fields.', 'error');
      form.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus();
      return;
    }
    this.writeTags(annotation, this.other);
  }

  private writeTags(annotation: Annotation, other: string[]): void {
    const { activeCell, notebook, cellsVersion } = this.store.get();
    if (!activeCell) {
      return;
    }
    const tags = toTags(annotation, other);
    if (tags.length) {
      activeCell.cell.model.setMetadata('tags', tags);
    } else {
      activeCell.cell.model.deleteMetadata('tags');
    }
    if (this.form) {
      clearEdits(this.form); // applied: the fields show the cell's tags again
    }
    if (notebook) {
      updateBadges(notebook);
    }
    this.actions.setStatus(`Cell ${activeCell.index + 1} tagged: ${tags.join(' ') || '(none)'}. Save to re-analyze.`, 'success');
    this.store.update({ fieldProblems: {}, cellsVersion: cellsVersion + 1 });
  }
}
