/**
 * What the panel does: analyze the saved notebook or the notebook as the editor has it,
 * start a run (with parameters) and follow it, cancel it, compile, submit, open a past
 * run, go to a cell. It changes the store; the components show it.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import type { NotebookPanel } from '@jupyterlab/notebook';
import { Widget } from '@lumino/widgets';

import * as api from './api';
import type { PanelActions } from './components/component';
import { Destinations, engineFor, submitTargetFor } from './destinations';
import { h } from './dom';
import { describe } from './format';
import { CLUSTER_SETTINGS, PanelStore, StatusKind, settingValue } from './state';

const FINISHED = new Set(['succeeded', 'failed', 'cancelled', 'interrupted', 'blocked']);
const POLL_WAIT = 20; // seconds a long poll may be held by the server

/**
 * The notebook as the editor has it, as saved in .ipynb but without outputs (the analysis
 * reads sources, tags and metadata only; outputs can be megabytes).
 */
export function editorContent(nb: NotebookPanel): Record<string, unknown> {
  const content = nb.context.model.toJSON() as unknown as Record<string, unknown>;
  const cells = (content.cells as Record<string, unknown>[] | undefined) ?? [];
  return {
    ...content,
    cells: cells.map(cell => {
      const { attachments: _attachments, ...rest } = cell;
      return rest.cell_type === 'code' ? { ...rest, outputs: [], execution_count: null } : rest;
    })
  };
}

export class PanelController implements PanelActions {
  private ticket = 0; // the latest analysis asked for; older answers are dropped
  private lastSent = ''; // the editor content last analyzed (unchanged content: no request)

  constructor(
    private readonly store: PanelStore,
    private readonly destinationsLoaded: Promise<Destinations>
  ) {}

  private get path(): string | null {
    return this.store.get().notebook?.context.path ?? null;
  }

  setStatus(text: string, kind: StatusKind = 'info'): void {
    this.store.update({ status: { text, kind } });
  }

  /** Analyze the saved notebook and load its runs. */
  async refresh(): Promise<void> {
    const path = this.path;
    if (!path) {
      return;
    }
    const ticket = ++this.ticket;
    this.lastSent = '';
    this.store.update({ editedSinceAnalysis: false });
    try {
      const nb = this.store.get().notebook;
      // unsaved edits: analyze what the editor shows, not the older file
      const live = nb && nb.context.isReady && nb.context.model.dirty;
      const runsLoaded = api.listRuns(path).then(runs => {
        // the runs are shown even when a newer (live) analysis replaced this one
        if (path !== this.path) {
          return;
        }
        const { polling, run } = this.store.get();
        const latest = runs.runs[0];
        const recolor = !polling && latest && (!run || run.id !== latest.id);
        this.store.update({
          runs: runs.runs,
          // color the DAG by the latest run until a new one starts
          ...(recolor
            ? {
                run: {
                  ...latest,
                  notebook: null,
                  live: false,
                  steps: Object.fromEntries(Object.entries(latest.steps).map(([name, status]) => [name, { status }]))
                }
              }
            : {})
        });
      });
      const [analysis] = await Promise.all([
        live ? api.analyzeContent(path, editorContent(nb)) : api.analyze(path),
        runsLoaded
      ]);
      if (ticket !== this.ticket || path !== this.path) {
        return;
      }
      this.store.update({ analysis, analysisError: null, analysisSource: live ? 'editor' : 'saved' });
    } catch (error) {
      if (ticket === this.ticket) {
        this.store.update({ analysisError: describe(error) });
      }
    } finally {
      if (ticket === this.ticket) {
        this.store.update({ analyzed: ticket });
      }
    }
  }

