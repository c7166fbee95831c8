/**
 * The top of the panel: the notebook and its analysis summary, the toolbar (Run,
 * Compile, Submit, Refresh) and the status line.
 */
import { h } from '../dom';
import type { PanelState } from '../state';
import { Component } from './component';

export class HeaderComponent extends Component {
  protected select = (s: Readonly<PanelState>) => [
    s.notebook,
    s.analysis,
    s.analysisError,
    s.editedSinceAnalysis,
    s.analysisSource,
    s.cellsVersion
  ];

  render(s: Readonly<PanelState>): void {
    const nb = s.notebook;
    this.body.replaceChildren(
      h('h2', { className: 'cp-title' }, 'cellpipe'),
      h('div', { className: 'cp-notebook' }, nb ? nb.context.path : 'Open a notebook to see its pipeline.')
    );
    if (!nb) {
      return;
    }
    const summary = s.analysis
      ? `${s.analysis.steps.length} steps, ${s.analysis.diagnostics.length} diagnostics` +
        (s.editedSinceAnalysis && nb.context.model.dirty
          ? ' — cells changed since this analysis'
          : s.analysisSource === 'editor' && nb.context.model.dirty
            ? ' — as in the editor (unsaved)'
            : '')
      : s.analysisError ?? 'analyzing…';
    this.body.append(
      h(
        'div',
        {
          className: `cp-summary ${s.analysisError ? 'cp-error' : ''}`,
          'data-ok': s.analysis ? String(s.analysis.ok) : undefined
        },
        summary
      )
    );
  }
}

/** The pipeline's actions; built once, so a button keeps the focus while it is disabled. */
export class ToolbarComponent extends Component {
  protected select = (s: Readonly<PanelState>) => [s.notebook, s.busy, s.polling];
  private readonly buttons: HTMLButtonElement[] = [];
  private stop: HTMLButtonElement | null = null;

  render(s: Readonly<PanelState>): void {
    if (!this.buttons.length) {
      const button = (label: string, title: string, onclick: () => void, extra: string) =>
        h(
          'button',
          { type: 'button', className: `jp-Button cp-button ${extra}`, 'aria-label': title, title, onclick },
          label
        );
      this.buttons.push(
        button('Run', 'Run the pipeline', () => void this.actions.startRun(), 'jp-mod-accept cp-run'),
        button('Compile', 'Compile the pipeline', () => void this.actions.compile(), 'cp-compile'),
        button('Submit', 'Submit the pipeline to the cluster', () => void this.actions.submit(), 'cp-submit'),
        button('Refresh', 'Analyze the saved notebook again', () => void this.actions.refresh(), 'cp-refresh')
      );
      // shown while a run is followed; last, so Tab order of the others stays the same
      this.stop = button('Stop', 'Stop the running run (finished steps stay cached)', () => void this.actions.cancelRun(), 'jp-mod-warn cp-stop');
      this.body.replaceChildren(...this.buttons, this.stop);
    }
    for (const button of this.buttons) {
      button.disabled = !s.notebook || s.busy;
    }
    if (this.stop) {
      this.stop.hidden = !s.polling;
      this.stop.setAttribute('aria-label', s.polling ? `Stop run ${s.polling} (finished steps stay cached)` : 'Stop the running run');
    }
  }
}

export class StatusComponent extends Component {
  protected select = (s: Readonly<PanelState>) => [s.status];

  render(s: Readonly<PanelState>): void {
    this.body.textContent = s.status.text;
    this.body.dataset.kind = s.status.kind;
  }
}
