/**
 * The Runs section (the notebook's runs with their metrics and the parameters that
 * differ) and the Run details section (the selected run's steps, their logs and reports).
 */
import * as api from '../api';
import { h, replaceKeepingFocus } from '../dom';
import { describe, formatDuration, formatTime, formatValue, stepErrorText } from '../format';
import type { PanelState } from '../state';
import { Component } from './component';

export class RunsComponent extends Component {
  protected select = (s: Readonly<PanelState>) => [s.notebook, s.runs, s.selectedRun];

  render(s: Readonly<PanelState>): void {
    const runs = s.runs;
    if (!runs.length) {
      this.body.replaceChildren(h('p', { className: 'cp-empty' }, s.notebook ? 'No runs yet.' : ''));
      return;
    }
    const metricNames: string[] = [];
    for (const run of runs) {
      for (const name of Object.keys(run.metrics ?? {})) {
        if (!metricNames.includes(name)) {
          metricNames.push(name);
        }
      }
    }
    const paramNames: string[] = [];
    for (const name of new Set(runs.flatMap(r => Object.keys(r.parameters ?? {})))) {
      if (new Set(runs.map(r => JSON.stringify(r.parameters?.[name]))).size > 1) {
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
    const rows = runs.map(run => {
      const selected = run.id === s.selectedRun;
      return h(
        'tr',
        { 'data-run': run.id, className: selected ? 'cp-selected' : '', 'aria-selected': String(selected) },
        h(
          'th',
          { scope: 'row' },
          h(
            'button',
            {
              type: 'button',
              className: 'cp-link cp-run-id',
              title: run.id,
              'data-key': `run:${run.id}`,
              'aria-label': `show run ${run.id}`,
              onclick: () => void this.actions.selectRun(run.id)
            },
            run.id
          )
        ),
        h('td', {}, h('span', { className: `cp-pill cp-state-${run.status}` }, run.status)),
        h('td', {}, formatTime(run.started ?? run.created)),
        h('td', {}, formatDuration(run.duration)),
        ...metricNames.map(m => h('td', { className: 'cp-metric', 'data-metric': m }, formatValue(run.metrics?.[m]))),
        ...paramNames.map(p => h('td', { className: 'cp-param' }, formatValue(run.parameters?.[p])))
      );
    });
    const table = h(
      'table',
      { className: 'cp-runs-table', 'aria-label': 'runs: metrics and differing parameters' },
      h('thead', {}, head),
      h('tbody', {}, ...rows)
    );
    replaceKeepingFocus(
      this.body,
      h('div', { className: 'cp-table-wrap' }, table),
      h(
        'p',
        { className: 'cp-caption' },
        paramNames.length ? 'Parameters shown are those that differ between runs.' : 'Parameters are the same in every run.'
      )
    );
  }
}

export class RunDetailComponent extends Component {
  protected select = (s: Readonly<PanelState>) => [s.notebook, s.selectedDetail];

  render(s: Readonly<PanelState>): void {
    const detail = s.selectedDetail;
    const path = s.notebook?.context.path;
    if (!detail || !path) {
      this.body.replaceChildren(h('p', { className: 'cp-empty' }, 'Select a run to see its steps, logs and reports.'));
      return;
    }
    const output = h('div', { className: 'cp-step-output' });
    const list = h('ul', { className: 'cp-run-steps', 'aria-label': `steps of run ${detail.id}` });
    for (const [name, step] of Object.entries(detail.steps)) {
      const state = step.status ?? 'pending';
      const problem = step.error ? stepErrorText(step.error) : step.message;
      const button = (label: string, what: string, show: () => Promise<void>) =>
        h(
          'button',
          {
            type: 'button',
            className: 'jp-Button cp-button cp-small',
            'data-key': `${what}:${name}`,
            'aria-label': `${what} of step ${name}`,
            onclick: () => void show()
          },
          label
        );
      list.append(
        h(
          'li',
          { 'data-step': name },
          h('span', { className: 'cp-run-step-name' }, name),
          h('span', { className: `cp-pill cp-state-${state}` }, state),
          h('span', { className: 'cp-run-step-time' }, formatDuration(step.duration ?? step.elapsed)),
          button('Log', 'log', () => showLog(output, path, detail.id, name)),
          button('Report', 'report', () => showReport(output, path, detail.id, name)),
          problem ? h('div', { className: 'cp-hint cp-step-problem' }, problem) : null
        )
      );
    }
    replaceKeepingFocus(this.body, h('p', { className: 'cp-cell-info' }, `Run ${detail.id} — ${detail.status}`), list, output);
  }
}

async function showLog(output: HTMLElement, path: string, run: string, step: string): Promise<void> {
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

async function showReport(output: HTMLElement, path: string, run: string, step: string): Promise<void> {
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
    h('a', { href: api.reportUrl(path, run, step), target: '_blank', rel: 'noopener noreferrer' }, 'open the report in a new tab')
  );
}
