/**
 * The cellpipe side panel: the active notebook's steps, diagnostics and DAG, the active
 * cell's annotations, the pipeline settings, Run / Compile / Submit, and the run history.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import type { Cell } from '@jupyterlab/cells';
import type { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { Widget } from '@lumino/widgets';

import * as api from './api';
import { renderDag, stateOf } from './dag';
import { updateBadges } from './badges';
import {
  Annotation,
  SETTING_KEYS,
  SettingKey,
  emptyAnnotation,
  headerStep,
  parseTags,
  toTags,
  validate
} from './tags';

export const PANEL_ID = 'cellpipe-panel';
const FINISHED = new Set(['succeeded', 'failed', 'cancelled', 'interrupted', 'blocked']);
const POLL_WAIT = 20; // seconds a long poll may be held by the server

/**
 * Where the Target setting can send the pipeline, as the server's GET /cellpipe/plugins
 * says: engines run it from the server (Run), cluster targets take it elsewhere (Compile,
 * Submit). A server older than the plugins has only the built-in ones (FALLBACK_DESTINATIONS).
 */
interface Destinations {
  engines: string[];
  submitTargets: string[];
}
const FALLBACK_DESTINATIONS: Destinations = {
  engines: ['local', 'docker'],
  submitTargets: ['argo', 'kfp']
};

/** The notebook metadata the settings form edits (`metadata.cellpipe`). */
interface PipelineSettings {
  name?: string;
  target?: string;
  base_image?: string;
  registry?: string;
  host?: string;
  cluster?: Record<string, unknown>;
  [key: string]: unknown;
}

type Child = Node | string | null | undefined | false;

/** Create an element with attributes (`on*` functions become listeners) and children. */
function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, unknown> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) {
      continue;
    }
    if (key.startsWith('on') && typeof value === 'function') {
      node.addEventListener(key.slice(2).toLowerCase(), value as EventListener);
    } else if (key === 'className') {
      node.className = String(value);
    } else if (key === 'value' && 'value' in node) {
      (node as HTMLInputElement).value = String(value);
    } else if (value === true) {
      node.setAttribute(key, '');
    } else {
      node.setAttribute(key, String(value));
    }
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    node.append(child);
  }
  return node;
}

function section(id: string, title: string, open = true): { root: HTMLElement; body: HTMLElement } {
  const body = h('div', { className: 'cp-section-body', id: `${id}-body` });
  const root = h(
    'details',
    { className: `cp-section cp-${id}`, open },
    h('summary', { className: 'cp-section-title' }, title),
    body
  );
  return { root, body };
}