  /**
   * Analyze the notebook as the editor has it (called as the user types, debounced): the
   * steps, the DAG, the badges and the diagnostics follow the cells without a save.
   */
  async analyzeEditor(): Promise<void> {
    const nb = this.store.get().notebook;
    const path = this.path;
    if (!nb || !path || !nb.context.isReady) {
      return;
    }
    const content = editorContent(nb);
    const key = JSON.stringify(content);
    if (key === this.lastSent) {
      // outputs changed, not what the analysis reads: the analysis shown is current
      if (this.store.get().editedSinceAnalysis) {
        this.store.update({ editedSinceAnalysis: false });
      }
      return;
    }
    this.lastSent = key;
    const ticket = ++this.ticket;
    try {
      const analysis = await api.analyzeContent(path, content);
      if (ticket !== this.ticket || path !== this.path) {
        return;
      }
      this.store.update({ analysis, analysisError: null, analysisSource: 'editor', editedSinceAnalysis: false });
    } catch (error) {
      if (ticket === this.ticket && error instanceof api.ApiError && error.status === 413) {
        // too large to send as it is typed: keep what the saved file's analysis shows
        this.setStatus(`Not analyzed as you type: ${error.describe()}. Save to re-analyze.`, 'info');
      } else if (ticket === this.ticket) {
        this.lastSent = '';
        this.store.update({ analysisError: describe(error) });
      }
    } finally {
      if (ticket === this.ticket) {
        this.store.update({ analyzed: ticket });
      }
    }
  }

