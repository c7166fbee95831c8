/**
 * A part of the panel that shows one slice of the state: it subscribes to the values it
 * depends on and re-renders its own section when, and only when, one of them changes.
 */
import type { TuneRequest } from '../api';
import type { PanelState, PanelStore, StatusKind } from '../state';
import type { Selector } from '../store';

/** What the components ask the panel to do (the panel's controller does it). */
export interface PanelActions {
  refresh(): Promise<void>;
  /** Start a run; `parameters` (name → value or text) override the notebook's. */
  startRun(parameters?: Record<string, unknown>): Promise<void>;
  /** Stop run `id` (the run being followed, by default). */
  cancelRun(id?: string): Promise<void>;
  /** Fill the parameters form with `values`; start a run with them when `run`. */
  useParameters(values: Record<string, unknown>, run: boolean): Promise<void>;
  /** Start a tuning study and follow its trials (state.study). */
  startTune(request: TuneRequest): Promise<void>;
  /** Stop the study being followed. */
  cancelTune(): Promise<void>;
  compile(): Promise<void>;
  submit(): Promise<void>;
  selectRun(id: string): Promise<void>;
  goToCell(index: number, line: number | null): void;
  setStatus(text: string, kind?: StatusKind): void;
}

export abstract class Component {
  private unsubscribe: (() => void) | null = null;

  constructor(
    protected readonly store: PanelStore,
    protected readonly actions: PanelActions,
    /** The element whose content this component owns. */
    readonly body: HTMLElement
  ) {}

  /** The values this component shows; it re-renders when one of them changes. */
  protected abstract select: Selector<PanelState>;

  /** Show `state` in `body`. */
  abstract render(state: Readonly<PanelState>): void;

  /** Subscribe and render once (called by the panel, once every component exists). */
  start(): void {
    this.unsubscribe ??= this.store.subscribe(this.select, state => this.render(state));
  }

  dispose(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
  }
}
