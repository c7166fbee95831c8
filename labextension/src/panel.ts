/**
 * The cellpipe side panel: the active notebook's steps, diagnostics and DAG, the active
 * cell's annotations, the parameters form, a tuning study, the pipeline settings, Run /
 * Compile / Submit / Stop, the run history with its metrics chart, and the selected run's
 * details.
 *
 * The notebook is analyzed as the user types (the cells as the editor has them, sent
 * LIVE_MS after the last change), so the steps, the DAG and the diagnostics (also shown on
 * their cells) follow the edits without a save.
 *
 * The panel holds the state in a store (state.ts), keeps it in step with JupyterLab (the
 * current notebook, its active cell, its cells and metadata), and lays out the sections;
 * each section is a component that re-renders only when its slice of the state changes,
 * and the controller does what the buttons ask.
 */
import type { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { Widget } from '@lumino/widgets';

import { markCells } from './cellmarks';
import { MetricsChartComponent } from './components/chart';
import { Component } from './components/component';
import { DagComponent } from './components/dag';
import { EditorComponent } from './components/editor';
import { HeaderComponent, StatusComponent, ToolbarComponent } from './components/header';
import { ParametersComponent } from './components/parameters';
import { RunDetailComponent, RunsComponent } from './components/runs';
import { SettingsComponent } from './components/settings';
import { DiagnosticsComponent, StepsComponent } from './components/steps';
import { TuneComponent } from './components/tune';
import { PanelController } from './controller';
import { Destinations, loadDestinations } from './destinations';
import { h, section } from './dom';
import { PanelStore, activeCellOf, createStore, freshNotebook, readSettings } from './state';

export const PANEL_ID = 'cellpipe-panel';
const SETTLE_MS = 200; // cell edits come in bursts: show them once they pause
const LIVE_MS = 400; // analyze the editor's cells this long after the last change

export class CellpipePanel extends Widget {
  private readonly store: PanelStore = createStore();
  private readonly controller: PanelController;
  private readonly components: Component[];
  private contentTimer = 0;
  private liveTimer = 0;

  constructor(private readonly tracker: INotebookTracker) {
    super();
    this.id = PANEL_ID;
    this.addClass('cp-panel');
    this.title.caption = 'cellpipe: pipeline of the notebook';
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', 'cellpipe pipeline');

    const destinationsLoaded: Promise<Destinations> = loadDestinations().then(found => {
      this.store.update({ destinations: found });
      return found;
    });
    this.controller = new PanelController(this.store, destinationsLoaded);

    const header = h('div', { className: 'cp-header' });
    const actions = h('div', { className: 'cp-actions', role: 'toolbar', 'aria-label': 'pipeline actions' });
    const status = h('div', { className: 'cp-status', role: 'status', 'aria-live': 'polite' });
    const steps = section('steps', 'Steps');
    const stepList = h('div', { className: 'cp-steps-box' });
    const diagnostics = h('div', { className: 'cp-diagnostics-box' });
    steps.body.append(stepList, diagnostics);
    const dag = section('dag', 'Graph');
    const editor = section('editor', 'Active cell');
    const parameters = section('parameters', 'Parameters');
    const settings = section('settings', 'Pipeline settings', false);
    const history = section('history', 'Runs');
    const chart = h('div', { className: 'cp-chart-box' });
    const table = h('div', { className: 'cp-runs-box' });
    history.body.append(chart, table);
    const tune = section('tune', 'Tune', false);
    const detail = section('detail', 'Run details');
    // The sections in panel order; Tune (a study of runs over a search space) after
    // Parameters: its trials are runs, shown under Runs too.
    this.node.append(
      header,
      actions,
      status,
      steps.root,
      dag.root,
      editor.root,
      parameters.root,
      tune.root,
      settings.root,
      history.root,
      detail.root
    );

    const [store, controller] = [this.store, this.controller];
    this.components = [
      new HeaderComponent(store, controller, header),
      new ToolbarComponent(store, controller, actions),
      new StatusComponent(store, controller, status),
      new StepsComponent(store, controller, stepList),
      new DiagnosticsComponent(store, controller, diagnostics),
      new DagComponent(store, controller, dag.body),
      new EditorComponent(store, controller, editor.body),
      new ParametersComponent(store, controller, parameters.body),
      new TuneComponent(store, controller, tune.body),
      new SettingsComponent(store, controller, settings.body),
      new MetricsChartComponent(store, controller, chart),
      new RunsComponent(store, controller, table),
      new RunDetailComponent(store, controller, detail.body)
    ];
    this.components.forEach(component => component.start());
    this.store.subscribe(
      s => [s.analyzed],
      s => (this.node.dataset.analyzed = String(s.analyzed)),
      false
    );
    // the diagnostics on their cells, for the notebook shown
    this.store.subscribe(
      s => [s.notebook, s.analysis?.diagnostics],
      s => markCells(s.notebook, s.analysis?.diagnostics ?? []),
      false
    );

    tracker.currentChanged.connect(this.onNotebookChanged, this);
    tracker.activeCellChanged.connect(this.onActiveCellChanged, this);
    this.onNotebookChanged();
  }

  /** The notebook the panel shows: the current one of the tracker. */
  get current(): NotebookPanel | null {
    return this.store.get().notebook;
  }

  /** Analyze the saved notebook again and reload its runs. */
  refresh(): Promise<void> {
    return this.controller.refresh();
  }

  /** Run the pipeline with the engine the Target setting names (local otherwise). */
  startRun(parameters?: Record<string, unknown>): Promise<void> {
    return this.controller.startRun(parameters);
  }

  /** Stop the run the panel follows. */
  cancelRun(): Promise<void> {
    return this.controller.cancelRun();
  }

  /** Make cell `index` active, scroll to it and put the cursor on `line` (1-based). */
  goToCell(index: number, line: number | null): void {
    this.controller.goToCell(index, line);
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.tracker.currentChanged.disconnect(this.onNotebookChanged, this);
    this.tracker.activeCellChanged.disconnect(this.onActiveCellChanged, this);
    this.watch(null);
    this.components.forEach(component => component.dispose());
    window.clearTimeout(this.contentTimer);
    window.clearTimeout(this.liveTimer);
    super.dispose();
  }

  private onNotebookChanged(): void {
    const next = this.tracker.currentWidget;
    if (next === this.store.get().notebook) {
      return;
    }
    this.watch(next);
    this.store.update(freshNotebook(next));
    void this.refresh();
  }

  /** Follow `next`'s saves, cells and metadata (and stop following the previous one). */
  private watch(next: NotebookPanel | null): void {
    const previous = this.store.get().notebook;
    if (previous && !previous.isDisposed) {
      previous.context.saveState.disconnect(this.onSaveState, this);
      previous.context.model.metadataChanged.disconnect(this.onMetadataChanged, this);
      previous.context.model.contentChanged.disconnect(this.onContentChanged, this);
    }
    if (!next) {
      return;
    }
    next.context.saveState.connect(this.onSaveState, this);
    next.disposed.connect(() => {
      if (this.store.get().notebook === next) {
        this.store.update(freshNotebook(null));
      }
    });
    void next.context.ready.then(() => {
      if (this.store.get().notebook === next) {
        next.context.model.metadataChanged.connect(this.onMetadataChanged, this);
        next.context.model.contentChanged.connect(this.onContentChanged, this);
        this.store.update({ settings: readSettings(next), activeCell: activeCellOf(next) });
      }
    });
  }

  private onActiveCellChanged(): void {
    this.store.update({ activeCell: activeCellOf(this.store.get().notebook) });
  }

  private onMetadataChanged(): void {
    const settings = readSettings(this.store.get().notebook);
    if (JSON.stringify(settings) !== JSON.stringify(this.store.get().settings)) {
      this.store.update({ settings });
    }
  }

  /**
   * A cell changed (its source, its tags): show the active cell's annotations as they are
   * now, and analyze the cells as the editor has them once the typing pauses.
   */
  private onContentChanged(): void {
    const nb = this.store.get().notebook;
    if (!this.store.get().editedSinceAnalysis && nb?.context.model.dirty) {
      this.store.update({ editedSinceAnalysis: true });
    }
    window.clearTimeout(this.contentTimer);
    this.contentTimer = window.setTimeout(
      () => this.store.update({ cellsVersion: this.store.get().cellsVersion + 1 }),
      SETTLE_MS
    );
    window.clearTimeout(this.liveTimer);
    this.liveTimer = window.setTimeout(() => void this.controller.analyzeEditor(), LIVE_MS);
  }

  private onSaveState(_: unknown, state: string): void {
    if (state === 'completed') {
      window.clearTimeout(this.liveTimer); // the saved file is what the editor has
      void this.refresh();
    }
  }
}
