/**
 * The side panel's state, held in one store that its components subscribe to, and what
 * is read from the notebook (the active cell, the pipeline settings, step states).
 */
import type { Cell } from '@jupyterlab/cells';
import type { NotebookPanel } from '@jupyterlab/notebook';

import type * as api from './api';
import { Destinations, FALLBACK_DESTINATIONS } from './destinations';
import { Store } from './store';

/** The notebook metadata the settings form edits (`metadata.cellpipe`). */
export interface PipelineSettings {
  name?: string;
  target?: string;
  base_image?: string;
  registry?: string;
  host?: string;
  cluster?: Record<string, unknown>;
  [key: string]: unknown;
}

/** Settings kept under `metadata.cellpipe.cluster` (the cluster options compile reads). */
export const CLUSTER_SETTINGS: ReadonlySet<string> = new Set(['namespace']);

export type StatusKind = 'info' | 'error' | 'success';

export interface ActiveCell {
  cell: Cell;
  index: number;
}

export interface PanelState {
  notebook: NotebookPanel | null;
  analysis: api.Analysis | null;
  analysisError: string | null;
  /** Settled analyses so far (the panel's `data-analyzed`). */
  analyzed: number;
  /** Cells were edited since the last analysis. */
  editedSinceAnalysis: boolean;
  /** What the analysis shown is of: the saved file, or the notebook as the editor has it. */
  analysisSource: 'saved' | 'editor';
  runs: api.RunSummary[];
  /** The run whose states color the steps and the DAG. */
  run: api.RunDetail | null;
  selectedRun: string | null;
  selectedDetail: api.RunDetail | null;
  polling: string | null;
  busy: boolean;
  status: { text: string; kind: StatusKind };
  destinations: Destinations;
  /** `metadata.cellpipe` of the notebook, as last read. */
  settings: PipelineSettings;
  activeCell: ActiveCell | null;
  /** Counts changes of the cells (their tags, their source), settled. */
  cellsVersion: number;
  /** The annotation editor's fields that were refused, with why. */
  fieldProblems: Record<string, string>;
  /** The parameters form's fields the server (or the form) refused, with why. */
  parameterProblems: Record<string, string>;
  /** Values to put in the parameters form ("run again with these parameters"), counted. */
  parameterFill: { values: Record<string, unknown>; version: number };
  /** The tuning study the Tune section follows (its trials so far), if any. */
  study: api.StudyState | null;
  /** Why the last tuning study could not start (or stop), shown next to its form. */
  tuneError: string | null;
}

export type PanelStore = Store<PanelState>;

export function createStore(): PanelStore {
  return new Store<PanelState>({
    notebook: null,
    analysis: null,
    analysisError: null,
    analyzed: 0,
    editedSinceAnalysis: false,
    analysisSource: 'saved',
    runs: [],
    run: null,
    selectedRun: null,
    selectedDetail: null,
    polling: null,
    busy: false,
    status: { text: '', kind: 'info' },
    destinations: FALLBACK_DESTINATIONS, // until the server answers
    settings: {},
    activeCell: null,
    cellsVersion: 0,
    fieldProblems: {},
    parameterProblems: {},
    parameterFill: { values: {}, version: 0 },
    study: null,
    tuneError: null
  });
}

/** What the panel shows of a notebook it just switched to. */
export function freshNotebook(notebook: NotebookPanel | null): Partial<PanelState> {
  return {
    notebook,
    analysis: null,
    analysisError: null,
    runs: [],
    run: null,
    selectedRun: null,
    selectedDetail: null,
    fieldProblems: {},
    parameterProblems: {},
    study: null,
    tuneError: null,
    editedSinceAnalysis: false,
    analysisSource: 'saved',
    settings: readSettings(notebook),
    activeCell: activeCellOf(notebook)
  };
}

/** `metadata.cellpipe` of the notebook (a copy), or nothing before it is loaded. */
export function readSettings(notebook: NotebookPanel | null): PipelineSettings {
  const value = notebook?.context.isReady ? notebook.context.model.getMetadata('cellpipe') : null;
  return value && typeof value === 'object' ? { ...(value as PipelineSettings) } : {};
}

export function activeCellOf(notebook: NotebookPanel | null): ActiveCell | null {
  if (!notebook || !notebook.content.activeCell || !notebook.context.isReady) {
    return null;
  }
  return { cell: notebook.content.activeCell, index: notebook.content.activeCellIndex };
}

/** The value of a setting the form edits, wherever the metadata keeps it. */
export function settingValue(settings: PipelineSettings, name: string): string {
  const value = CLUSTER_SETTINGS.has(name) ? settings.cluster?.[name] : settings[name];
  return typeof value === 'string' ? value : '';
}

/** Each step's state in `run`, for coloring. */
export function stepStates(run: api.RunDetail | null): Record<string, string> {
  const states: Record<string, string> = {};
  for (const [name, step] of Object.entries(run?.steps ?? {})) {
    if (step.status) {
      states[name] = step.status;
    }
  }
  return states;
}

/** The step states as one string: equal strings, same colors (selectors compare it). */
export function stepStatesKey(run: api.RunDetail | null): string {
  return JSON.stringify(stepStates(run));
}

/** Why each step of `run` failed, was skipped or was cancelled (for titles and labels). */
export function stepReasons(run: api.RunDetail | null): Record<string, string> {
  const reasons: Record<string, string> = {};
  for (const [name, step] of Object.entries(run?.steps ?? {})) {
    const why = step.error?.message ?? step.message ?? step.reason;
    if (why && step.status && !['succeeded', 'running', 'pending'].includes(step.status)) {
      reasons[name] = String(why);
    }
  }
  return reasons;
}
