/**
 * The Tune section: a tuning study of the notebook from the panel. The form picks the
 * objective (one of the notebook's metrics), the direction, a search space per parameter
 * (the syntax of `cellpipe tune -p NAME=SPACE`: `uniform(0, 1)`, `loguniform(1e-3, 1)`,
 * `int(1, 10)`, `choice(a, b)`; an empty field is not tuned), the number of trials and the
 * sampler. Once started, the trials arrive in a table and in a chart of the objective over
 * the trials (the metrics chart of the runs, one point per trial); the best trial is
 * highlighted and "Open best run" shows its run in Run details.
 */
import type { Parameter, RunSummary, StudyState, StudyTrial, TuneRequest } from '../api';
import { h, replaceKeepingFocus } from '../dom';
import { formatValue } from '../format';
import type { PanelState } from '../state';
import { metricChart, parametersLine } from './chart';
import { Component } from './component';

const SAMPLERS = ['tpe', 'random', 'grid', 'cmaes'];
// a trial's state as the run states the chart colors
const AS_RUN: Record<string, RunSummary['status']> = { COMPLETE: 'succeeded', FAIL: 'failed', RUNNING: 'running', WAITING: 'running', PRUNED: 'cancelled' };

/** What a parameter's space field suggests, by the parameter's type. */
export function spacePlaceholder(kind: string): string {
  return kind === 'float' ? 'uniform(0, 1)' : kind === 'int' ? 'int(1, 10)' : 'choice(a, b)';
}

/** The trials as runs, for the metrics chart (a trial without a run gets its number). */
export function trialsAsRuns(study: StudyState): RunSummary[] {
  const objective = study.settings.objective;
  return study.trials.map(t => ({
    id: t.run ?? `trial-${t.number}`,
    status: AS_RUN[t.state] ?? 'running',
    engine: 'local',
    created: null,
    started: null,
    finished: null,
    duration: t.duration ?? null,
    parameters: t.params,
    metrics: typeof t.value === 'number' ? { [objective]: t.value } : {},
    steps: {}
  }));
}

export class TuneComponent extends Component {
  protected select = (s: Readonly<PanelState>) => [s.notebook, s.analysis?.parameters, s.analysis?.metrics, s.study, s.tuneError, s.busy];
  private readonly formBox = h('div', { className: 'cp-tune-form-box' });
  private readonly errorBox = h('div', { className: 'cp-tune-error-box', 'aria-live': 'assertive' });
  private readonly results = h('div', { className: 'cp-tune-results', 'aria-live': 'polite' });
  private form: HTMLFormElement | null = null;
  private formKey: string | null = null;

  render(s: Readonly<PanelState>): void {
    const parameters = s.analysis?.parameters ?? [];
    const metrics = (s.analysis?.metrics ?? []).map(m => m.name);
    if (!s.analysis || !parameters.length || !metrics.length) {
      this.form = null;
      this.formKey = null;
      this.body.replaceChildren(
        h(
          'p',
          { className: 'cp-empty' },
          s.analysis ? 'To tune, the notebook needs a `parameters` cell and a `metrics` cell.' : ''
        )
      );
      return;
    }
    if (!this.body.contains(this.formBox)) {
      this.body.replaceChildren(this.formBox, this.errorBox, this.results);
    }
    const key = `${parameters.map(p => `${p.name}:${p.type}`).join(',')}|${metrics.join(',')}`;
    if (!this.form || key !== this.formKey) {
      this.form = this.build(parameters, metrics);
      this.formKey = key;
      this.formBox.replaceChildren(this.form);
    }
    const start = this.form.querySelector<HTMLButtonElement>('.cp-tune-start');
    if (start) {
      start.disabled = !s.notebook || s.busy;
    }
    this.errorBox.replaceChildren(...(s.tuneError ? [h('p', { className: 'cp-error cp-tune-error', role: 'alert' }, s.tuneError)] : []));
    this.renderResults(s);
  }

  private renderResults(s: Readonly<PanelState>): void {
    const study = s.study;
    if (!study) {
      this.results.replaceChildren();
      return;
    }
    const objective = study.settings.objective;
    const best = study.best;
    const head = h(
      'tr',
      {},
      h('th', { scope: 'col' }, '#'),
      h('th', { scope: 'col' }, 'parameters'),
      h('th', { scope: 'col', className: 'cp-metric' }, objective),
      h('th', { scope: 'col' }, 'state')
    );
    const rows = study.trials.map((t: StudyTrial) => {
      const isBest = best !== null && t.number === best.number;
      return h(
        'tr',
        {
          'data-trial': t.number,
          'data-state': t.state,
          className: isBest ? 'cp-selected cp-best' : '',
          'aria-label': isBest ? `trial ${t.number}, the best so far` : undefined,
          title: t.reason ?? undefined
        },
        h('th', { scope: 'row' }, String(t.number)),
        h('td', { className: 'cp-trial-params' }, parametersLine(t.params)),
        h('td', { className: 'cp-metric', 'data-metric': objective }, formatValue(t.value)),
        h('td', {}, h('span', { className: `cp-pill cp-state-${AS_RUN[t.state] ?? 'running'}` }, t.state.toLowerCase()))
      );
    });
    const table = h(
      'table',
      { className: 'cp-runs-table cp-trials-table', 'aria-label': `trials of study ${study.study}: parameters, ${objective} and state` },
      h('thead', {}, head),
      h('tbody', {}, ...rows)
    );
    const runs = trialsAsRuns(study);
    const chart = runs.some(r => Object.keys(r.metrics).length)
      ? h(
          'figure',
          { className: 'cp-chart cp-tune-chart', 'data-metric': objective },
          h(
            'figcaption',
            {},
            h('span', { className: 'cp-chart-name' }, `${objective} over the trials`),
            h('span', { className: 'cp-chart-range' }, best ? `best ${formatValue(best.value)} (trial ${best.number})` : '')
          ),
          metricChart(objective, runs, id => void this.openRun(id), best?.run ?? null)
        )
      : null;
    const actions = h(
      'div',
      { className: 'cp-form-actions' },
      best?.run
        ? h(
            'button',
            {
              type: 'button',
              className: 'jp-Button jp-mod-accept cp-button cp-small cp-open-best',
              'data-key': 'tune:best',
              'aria-label': `open the run of the best trial, ${best.number} (${objective} ${formatValue(best.value)}), in Run details`,
              onclick: () => void this.openRun(best.run as string)
            },
            'Open best run'
          )
        : null,
      study.live
        ? h(
            'button',
            {
              type: 'button',
              className: 'jp-Button jp-mod-warn cp-button cp-small cp-tune-stop',
              'data-key': 'tune:stop',
              'aria-label': `stop study ${study.study} (the finished trials stay)`,
              onclick: () => void this.actions.cancelTune()
            },
            'Stop'
          )
        : null
    );
    const done = study.trials.filter(t => t.state === 'COMPLETE').length;
    replaceKeepingFocus(
      this.results,
      h(
        'p',
        { className: 'cp-cell-info cp-study-info', 'data-live': String(study.live) },
        `Study ${study.study} — ${study.live ? 'running' : 'ended'}: ${done} of ${study.settings.trials ?? '?'} trials complete` +
          (best ? `; best ${objective} = ${formatValue(best.value)} (${parametersLine(best.params)})` : '')
      ),
      ...(study.error ? [h('p', { className: 'cp-error' }, study.error)] : []),
      actions,
      chart ?? h('span', {}),
      h('div', { className: 'cp-table-wrap' }, table)
    );
  }