  /** Make cell `index` active, scroll to it and put the cursor on `line` (1-based). */
  goToCell(index: number, line: number | null): void {
    const nb = this.store.get().notebook;
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

  /**
   * Start a run; `parameters` override the notebook's values (text is converted to the
   * declared type by the server, as `cellpipe run -p NAME=VALUE` converts it).
   */
  async startRun(parameters?: Record<string, unknown>): Promise<void> {
    const path = this.path;
    if (!path || this.store.get().busy) {
      return;
    }
    this.store.update({ busy: true, parameterProblems: {} });
    const engine = engineFor(this.store.get().settings.target, await this.destinationsLoaded);
    const given = parameters && Object.keys(parameters).length ? parameters : undefined;
    this.setStatus(`Starting a ${engine} run${given ? ' with parameters' : ''}…`);
    try {
      await this.saveFirst();
      const started = await api.startRun(path, engine, given);
      if (!started.id) {
        this.setStatus(started.message ?? 'The run is starting; it will appear under Runs.');
        return;
      }
      this.store.update({
        selectedRun: started.id,
        selectedDetail: null,
        run: {
          id: started.id,
          status: 'running',
          engine,
          created: null,
          started: null,
          finished: null,
          duration: null,
          parameters: given ?? {},
          metrics: {},
          notebook: path,
          live: true,
          steps: {}
        }
      });
      await this.poll(path, started.id);
    } catch (error) {
      this.setStatus(`Run failed to start: ${describe(error)}`, 'error');
      // a parameter the server refused: say so next to its field
      if (error instanceof api.ApiError && error.status === 400 && typeof error.body.variable === 'string') {
        this.store.update({ parameterProblems: { [error.body.variable]: error.describe() } });
      }
    } finally {
      this.store.update({ busy: false });
    }
  }

  /** Follow run `id` with long polls until it ends; color the steps and the DAG. */
  private async poll(path: string, id: string): Promise<void> {
    this.store.update({ polling: id });
    let since: number | undefined;
    try {
      for (;;) {
        const detail = await api.getRun(path, id, since === undefined ? 0 : POLL_WAIT, since);
        if (path !== this.path) {
          return;
        }
        since = detail.version;
        const counts: Record<string, number> = {};
        for (const step of Object.values(detail.steps)) {
          counts[step.status ?? 'pending'] = (counts[step.status ?? 'pending'] ?? 0) + 1;
        }
        const progress = Object.entries(counts)
          .map(([k, v]) => `${v} ${k}`)
          .join(', ');
        this.store.update({
          run: detail,
          // the run details follow the live run (its Stop button, its steps' logs)
          ...(this.store.get().selectedRun === null || this.store.get().selectedRun === id
            ? { selectedRun: id, selectedDetail: detail }
            : {}),
          status: { text: `Run ${id}: ${detail.status}${progress ? ` (${progress})` : ''}`, kind: 'info' }
        });
        if (!detail.live || FINISHED.has(detail.status)) {
          break;
        }
      }
      const done = this.store.get().run;
      this.store.update({
        status: {
          text: `Run ${id} ${done?.status}${done?.error ? `: ${done.error}` : ''}.`,
          kind: done?.status === 'succeeded' ? 'success' : 'error'
        },
        selectedRun: id,
        selectedDetail: done,
        polling: null // ended: no Stop while the runs list loads
      });
      await this.loadRuns();
    } finally {
      this.store.update({ polling: null });
    }
  }

  private async loadRuns(): Promise<void> {
    const path = this.path;
    if (!path) {
      return;
    }
    try {
      this.store.update({ runs: (await api.listRuns(path)).runs });
    } catch (error) {
      this.setStatus(`Cannot list runs: ${describe(error)}`, 'error');
    }
  }

  /** Stop the run being followed: its running steps end, the finished ones stay cached. */
  async cancelRun(id?: string): Promise<void> {
    const path = this.path;
    const target = id ?? this.store.get().polling;
    if (!path || !target) {
      return;
    }
    this.setStatus(`Stopping run ${target}…`);
    try {
      await api.cancelRun(path, target);
      this.setStatus(`Run ${target}: stopping (finished steps stay cached)…`);
    } catch (error) {
      this.setStatus(`Cannot stop run ${target}: ${describe(error)}`, 'error');
    }
  }

  /** Put `values` in the parameters form; with `run`, start a run with them too. */
  async useParameters(values: Record<string, unknown>, run: boolean): Promise<void> {
    const fill = this.store.get().parameterFill;
    this.store.update({ parameterFill: { values: { ...values }, version: fill.version + 1 }, parameterProblems: {} });
    if (run) {
      await this.startRun(values);
    } else {
      this.setStatus('The parameters form has the run\'s values.', 'info');
    }
  }

  async selectRun(id: string): Promise<void> {
    const path = this.path;
    if (!path) {
      return;
    }
    this.store.update({ selectedRun: id });
    try {
      const detail = await api.getRun(path, id);
      this.store.update({ selectedDetail: detail, ...(this.store.get().polling ? {} : { run: detail }) });
    } catch (error) {
      this.setStatus(`Cannot open run ${id}: ${describe(error)}`, 'error');
    }
  }

  /** Start a tuning study of the saved notebook and follow its trials until it ends. */
  async startTune(request: api.TuneRequest): Promise<void> {
    const path = this.path;
    if (!path || this.store.get().busy) {
      return;
    }
    this.store.update({ busy: true, tuneError: null });
    this.setStatus(`Starting a study of ${request.objective} (${request.trials} trials)…`);
    let name: string | null | undefined;
    try {
      await this.saveFirst();
      name = (await api.startTune(path, request)).study;
    } catch (error) {
      this.store.update({ tuneError: describe(error), busy: false });
      this.setStatus(`The study did not start: ${describe(error)}`, 'error');
      return;
    }
    if (!name) {
      this.store.update({ busy: false });
      this.setStatus('The study is starting; its trials will appear under Runs.');
      return;
    }
    try {
      await this.followStudy(path, name);
    } finally {
      this.store.update({ busy: false });
    }
  }

  /** Long-poll study `name` until it is not live; its trials' runs join the Runs list. */
  private async followStudy(path: string, name: string): Promise<void> {
    let since: number | undefined;
    let seen = 0;
    try {
      for (;;) {
        const study = await api.getStudy(path, name, since === undefined ? 0 : POLL_WAIT, since);
        if (path !== this.path) {
          return;
        }
        since = study.version;
        const done = study.trials.filter(t => t.state !== 'RUNNING' && t.state !== 'WAITING').length;
        this.store.update({
          study,
          status: {
            text: `Study ${name}: ${done} of ${study.settings.trials ?? '?'} trials${study.best ? `, best ${study.settings.objective} ${study.best.value}` : ''}`,
            kind: 'info'
          }
        });
        if (done !== seen) {
          seen = done;
          await this.loadRuns();
        }
        if (!study.live) {
          break;
        }
      }
      const study = this.store.get().study;
      this.setStatus(
        `Study ${name} ended: ${study?.trials.length ?? 0} trials${study?.error ? `; ${study.error}` : ''}.`,
        study?.best && !study.error ? 'success' : 'error'
      );
      await this.loadRuns();
    } catch (error) {
      this.store.update({ tuneError: describe(error) });
    }
  }

  /** Stop the study the Tune section follows. */
  async cancelTune(): Promise<void> {
    const path = this.path;
    const study = this.store.get().study;
    if (!path || !study) {
      return;
    }
    try {
      await api.cancelStudy(path, study.study);
      this.setStatus(`Study ${study.study}: stopping (the finished trials stay)…`);
    } catch (error) {
      this.store.update({ tuneError: describe(error) });
    }
  }

  async compile(): Promise<void> {
    const path = this.path;
    if (!path || this.store.get().busy) {
      return;
    }
    this.store.update({ busy: true });
    const target = submitTargetFor(this.store.get().settings.target, await this.destinationsLoaded) ?? 'spec';
    this.setStatus(`Compiling (${target})…`);
    try {
      await this.saveFirst();
      const result = await api.compile({ path, target, ...this.targetOptions(target) });
      this.setStatus(`Compiled for ${result.target}.`, 'success');
      const notes = result.notes.map(note => h('p', { className: 'cp-compiled-note' }, note));
      const body = new Widget({
        node: h('div', {}, ...notes, h('pre', { className: 'cp-compiled', tabindex: 0 }, result.text))
      });
      await showDialog({
        title: `cellpipe compile: ${result.target}`,
        body,
        buttons: [Dialog.okButton({ label: 'Close' })]
      });
    } catch (error) {
      this.setStatus(`Compile failed: ${describe(error)}`, 'error');
      this.showErrorDiagnostics(error);
    } finally {
      this.store.update({ busy: false });
    }
  }

  async submit(): Promise<void> {
    const path = this.path;
    if (!path || this.store.get().busy) {
      return;
    }
    this.store.update({ busy: true });
    const where = await this.destinationsLoaded;
    const targets = where.submitTargets;
    const target = submitTargetFor(this.store.get().settings.target, where) ?? targets[0] ?? 'spec';
    const body: Record<string, unknown> = { path, target, ...this.targetOptions(target) };
    for (const field of where.connection[target] ?? []) {
      // the fields the target reads (host, experiment, …); namespace is a cluster option
      const value = settingValue(this.store.get().settings, field.name);
      if (value && !CLUSTER_SETTINGS.has(field.name)) {
        body[field.name] = value;
      }
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
      this.store.update({ busy: false });
    }
  }

  /** The compile / submit options the settings give. */
  private targetOptions(target: string): Record<string, unknown> {
    const s = this.store.get().settings;
    const options: Record<string, unknown> = {};
    if (s.base_image) {
      options.base_image = s.base_image;
    }
    if (target !== 'spec') {
      // a cluster target: the images' registry and the cluster settings
      if (s.registry) {
        options.registry = s.registry;
      }
      for (const name of CLUSTER_SETTINGS) {
        const value = settingValue(s, name);
        if (value) {
          options[name] = value;
        }
      }
    }
    return options;
  }

  private async saveFirst(): Promise<void> {
    const nb = this.store.get().notebook;
    if (nb && nb.context.model.dirty) {
      await nb.context.save(); // the server analyzes the saved file
    }
  }

  /** A 422 from compile / submit carries the lint diagnostics: show them in the list. */
  private showErrorDiagnostics(error: unknown): void {
    const analysis = this.store.get().analysis;
    if (error instanceof api.ApiError && Array.isArray(error.body.diagnostics) && analysis) {
      this.store.update({ analysis: { ...analysis, diagnostics: error.body.diagnostics } });
    }
  }
}