function formatValue(value: unknown): string {
  if (typeof value === 'number') {
    return Number.isInteger(value) ? String(value) : value.toPrecision(4).replace(/\.?0+$/, '');
  }
  if (value === undefined) {
    return '';
  }
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function formatTime(seconds: number | null): string {
  if (!seconds) {
    return '';
  }
  const date = new Date(seconds * 1000);
  return date.toLocaleString(undefined, {
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit'
  });
}

function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) {
    return '';
  }
  return seconds < 60 ? `${seconds.toFixed(1)} s` : `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

export class CellpipePanel extends Widget {
  private notebook: NotebookPanel | null = null;
  private analysis: api.Analysis | null = null;
  private analysisError: string | null = null;
  private analyzing = 0;
  private runs: api.RunSummary[] = [];
  private run: api.RunDetail | null = null; // the run whose states color the DAG
  private selectedRun: string | null = null;
  private selectedDetail: api.RunDetail | null = null;
  private polling: string | null = null;
  private busy = false;
  private fieldProblems: Record<string, string> = {};
  private destinations: Destinations = FALLBACK_DESTINATIONS; // until the server answers
  private readonly destinationsLoaded: Promise<Destinations>;

  private headerNode: HTMLElement;
  private statusNode: HTMLElement;
  private actionsNode: HTMLElement;
  private stepsBody: HTMLElement;
  private dagBody: HTMLElement;
  private editorBody: HTMLElement;
  private settingsBody: HTMLElement;
  private historyBody: HTMLElement;
  private detailBody: HTMLElement;

  constructor(private readonly tracker: INotebookTracker) {
    super();
    this.id = PANEL_ID;
    this.addClass('cp-panel');
    this.title.caption = 'cellpipe: pipeline of the notebook';
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', 'cellpipe pipeline');

    this.headerNode = h('div', { className: 'cp-header' });
    this.statusNode = h('div', { className: 'cp-status', role: 'status', 'aria-live': 'polite' });
    this.actionsNode = h('div', { className: 'cp-actions', role: 'toolbar', 'aria-label': 'pipeline actions' });
    const steps = section('steps', 'Steps');
    const dag = section('dag', 'Graph');
    const editor = section('editor', 'Active cell');
    const settings = section('settings', 'Pipeline settings', false);
    const history = section('history', 'Runs');
    const detail = section('detail', 'Run details');
    this.stepsBody = steps.body;
    this.dagBody = dag.body;
    this.editorBody = editor.body;
    this.settingsBody = settings.body;
    this.historyBody = history.body;
    this.detailBody = detail.body;
    this.node.append(
      this.headerNode,
      this.actionsNode,
      this.statusNode,
      steps.root,
      dag.root,
      editor.root,
      settings.root,
      history.root,
      detail.root
    );

    this.destinationsLoaded = loadDestinations().then(found => (this.destinations = found));
    void this.destinationsLoaded.then(() => this.renderSettings());
    tracker.currentChanged.connect(this.onNotebookChanged, this);
    tracker.activeCellChanged.connect(() => this.renderEditor(), this);
    this.onNotebookChanged();
  }

  /** The notebook the panel shows: the current one of the tracker. */
  get current(): NotebookPanel | null {
    return this.notebook;
  }

  private get path(): string | null {
    return this.notebook?.context.path ?? null;
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.tracker.currentChanged.disconnect(this.onNotebookChanged, this);
    super.dispose();
  }

  private onNotebookChanged(): void {
    const next = this.tracker.currentWidget;
    if (next === this.notebook) {
      return;
    }
    if (this.notebook && !this.notebook.isDisposed) {
      this.notebook.context.saveState.disconnect(this.onSaveState, this);
      this.notebook.context.model.metadataChanged.disconnect(this.renderSettings, this);
      this.notebook.context.model.contentChanged.disconnect(this.onContentChanged, this);
    }
    this.notebook = next;
    this.analysis = null;
    this.analysisError = null;
    this.runs = [];
    this.run = null;
    this.selectedRun = null;
    this.selectedDetail = null;
    this.fieldProblems = {};
    this.editedSinceAnalysis = false;
    if (next) {
      next.context.saveState.connect(this.onSaveState, this);
      next.disposed.connect(() => {
        if (this.notebook === next) {
          this.notebook = null;
          this.renderAll();
        }
      });
      void next.context.ready.then(() => {
        if (this.notebook === next) {
          next.context.model.metadataChanged.connect(this.renderSettings, this);
          next.context.model.contentChanged.connect(this.onContentChanged, this);
          this.renderSettings();
          this.renderEditor();
        }
      });
    }
    this.renderAll();
    void this.refresh();
  }

  private contentTimer = 0;
  private editedSinceAnalysis = false;

  /** A cell changed (its tags, say): show the active cell's annotations as they are now. */
  private onContentChanged(): void {
    this.editedSinceAnalysis = true;
    window.clearTimeout(this.contentTimer);
    this.contentTimer = window.setTimeout(() => {
      this.renderEditor();
      this.renderHeader();
    }, 200);
  }

  private onSaveState(_: unknown, state: string): void {
    if (state === 'completed') {
      void this.refresh();
    }
  }

  /** Analyze the saved notebook and load its runs. */
  async refresh(): Promise<void> {
    const path = this.path;
    if (!path) {
      return;
    }
    const ticket = ++this.analyzing;
    this.editedSinceAnalysis = false;
    this.renderHeader();
    try {
      const [analysis, runs] = await Promise.all([api.analyze(path), api.listRuns(path)]);
      if (ticket !== this.analyzing || path !== this.path) {
        return;
      }
      this.analysis = analysis;
      this.analysisError = null;
      this.runs = runs.runs;
      if (!this.polling && this.runs.length && (!this.run || this.run.id !== this.runs[0].id)) {
        // color the DAG by the latest run until a new one starts
        this.run = { ...this.runs[0], notebook: null, live: false, steps: {} };
        for (const [name, status] of Object.entries(this.runs[0].steps)) {
          this.run.steps[name] = { status };
        }
      }
    } catch (error) {
      if (ticket !== this.analyzing) {
        return;
      }
      this.analysisError = error instanceof api.ApiError ? error.describe() : String(error);
    } finally {
      if (ticket === this.analyzing) {
        this.analyzing = ticket; // settled
        this.renderAll();
        this.node.dataset.analyzed = String(ticket);
      }
    }
  }

  private renderAll(): void {
    this.renderHeader();
    this.renderActions();
    this.renderSteps();
    this.renderDag();
    this.renderEditor();
    this.renderSettings();
    this.renderHistory();
    this.renderDetail();
  }

  private setStatus(text: string, kind: 'info' | 'error' | 'success' = 'info'): void {
    this.statusNode.textContent = text;
    this.statusNode.dataset.kind = kind;
  }

  // ---- header and actions ----------------------------------------------------------

  private renderHeader(): void {
    const nb = this.notebook;
    this.headerNode.replaceChildren(
      h('h2', { className: 'cp-title' }, 'cellpipe'),
      h(
        'div',
        { className: 'cp-notebook' },
        nb ? nb.context.path : 'Open a notebook to see its pipeline.'
      )
    );
    if (nb) {
      const summary = this.analysis
        ? `${this.analysis.steps.length} steps, ${this.analysis.diagnostics.length} diagnostics` +
          (this.editedSinceAnalysis && nb.context.model.dirty
            ? ' — cells changed: save to re-analyze'
            : '')
        : this.analysisError ?? 'analyzing…';
      this.headerNode.append(
        h(
          'div',
          {
            className: `cp-summary ${this.analysisError ? 'cp-error' : ''}`,
            'data-ok': this.analysis ? String(this.analysis.ok) : undefined
          },
          summary
        )
      );
    }
  }

  private renderActions(): void {
    const disabled = !this.notebook || this.busy;
    const button = (label: string, title: string, onclick: () => void, extra = '') =>
      h(
        'button',
        {
          type: 'button',
          className: `jp-Button cp-button ${extra}`,
          'aria-label': title,
          title,
          disabled,
          onclick
        },
        label
      );
    this.actionsNode.replaceChildren(
      button('Run', 'Run the pipeline', () => void this.startRun(), 'jp-mod-accept cp-run'),
      button('Compile', 'Compile the pipeline', () => void this.compile(), 'cp-compile'),
      button('Submit', 'Submit the pipeline to the cluster', () => void this.submit(), 'cp-submit'),
      button('Refresh', 'Analyze the saved notebook again', () => void this.refresh(), 'cp-refresh')
    );
  }

  // ---- steps and diagnostics ----------------------------------------------------------

  private states(): Record<string, string> {
    const states: Record<string, string> = {};
    for (const [name, step] of Object.entries(this.run?.steps ?? {})) {
      if (step.status) {
        states[name] = step.status;
      }
    }
    return states;
  }

  private renderSteps(): void {
    const analysis = this.analysis;
    if (!analysis) {
      this.stepsBody.replaceChildren(h('p', { className: 'cp-empty' }, this.notebook ? '' : 'No notebook.'));
      return;
    }
    const states = this.states();
    const list = h('ol', { className: 'cp-steps', 'aria-label': 'steps in notebook order' });
    for (const step of analysis.steps) {
      const state = stateOf(states, step.name);
      const cells = cellRanges(step.cells.map(c => c.index + 1));
      const settings = Object.entries(step.settings)
        .map(([k, v]) => `${k}:${formatValue(v)}`)
        .join(' ');
      list.append(
        h(
          'li',
          { className: `cp-step cp-state-${state}`, 'data-step': step.name, 'data-state': state },
          h(
            'button',
            {
              type: 'button',
              className: 'cp-link cp-step-name',
              'aria-label': `step ${step.name}, ${state}: go to its first cell`,
              onclick: () => step.cells.length && this.goToCell(step.cells[0].index, null)
            },
            step.name
          ),
          h('span', { className: `cp-pill cp-state-${state}` }, state),
          h('span', { className: 'cp-step-cells' }, `${step.cells.length > 1 ? 'cells' : 'cell'} ${cells}`),
          settings ? h('span', { className: 'cp-step-settings' }, settings) : null
        )
      );
    }
    const children: Node[] = [list];
    if (analysis.diagnostics.length) {
      const diags = h('ul', { className: 'cp-diagnostics', 'aria-label': 'diagnostics' });
      for (const d of analysis.diagnostics) {
        const where =
          d.cell !== null ? `cell ${d.cell + 1}${d.line !== null ? `, line ${d.line}` : ''}` : '';
        diags.append(
          h(
            'li',
            { className: `cp-diagnostic cp-${d.severity}` },
            h(
              'button',
              {
                type: 'button',
                className: 'cp-link cp-diagnostic-button',
                disabled: d.cell === null,
                'aria-label': `${d.severity} ${d.code} at ${where || 'the notebook'}: ${d.message}`,
                onclick: () => d.cell !== null && this.goToCell(d.cell, d.line)
              },
              h('span', { className: 'cp-code' }, d.code),
              ' ',
              h('span', { className: 'cp-where' }, where),
              ' ',
              h('span', { className: 'cp-message' }, d.message)
            ),
            d.hint ? h('div', { className: 'cp-hint' }, `fix: ${d.hint}`) : null
          )
        );
      }
      children.push(h('h3', { className: 'cp-subtitle' }, 'Diagnostics'), diags);
    } else {
      children.push(h('p', { className: 'cp-ok' }, 'No diagnostics.'));
    }
    this.stepsBody.replaceChildren(...children);
  }

  /** Make cell `index` active, scroll to it and put the cursor on `line` (1-based). */
  goToCell(index: number, line: number | null): void {
    const nb = this.notebook;
    if (!nb || index < 0 || index >= nb.content.widgets.length) {
      return;
    }
    nb.content.activeCellIndex = index;
    const cell = nb.content.widgets[index];
    void nb.content.scrollToCell(cell, 'center').then(() => {
      if (line !== null && cell.editor) {
        const lines = cell.model.sharedModel.getSource().split('\n').length;
        const target = Math.min(Math.max(line - 1, 0), lines - 1);
        nb.content.mode = 'edit';
        cell.editor.setCursorPosition({ line: target, column: 0 });
        cell.editor.focus();
      }
    });
  }

  // ---- the DAG ---------------------------------------------------------------------

  private renderDag(): void {
    const analysis = this.analysis;
    if (!analysis || !analysis.steps.length) {
      this.dagBody.replaceChildren(h('p', { className: 'cp-empty' }, analysis ? 'No steps.' : ''));
      return;
    }
    const graph = renderDag(analysis.steps, analysis.edges, {
      states: this.states(),
      onSelect: step => {
        const info = analysis.steps.find(s => s.name === step);
        if (info?.cells.length) {
          this.goToCell(info.cells[0].index, null);
        }
      }
    });
    const caption = this.run
      ? `Colored by run ${this.run.id} (${this.run.status})`
      : 'No run yet: every step is pending.';
    const legend = h(
      'div',
      { className: 'cp-legend', 'aria-hidden': 'true' },
      ...['pending', 'running', 'succeeded', 'cached', 'failed', 'skipped'].map(s =>
        h('span', { className: `cp-pill cp-state-${s}` }, s)
      )
    );
    this.dagBody.replaceChildren(
      h('div', { className: 'cp-dag' }, graph),
      h('div', { className: 'cp-caption' }, caption),
      legend
    );
  }

  // ---- the active cell's annotations ------------------------------------------------

  private activeCell(): { cell: Cell; index: number } | null {
    const nb = this.notebook;
    if (!nb || !nb.content.activeCell || !nb.context.isReady) {
      return null;
    }
    return { cell: nb.content.activeCell, index: nb.content.activeCellIndex };
  }

  private renderEditor(): void {
    if (this.node.contains(document.activeElement) && this.editorBody.contains(document.activeElement)) {
      return; // the user is typing in the form: keep it as it is
    }
    this.renderEditorNow();
  }

  private renderEditorNow(): void {
    const active = this.activeCell();
    if (!active) {
      this.editorBody.replaceChildren(h('p', { className: 'cp-empty' }, 'No active cell.'));
      return;
    }
    const { cell, index } = active;
    if (cell.model.type !== 'code') {
      this.editorBody.replaceChildren(
        h('p', { className: 'cp-empty' }, `Cell ${index + 1} is a ${cell.model.type} cell: only code cells are steps.`)
      );
      return;
    }
    const rawTags = cell.model.getMetadata('tags');
    const tags: string[] = Array.isArray(rawTags) ? rawTags.filter(t => typeof t === 'string') : [];
    const { annotation, other } = parseTags(tags);
    const owner = this.analysis?.steps.find(s => s.cells.some(c => c.index === index));
    const header = headerStep(cell.model.sharedModel.getSource());
    const problems = this.fieldProblems;
    const field = (
      key: string,
      label: string,
      value: string,
      placeholder: string,
      help: string
    ): HTMLElement => {
      const id = `cp-field-${key}`;
      return h(
        'div',
        { className: 'cp-field' },
        h('label', { for: id }, label),
        h('input', {
          id,
          name: key,
          className: `jp-mod-styled cp-input ${problems[key] ? 'cp-invalid' : ''}`,
          type: 'text',
          value,
          placeholder,
          title: help,
          'aria-label': label,
          'aria-invalid': problems[key] ? 'true' : undefined,
          'aria-describedby': problems[key] ? `${id}-problem` : undefined,
          spellcheck: 'false',
          autocomplete: 'off'
        }),
        problems[key] ? h('div', { className: 'cp-problem', id: `${id}-problem` }, problems[key]) : null
      );
    };
    const roleSelect = h(
      'select',
      { id: 'cp-field-role', name: 'role', className: 'jp-mod-styled', 'aria-label': 'role' },
      ...[
        ['', 'step code (no role)'],
        ['parameters', 'parameters'],
        ['metrics', 'metrics'],
        ['skip', 'skip (not in the pipeline)']
      ].map(([value, text]) => h('option', { value, selected: annotation.role === value }, text))
    );
    const settingHelp: Record<SettingKey, [string, string]> = {
      gpu: ['1', 'whole number of GPUs'],
      cpu: ['2 or 500m', 'CPU request'],
      memory: ['2Gi', 'memory request (Kubernetes quantity)'],
      retries: ['2', 'retries on failure'],
      timeout: ['600', 'seconds (30m and 2h accepted)'],
      image: ['registry.local/team/train:1.0', 'container image of the step'],
      inputs: ['data/*.csv,config.yaml', 'files it reads that cellpipe cannot see (for the cache)']
    };
    const form = h(
      'form',
      {
        className: 'cp-editor-form',
        'aria-label': `annotations of cell ${index + 1}`,
        onsubmit: (event: Event) => {
          event.preventDefault();
          this.applyAnnotation(form, other);
        }
      },
      h(
        'p',
        { className: 'cp-cell-info' },
        `Cell ${index + 1}` +
          (owner ? ` — in step ${owner.name}` : annotation.role ? ` — ${annotation.role}` : '')
      ),
      header !== null
        ? h(
            'p',
            { className: 'cp-note' },
            'This cell starts with a %%step header; edit the header for what it sets (tags add to it).'
          )
        : null,
      field('step', 'Step name', annotation.step, 'e.g. train', 'step:NAME — this cell starts or continues step NAME'),
      field('after', 'After', annotation.after.join(' '), 'upstream steps, space-separated', 'after:NAME — explicit upstream steps'),
      h('div', { className: 'cp-field' }, h('label', { for: 'cp-field-role' }, 'Role'), roleSelect),
      h(
        'div',
        { className: 'cp-grid' },
        ...SETTING_KEYS.map(key =>
          field(key, key, annotation.settings[key] ?? '', settingHelp[key][0], `${key}:… — ${settingHelp[key][1]}`)
        )
      ),
      h(
        'div',
        { className: 'cp-field cp-checkbox' },
        h('input', { id: 'cp-field-cache', name: 'cache', type: 'checkbox', checked: annotation.cacheOff }),
        h('label', { for: 'cp-field-cache' }, 'never reuse a cached result (cache:off)')
      ),
      h(
        'div',
        { className: 'cp-form-actions' },
        h('button', { type: 'submit', className: 'jp-Button jp-mod-accept cp-button cp-apply', 'aria-label': 'Apply the annotations to the cell' }, 'Apply'),
        h(
          'button',
          {
            type: 'button',
            className: 'jp-Button cp-button cp-clear',
            'aria-label': 'Remove the cellpipe tags of the cell',
            onclick: () => this.writeTags(emptyAnnotation(), other)
          },
          'Clear'
        )
      ),
      h('div', { className: 'cp-tags' }, tags.length ? `tags: ${tags.join('  ')}` : 'no tags')
    );
    this.editorBody.replaceChildren(form);
  }

  private applyAnnotation(form: HTMLFormElement, other: string[]): void {
    const value = (name: string): string =>
      ((form.elements.namedItem(name) as HTMLInputElement | null)?.value ?? '').trim();
    const annotation: Annotation = {
      step: value('step'),
      after: value('after').split(/[\s,]+/).filter(Boolean),
      role: value('role') as Annotation['role'],
      settings: {},
      cacheOff: (form.elements.namedItem('cache') as HTMLInputElement | null)?.checked ?? false
    };
    for (const key of SETTING_KEYS) {
      const v = value(key);
      if (v) {
        annotation.settings[key] = v;
      }
    }
    this.fieldProblems = validate(annotation);
    if (Object.keys(this.fieldProblems).length) {
      this.setStatus('Not applied: fix the marked fields.', 'error');
      this.renderEditorNow();
      const first = this.editorBody.querySelector<HTMLElement>('[aria-invalid="true"]');
      first?.focus();
      return;
    }
    this.writeTags(annotation, other);
  }

  private writeTags(annotation: Annotation, other: string[]): void {
    const active = this.activeCell();
    if (!active) {
      return;
    }
    const tags = toTags(annotation, other);
    if (tags.length) {
      active.cell.model.setMetadata('tags', tags);
    } else {
      active.cell.model.deleteMetadata('tags');
    }
    this.fieldProblems = {};
    if (this.notebook) {
      updateBadges(this.notebook);
    }
    this.setStatus(`Cell ${active.index + 1} tagged: ${tags.join(' ') || '(none)'}. Save to re-analyze.`, 'success');
    this.renderEditorNow();
    this.renderHeader();
  }

  // ---- pipeline settings -----------------------------------------------------------

  private pipelineSettings(): PipelineSettings {
    const value = this.notebook?.context.isReady ? this.notebook.context.model.getMetadata('cellpipe') : null;
    return value && typeof value === 'object' ? { ...(value as PipelineSettings) } : {};
  }

  private renderSettings(): void {
    if (this.settingsBody.contains(document.activeElement)) {
      return;
    }
    if (!this.notebook) {
      this.settingsBody.replaceChildren();
      return;
    }
    const s = this.pipelineSettings();
    const cluster = (s.cluster ?? {}) as Record<string, unknown>;
    const defaultName = this.analysis?.pipeline?.name;
    const { engines, submitTargets } = this.destinations;
    const target = s.target ?? 'local';
    const option = (name: string, label = name) =>
      h('option', { value: name, selected: target === name }, label);
    const hostTargets = submitTargets.filter(name => name !== 'argo');
    const input = (name: string, label: string, value: unknown, placeholder = '') =>
      h(
        'div',
        { className: 'cp-field' },
        h('label', { for: `cp-setting-${name}` }, label),
        h('input', {
          id: `cp-setting-${name}`,
          name,
          type: 'text',
          className: 'jp-mod-styled cp-input',
          value: typeof value === 'string' ? value : '',
          placeholder,
          'aria-label': label,
          spellcheck: 'false',
          autocomplete: 'off'
        })
      );
    const form = h(
      'form',
      {
        className: 'cp-settings-form',
        'aria-label': 'pipeline settings',
        onsubmit: (event: Event) => {
          event.preventDefault();
          this.saveSettings(form);
        }
      },
      input('name', 'Pipeline name', s.name, typeof defaultName === 'string' ? defaultName : ''),
      h(
        'div',
        { className: 'cp-field' },
        h('label', { for: 'cp-setting-target' }, 'Target'),
        h(
          'select',
          { id: 'cp-setting-target', name: 'target', className: 'jp-mod-styled', 'aria-label': 'Target' },
          h('optgroup', { label: 'engines (Run)' }, ...engines.map(name => option(name))),
          h(
            'optgroup',
            { label: 'cluster targets (Compile, Submit)' },
            ...submitTargets.filter(name => !engines.includes(name)).map(name => option(name))
          ),
          // a name this server does not offer (a plugin not installed here) is kept, not
          // replaced by the first choice on the next save
          engines.includes(target) || submitTargets.includes(target)
            ? null
            : option(target, `${target} (not available on this server)`)
        )
      ),
      input('base_image', 'Base image', s.base_image, 'e.g. python:3.11-slim'),
      input('registry', `Registry (${submitTargets.join(', ')})`, s.registry, 'e.g. registry.local:5000/team'),
      input('namespace', `Namespace (${submitTargets.join(', ')})`, cluster.namespace, 'e.g. pipelines'),
      input(
        'host',
        hostTargets.length === 1 && hostTargets[0] === 'kfp' ? 'KFP host' : `Host (${hostTargets.join(', ')})`,
        s.host,
        'e.g. http://kfp.local:8888'
      ),
      h(
        'div',
        { className: 'cp-form-actions' },
        h('button', { type: 'submit', className: 'jp-Button jp-mod-accept cp-button cp-save-settings', 'aria-label': 'Save the pipeline settings into the notebook' }, 'Save settings')
      )
    );
    this.settingsBody.replaceChildren(form);
  }

  private saveSettings(form: HTMLFormElement): void {
    if (!this.notebook) {
      return;
    }
    const value = (name: string): string =>
      ((form.elements.namedItem(name) as HTMLInputElement | null)?.value ?? '').trim();
    const s = this.pipelineSettings();
    const cluster = { ...((s.cluster ?? {}) as Record<string, unknown>) };
    for (const key of ['name', 'target', 'base_image', 'registry', 'host']) {
      const v = value(key);
      if (v) {
        s[key] = v;
      } else {
        delete s[key];
      }
    }
    const namespace = value('namespace');
    if (namespace) {
      cluster.namespace = namespace;
    } else {
      delete cluster.namespace;
    }
    if (Object.keys(cluster).length) {
      s.cluster = cluster;
    } else {
      delete s.cluster;
    }
    (document.activeElement as HTMLElement | null)?.blur?.();
    this.notebook.context.model.setMetadata('cellpipe', s);
    this.setStatus('Pipeline settings saved in the notebook metadata (save the notebook to keep them).', 'success');
    this.renderSettings();
  }

  /** The compile / submit options the settings give. */
  private targetOptions(target: string): Record<string, unknown> {
    const s = this.pipelineSettings();
    const options: Record<string, unknown> = {};
    if (s.base_image) {
      options.base_image = s.base_image;
    }
    if (target !== 'spec') {
      // a cluster target: argo, kfp or a plugin's
      if (s.registry) {
        options.registry = s.registry;
      }
      const namespace = (s.cluster as Record<string, unknown> | undefined)?.namespace;
      if (typeof namespace === 'string' && namespace) {
        options.namespace = namespace;
      }
    }
    return options;
  }

  // ---- run, compile, submit -------------------------------------------------------

  private setBusy(busy: boolean): void {
    this.busy = busy;
    this.renderActions();
  }

  private async saveFirst(): Promise<void> {
    const nb = this.notebook;
    if (nb && nb.context.model.dirty) {
      await nb.context.save(); // the server analyzes the saved file
    }
  }

  async startRun(): Promise<void> {
    const path = this.path;
    if (!path || this.busy) {
      return;
    }
    this.setBusy(true);
    const engine = engineFor(this.pipelineSettings().target, await this.destinationsLoaded);
    this.setStatus(`Starting a ${engine} run…`);
    try {
      await this.saveFirst();
      const started = await api.startRun(path, engine);
      if (!started.id) {
        this.setStatus(started.message ?? 'The run is starting; it will appear under Runs.');
        return;
      }
      this.run = {
        id: started.id,
        status: 'running',
        engine,
        created: null,
        started: null,
        finished: null,
        duration: null,
        parameters: {},
        metrics: {},
        notebook: path,
        live: true,
        steps: {}
      };
      this.renderSteps();
      this.renderDag();
      await this.poll(path, started.id);
    } catch (error) {
      this.setStatus(`Run failed to start: ${describe(error)}`, 'error');
    } finally {
      this.setBusy(false);
    }
  }

  /** Follow run `id` with long polls until it ends; color the steps and the DAG. */
  private async poll(path: string, id: string): Promise<void> {
    this.polling = id;
    let since: number | undefined;
    try {
      for (;;) {
        const detail = await api.getRun(path, id, since === undefined ? 0 : POLL_WAIT, since);
        if (path !== this.path) {
          return;
        }
        this.run = detail;
        since = detail.version;
        const counts: Record<string, number> = {};
        for (const step of Object.values(detail.steps)) {
          counts[step.status ?? 'pending'] = (counts[step.status ?? 'pending'] ?? 0) + 1;
        }
        const progress = Object.entries(counts)
          .map(([k, v]) => `${v} ${k}`)
          .join(', ');
        this.setStatus(`Run ${id}: ${detail.status}${progress ? ` (${progress})` : ''}`);
        this.renderSteps();
        this.renderDag();
        if (!detail.live || FINISHED.has(detail.status)) {
          break;
        }
      }
      const done = this.run;
      this.setStatus(
        `Run ${id} ${done?.status}${done?.error ? `: ${done.error}` : ''}.`,
        done?.status === 'succeeded' ? 'success' : 'error'
      );
      this.selectedRun = id;
      this.selectedDetail = done;
      await this.loadRuns();
    } finally {
      this.polling = null;
    }
  }

  private async loadRuns(): Promise<void> {
    const path = this.path;
    if (!path) {
      return;
    }
    try {
      this.runs = (await api.listRuns(path)).runs;
    } catch (error) {
      this.setStatus(`Cannot list runs: ${describe(error)}`, 'error');
    }
    this.renderHistory();
    this.renderDetail();
  }

  async compile(): Promise<void> {
    const path = this.path;
    if (!path || this.busy) {
      return;
    }
    this.setBusy(true);
    const target = submitTargetFor(this.pipelineSettings().target, await this.destinationsLoaded) ?? 'spec';
    this.setStatus(`Compiling (${target})…`);
    try {
      await this.saveFirst();
      const result = await api.compile({ path, target, ...this.targetOptions(target) });
      this.setStatus(`Compiled for ${result.target}.`, 'success');
      const body = new Widget({ node: h('pre', { className: 'cp-compiled', tabindex: 0 }, result.text) });
      await showDialog({
        title: `cellpipe compile: ${result.target}`,
        body,
        buttons: [Dialog.okButton({ label: 'Close' })]
      });
    } catch (error) {
      this.setStatus(`Compile failed: ${describe(error)}`, 'error');
      this.showErrorDiagnostics(error);
    } finally {
      this.setBusy(false);
    }
  }

  async submit(): Promise<void> {
    const path = this.path;
    if (!path || this.busy) {
      return;
    }
    this.setBusy(true);
    const s = this.pipelineSettings();
    const target = submitTargetFor(s.target, await this.destinationsLoaded) ?? 'argo';
    const body: Record<string, unknown> = { path, target, ...this.targetOptions(target) };
    if (target !== 'argo' && s.host) {
      // Kubeflow Pipelines (and plugin targets) are reached at a host
      body.host = s.host;
    }
    this.setStatus(`Submitting to ${target}…`);
    try {
      await this.saveFirst();
      const result = await api.submit(body);
      this.setStatus(`Submitted to ${result.target}: ${result.id} (${result.status}).`, 'success');
    } catch (error) {
      this.setStatus(`Submit failed: ${describe(error)}`, 'error');
      this.showErrorDiagnostics(error);
    } finally {
      this.setBusy(false);
    }
  }

  /** A 422 from compile / submit carries the lint diagnostics: show them in the list. */
  private showErrorDiagnostics(error: unknown): void {
    if (error instanceof api.ApiError && Array.isArray(error.body.diagnostics) && this.analysis) {
      this.analysis = { ...this.analysis, diagnostics: error.body.diagnostics };
      this.renderSteps();
    }
  }

  // ---- run history and details ----------------------------------------------------

  private renderHistory(): void {
    if (!this.runs.length) {
      this.historyBody.replaceChildren(h('p', { className: 'cp-empty' }, this.notebook ? 'No runs yet.' : ''));
      return;
    }
    const metricNames: string[] = [];
    for (const run of this.runs) {
      for (const name of Object.keys(run.metrics ?? {})) {
        if (!metricNames.includes(name)) {
          metricNames.push(name);
        }
      }
    }
    const paramNames: string[] = [];
    const allParams = new Set(this.runs.flatMap(r => Object.keys(r.parameters ?? {})));
    for (const name of allParams) {
      const values = new Set(this.runs.map(r => JSON.stringify(r.parameters?.[name])));
      if (values.size > 1) {
        paramNames.push(name);
      }
    }
    const head = h(
      'tr',
      {},
      h('th', { scope: 'col' }, 'run'),
      h('th', { scope: 'col' }, 'status'),
      h('th', { scope: 'col' }, 'started'),
      h('th', { scope: 'col' }, 'time'),
      ...metricNames.map(m => h('th', { scope: 'col', className: 'cp-metric' }, m)),
      ...paramNames.map(p => h('th', { scope: 'col', className: 'cp-param' }, p))
    );
    const rows = this.runs.map(run =>
      h(
        'tr',
        { 'data-run': run.id, className: run.id === this.selectedRun ? 'cp-selected' : '', 'aria-selected': run.id === this.selectedRun ? 'true' : 'false' },
        h(
          'th',
          { scope: 'row' },
          h(
            'button',
            {
              type: 'button',
              className: 'cp-link cp-run-id',
              title: run.id,
              'aria-label': `show run ${run.id}`,
              onclick: () => void this.selectRun(run.id)
            },
            run.id
          )
        ),
        h('td', {}, h('span', { className: `cp-pill cp-state-${run.status}` }, run.status)),
        h('td', {}, formatTime(run.started ?? run.created)),
        h('td', {}, formatDuration(run.duration)),
        ...metricNames.map(m => h('td', { className: 'cp-metric', 'data-metric': m }, formatValue(run.metrics?.[m]))),
        ...paramNames.map(p => h('td', { className: 'cp-param' }, formatValue(run.parameters?.[p])))
      )
    );
    const table = h(
      'table',
      { className: 'cp-runs-table', 'aria-label': 'runs: metrics and differing parameters' },
      h('thead', {}, head),
      h('tbody', {}, ...rows)
    );
    this.historyBody.replaceChildren(
      h('div', { className: 'cp-table-wrap' }, table),
      h(
        'p',
        { className: 'cp-caption' },
        paramNames.length
          ? 'Parameters shown are those that differ between runs.'
          : 'Parameters are the same in every run.'
      )
    );
  }

  private async selectRun(id: string): Promise<void> {
    const path = this.path;
    if (!path) {
      return;
    }
    this.selectedRun = id;
    try {
      this.selectedDetail = await api.getRun(path, id);
      if (!this.polling) {
        this.run = this.selectedDetail;
        this.renderSteps();
        this.renderDag();
      }
    } catch (error) {
      this.setStatus(`Cannot open run ${id}: ${describe(error)}`, 'error');
    }
    this.renderHistory();
    this.renderDetail();
  }

  private renderDetail(): void {
    const detail = this.selectedDetail;
    const path = this.path;
    if (!detail || !path) {
      this.detailBody.replaceChildren(h('p', { className: 'cp-empty' }, 'Select a run to see its steps, logs and reports.'));
      return;
    }
    const output = h('div', { className: 'cp-step-output' });
    const list = h('ul', { className: 'cp-run-steps', 'aria-label': `steps of run ${detail.id}` });
    for (const [name, step] of Object.entries(detail.steps)) {
      const state = step.status ?? 'pending';
      const problem = step.error ? stepErrorText(step.error) : step.message;
      list.append(
        h(
          'li',
          { 'data-step': name },
          h('span', { className: 'cp-run-step-name' }, name),
          h('span', { className: `cp-pill cp-state-${state}` }, state),
          h('span', { className: 'cp-run-step-time' }, formatDuration(step.duration ?? step.elapsed)),
          h(
            'button',
            {
              type: 'button',
              className: 'jp-Button cp-button cp-small',
              'aria-label': `log of step ${name}`,
              onclick: () => void this.showLog(output, detail.id, name)
            },
            'Log'
          ),
          h(
            'button',
            {
              type: 'button',
              className: 'jp-Button cp-button cp-small',
              'aria-label': `report of step ${name}`,
              onclick: () => void this.showReport(output, detail.id, name)
            },
            'Report'
          ),
          problem ? h('div', { className: 'cp-hint cp-step-problem' }, problem) : null
        )
      );
    }
    this.detailBody.replaceChildren(
      h('p', { className: 'cp-cell-info' }, `Run ${detail.id} — ${detail.status}`),
      list,
      output
    );
  }

  private async showLog(output: HTMLElement, run: string, step: string): Promise<void> {
    const path = this.path;
    if (!path) {
      return;
    }
    try {
      const text = await api.stepLog(path, run, step);
      output.replaceChildren(
        h('h3', { className: 'cp-subtitle' }, `Log of ${step}`),
        h('pre', { className: 'cp-log', tabindex: 0, 'aria-label': `log of step ${step}` }, text || '(empty)')
      );
    } catch (error) {
      output.replaceChildren(h('p', { className: 'cp-error' }, describe(error)));
    }
  }

  private async showReport(output: HTMLElement, run: string, step: string): Promise<void> {
    const path = this.path;
    if (!path) {
      return;
    }
    let html: string;
    try {
      html = await api.stepReport(path, run, step);
    } catch (error) {
      output.replaceChildren(h('p', { className: 'cp-error' }, describe(error)));
      return;
    }
    // The report holds the outputs of the notebook's code: it runs in a sandboxed frame
    // (scripts allowed, no same origin), so it cannot call the server as the user.
    const frame = h('iframe', {
      className: 'cp-report',
      title: `report of step ${step}`,
      sandbox: 'allow-scripts',
      referrerpolicy: 'no-referrer',
      'data-src': api.reportUrl(path, run, step)
    });
    frame.srcdoc = html;
    output.replaceChildren(
      h('h3', { className: 'cp-subtitle' }, `Report of ${step}`),
      frame,
      h(
        'a',
        { href: api.reportUrl(path, run, step), target: '_blank', rel: 'noopener noreferrer' },
        'open the report in a new tab'
      )
    );
  }
}

/** The server's engines and cluster targets; the built-in ones when it cannot say. */
async function loadDestinations(): Promise<Destinations> {
  try {
    const found = await api.plugins();
    return { engines: found.engines, submitTargets: found.submit_targets };
  } catch (error) {
    console.warn(`cellpipe: no GET /cellpipe/plugins (${describe(error)}); offering the built-in engines and targets`);
    return FALLBACK_DESTINATIONS;
  }
}

/** The engine Run uses for the Target setting: the setting when it names one, else local. */
function engineFor(setting: string | undefined, where: Destinations): string {
  return setting !== undefined && where.engines.includes(setting) ? setting : 'local';
}

/** The cluster target the Target setting names, if it names one. */
function submitTargetFor(setting: string | undefined, where: Destinations): string | null {
  return setting !== undefined && where.submitTargets.includes(setting) ? setting : null;
}

/** `[1, 2, 3, 5]` → `1–3, 5`. */
function cellRanges(numbers: number[]): string {
  const parts: string[] = [];
  let i = 0;
  while (i < numbers.length) {
    let j = i;
    while (j + 1 < numbers.length && numbers[j + 1] === numbers[j] + 1) {
      j++;
    }
    parts.push(j > i + 1 ? `${numbers[i]}–${numbers[j]}` : j === i + 1 ? `${numbers[i]}, ${numbers[j]}` : `${numbers[i]}`);
    i = j + 1;
  }
  return parts.join(', ');
}

/**
 * A failed step's error in one line: its message, after the cell and line when the
 * message does not already start with them (the engine puts them in front when it knows).
 */
function stepErrorText(error: api.StepError): string {
  if (error.cell === null || error.cell === undefined) {
    return error.message;
  }
  const where = `cell ${error.cell + 1}${error.line ? `, line ${error.line}` : ''}`;
  return error.message.startsWith(where) ? error.message : `${where}: ${error.message}`;
}

function describe(error: unknown): string {
  return error instanceof api.ApiError ? error.describe() : String(error);
}