  private async openRun(id: string): Promise<void> {
    if (id.startsWith('trial-')) {
      return; // the trial failed before its run started
    }
    await this.actions.selectRun(id);
    document.querySelector<HTMLDetailsElement>('.cp-panel details.cp-detail')?.setAttribute('open', '');
  }

  private build(parameters: Parameter[], metrics: string[]): HTMLFormElement {
    const select = (id: string, label: string, options: string[], help: string) =>
      h(
        'div',
        { className: 'cp-field' },
        h('label', { for: id }, label),
        h('select', { id, name: id, className: 'jp-mod-styled', title: help, 'aria-label': `${label}: ${help}` }, ...options.map(o => h('option', { value: o }, o)))
      );
    const spaces = parameters.map(p => {
      const id = `cp-tune-space-${p.name}`;
      return h(
        'div',
        { className: 'cp-field cp-param', 'data-space': p.name },
        h('label', { for: id }, h('span', {}, p.name), ' ', h('span', { className: 'cp-param-kind' }, p.type)),
        h('input', {
          id,
          name: `space:${p.name}`,
          className: 'jp-mod-styled cp-input',
          type: 'text',
          placeholder: spacePlaceholder(p.type),
          spellcheck: 'false',
          autocomplete: 'off',
          'aria-label': `search space of ${p.name} (${p.type}), e.g. ${spacePlaceholder(p.type)}; empty: not tuned`
        })
      );
    });
    const form = h(
      'form',
      {
        className: 'cp-tune-form',
        'aria-label': 'tune: search the parameters for the best metric',
        onsubmit: (event: Event) => {
          event.preventDefault();
          void this.startStudy(form, parameters);
        }
      },
      select('cp-tune-objective', 'objective', metrics, 'the metric to optimize'),
      select('cp-tune-direction', 'direction', ['maximize', 'minimize'], 'whether a larger or a smaller value is better'),
      h('p', { className: 'cp-caption' }, 'A range per parameter to tune (empty: keep the notebook\u2019s value):'),
      ...spaces,
      h(
        'div',
        { className: 'cp-field' },
        h('label', { for: 'cp-tune-trials' }, 'trials'),
        h('input', {
          id: 'cp-tune-trials',
          name: 'trials',
          className: 'jp-mod-styled cp-input',
          type: 'number',
          min: 1,
          step: 1,
          value: 10,
          'aria-label': 'how many trials (runs) the study makes'
        })
      ),
      select('cp-tune-sampler', 'sampler', SAMPLERS, 'how the next values are chosen'),
      h(
        'div',
        { className: 'cp-form-actions' },
        h(
          'button',
          { type: 'submit', className: 'jp-Button jp-mod-accept cp-button cp-tune-start', 'aria-label': 'Start the tuning study' },
          'Start tuning'
        )
      )
    );
    return form;
  }

  private async startStudy(form: HTMLFormElement, parameters: Parameter[]): Promise<void> {
    const value = (name: string) => (form.elements.namedItem(name) as HTMLInputElement | HTMLSelectElement | null)?.value ?? '';
    const space: Record<string, string> = {};
    for (const p of parameters) {
      const text = (form.querySelector<HTMLInputElement>(`#${CSS.escape(`cp-tune-space-${p.name}`)}`)?.value ?? '').trim();
      if (text) {
        space[p.name] = text;
      }
    }
    if (!Object.keys(space).length) {
      this.store.update({ tuneError: 'Give a range for at least one parameter, e.g. uniform(0, 1).' });
      form.querySelector<HTMLInputElement>('[data-space] input')?.focus();
      return;
    }
    const trials = Number(value('trials'));
    const request: TuneRequest = {
      objective: value('cp-tune-objective'),
      direction: value('cp-tune-direction') === 'minimize' ? 'minimize' : 'maximize',
      space,
      trials: Number.isInteger(trials) ? trials : 0,
      sampler: value('cp-tune-sampler')
    };
    await this.actions.startTune(request);
  }
}
