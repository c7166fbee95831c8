/**
 * The Runs section (the notebook's runs: a compact table that fits the sidebar, each row
 * opening a details row with its times, metrics and parameters, and "run again with these
 * parameters") and the Run details section (the selected or running run: Stop, its steps,
 * their logs (followed while a step runs), reports, figures and errors).
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import * as api from '../api';
import { h, replaceKeepingFocus } from '../dom';
import { describe, formatDuration, formatTime, formatValue, stepErrorText } from '../format';
import type { PanelState } from '../state';
import { metricNames, parametersLine } from './chart';
import { Component } from './component';

const LOG_POLL_MS = 1000; // a running step's log is read again this often
const RUNNING = new Set(['running', 'retrying']);
const WITH_REPORT = new Set(['succeeded', 'cached', 'failed']);

/** Terminal colors out of a traceback (the engine keeps IPython's ANSI codes). */
export function plainText(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');
}

export class RunsComponent extends Component {
  protected select = (s: Readonly<PanelState>) => [s.notebook, s.runs, s.selectedRun, s.busy];
  private readonly open = new Set<string>(); // the runs whose details row is open

  render(s: Readonly<PanelState>): void {
    const runs = s.runs;
    if (!runs.length) {
      this.body.replaceChildren(h('p', { className: 'cp-empty' }, s.notebook ? 'No runs yet.' : ''));
      return;
    }
    const metrics = metricNames(runs);
    const main = metrics[0]; // the one metric with a column; the others are in the details
    const head = h(
      'tr',
      {},
      h('th', { scope: 'col' }, 'run'),
      h('th', { scope: 'col' }, 'status'),
      main ? h('th', { scope: 'col', className: 'cp-metric', title: main }, main) : null
    );
    const rows = runs.flatMap(run => {
      const selected = run.id === s.selectedRun;
      const open = this.open.has(run.id);
      const detailsId = `cp-run-details-${run.id}`;
      const row = h(
        'tr',
        { 'data-run': run.id, className: selected ? 'cp-selected' : '', 'aria-selected': String(selected) },
        h(
          'th',
          { scope: 'row' },
          h(
            'button',
            {
              type: 'button',
              className: 'cp-link cp-expand',
              'data-key': `expand:${run.id}`,
              'aria-expanded': String(open),
              'aria-controls': detailsId,
              'aria-label': `${open ? 'hide' : 'show'} the times, metrics and parameters of run ${run.id}`,
              onclick: () => {
                if (open) {
                  this.open.delete(run.id);
                } else {
                  this.open.add(run.id);
                }
                this.render(this.store.get());
              }
            },
            open ? '▾' : '▸'
          ),
          h(
            'button',
            {
              type: 'button',
              className: 'cp-link cp-run-id',
              title: `${run.id}: ${parametersLine(run.parameters)}`,
              'data-key': `run:${run.id}`,
              'aria-label': `show run ${run.id}`,
              onclick: () => void this.actions.selectRun(run.id)
            },
            shortId(run.id)
          )
        ),
        h('td', {}, h('span', { className: `cp-pill cp-state-${run.status}` }, run.status)),
        main ? h('td', { className: 'cp-metric', 'data-metric': main }, formatValue(run.metrics?.[main])) : null
      );
      if (!open) {
        return [row];
      }
      const facts: [string, string][] = [
        ['started', formatTime(run.started ?? run.created)],
        ['time', formatDuration(run.duration)],
        ['engine', run.engine ?? ''],
        ...metrics.filter(m => m in (run.metrics ?? {})).map(m => [m, formatValue(run.metrics?.[m])] as [string, string]),
        ...Object.entries(run.parameters ?? {}).map(([k, v]) => [k, formatValue(v)] as [string, string])
      ];
      const paramNames = new Set(Object.keys(run.parameters ?? {}));
      const details = h(
        'tr',
        { className: 'cp-run-details', id: detailsId, 'data-details-of': run.id },
        h(
          'td',
          { colspan: main ? 3 : 2 },
          h(
            'dl',
            { className: 'cp-facts' },
            ...facts.flatMap(([k, v]) => [
              h('dt', { className: paramNames.has(k) ? 'cp-param' : metrics.includes(k) ? 'cp-metric' : '' }, k),
              h('dd', { 'data-fact': k }, v || '—')
            ])
          ),
          h(
            'div',
            { className: 'cp-form-actions' },
            h(
              'button',
              {
                type: 'button',
                className: 'jp-Button cp-button cp-small cp-run-again',
                disabled: s.busy || !s.notebook,
                'aria-label': `run again with the parameters of run ${run.id}`,
                onclick: () => void this.actions.useParameters(run.parameters ?? {}, true)
              },
              'Run again'
            ),
            h(
              'button',
              {
                type: 'button',
                className: 'jp-Button cp-button cp-small cp-use-parameters',
                'aria-label': `put the parameters of run ${run.id} in the parameters form`,
                onclick: () => void this.actions.useParameters(run.parameters ?? {}, false)
              },
              'Use parameters'
            )
          )
        )
      );
      return [row, details];
    });
    const table = h(
      'table',
      { className: 'cp-runs-table', 'aria-label': 'runs: status and metric; open a row for its parameters' },
      h('thead', {}, head),
      h('tbody', {}, ...rows)
    );
    replaceKeepingFocus(this.body, h('div', { className: 'cp-table-wrap' }, table));
  }
}

/** `20261203-112301-c74e30` → `11:23 c74e` (the whole id is the title). */
export function shortId(id: string): string {
  const m = /^\d{8}-(\d{2})(\d{2})\d{2}-([0-9a-f]{4})/.exec(id);
  return m ? `${m[1]}:${m[2]} ${m[3]}` : id;
}

type Shown = { kind: 'log' | 'report'; run: string; step: string } | null;

export class RunDetailComponent extends Component {
  protected select = (s: Readonly<PanelState>) => [s.notebook, s.selectedDetail, s.busy];
  private readonly top = h('div', { className: 'cp-run-detail-top' });
  private readonly output = h('div', { className: 'cp-step-output', 'aria-live': 'off' });
  private shown: Shown = null;
  private logTimer = 0;
  private readonly figures = new Map<string, api.Figure[] | string>(); // run/step → figures, or why none

  render(s: Readonly<PanelState>): void {
    const detail = s.selectedDetail;
    const path = s.notebook?.context.path;
    if (!detail || !path) {
      this.shown = null;
      this.output.replaceChildren();
      this.body.replaceChildren(h('p', { className: 'cp-empty' }, 'Select a run to see its steps, logs, figures and reports.'));
      return;
    }
    if (this.shown && this.shown.run !== detail.id) {
      this.shown = null;
      this.output.replaceChildren();
    }
    if (!this.body.contains(this.output)) {
      this.body.replaceChildren(this.top, this.output);
    }
    const running = detail.live && detail.status === 'running';
    const actions = h(
      'div',
      { className: 'cp-form-actions' },
      running
        ? h(
            'button',
            {
              type: 'button',
              className: 'jp-Button jp-mod-warn cp-button cp-small cp-cancel',
              'data-key': `cancel:${detail.id}`,
              'aria-label': `stop run ${detail.id} (finished steps stay cached)`,
              onclick: () => void this.actions.cancelRun(detail.id)
            },
            'Stop'
          )
        : null,
      h(
        'button',
        {
          type: 'button',
          className: 'jp-Button cp-button cp-small cp-run-again',
          'data-key': `again:${detail.id}`,
          disabled: s.busy,
          'aria-label': `run again with the parameters of run ${detail.id}`,
          onclick: () => void this.actions.useParameters(detail.parameters ?? {}, true)
        },
        'Run again with these parameters'
      )
    );
    const list = h('ul', { className: 'cp-run-steps', 'aria-label': `steps of run ${detail.id}` });
    for (const [name, step] of Object.entries(detail.steps)) {
      list.append(this.stepItem(path, detail, name, step));
    }
    replaceKeepingFocus(
      this.top,
      h('p', { className: 'cp-cell-info' }, `Run ${detail.id} — ${detail.status}`),
      h('p', { className: 'cp-run-parameters' }, `parameters: ${parametersLine(detail.parameters)}`),
      actions,
      list
    );
    this.followLog();
  }

  private stepItem(path: string, detail: api.RunDetail, name: string, step: api.StepState): HTMLElement {
    const state = step.status ?? 'pending';
    const error = step.error;
    const problem = error ? stepErrorText(error) : step.message;
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
    const item = h(
      'li',
      { 'data-step': name, 'data-state': state },
      h('span', { className: 'cp-run-step-name' }, name),
      h('span', { className: `cp-pill cp-state-${state}` }, state),
      h('span', { className: 'cp-run-step-time' }, formatDuration(step.duration ?? step.elapsed)),
      button('Log', 'log', () => this.showLog(path, detail.id, name)),
      WITH_REPORT.has(state) ? button('Report', 'report', () => this.showReport(path, detail.id, name)) : null,
      problem ? h('div', { className: 'cp-hint cp-step-problem' }, problem) : null
    );
    if (error && error.cell !== null && error.cell !== undefined) {
      const cell = error.cell;
      const where = `cell ${cell + 1}${error.line ? `, line ${error.line}` : ''}`;
      item.append(
        h(
          'button',
          {
            type: 'button',
            className: 'cp-link cp-goto-cell',
            'data-key': `goto:${name}`,
            'aria-label': `go to ${where}, where step ${name} failed`,
            onclick: () => this.actions.goToCell(cell, error.line ?? null)
          },
          `Go to ${where}`
        )
      );
    }
    if (error?.traceback) {
      item.append(
        h(
          'details',
          { className: 'cp-traceback' },
          h('summary', {}, 'Traceback'),
          h('pre', { tabindex: 0, 'aria-label': `traceback of step ${name}` }, plainText(error.traceback))
        )
      );
    }
    if (!detail.live && WITH_REPORT.has(state)) {
      item.append(this.thumbnails(path, detail.id, name));
    }
    return item;
  }

  /** The step's figures as thumbnails (loaded once per run and step). */
  private thumbnails(path: string, run: string, step: string): HTMLElement {
    const key = `${run}/${step}`;
    const known = this.figures.get(key);
    const box = h('div', { className: 'cp-thumbs', 'data-figures-of': step });
    if (known === undefined) {
      this.figures.set(key, 'loading');
      api
        .stepFigures(path, run, step)
        .then(found => this.figures.set(key, found.figures))
        .catch(error => this.figures.set(key, describe(error)))
        .finally(() => {
          if (this.store.get().selectedDetail?.id === run) {
            this.render(this.store.get());
          }
        });
      return box;
    }
    if (typeof known === 'string' || !known.length) {
      return box;
    }
    box.setAttribute('role', 'list');
    box.setAttribute('aria-label', `figures of step ${step}`);
    for (const figure of known) {
      const url = api.figureUrl(path, run, step, figure.number);
      const label = `figure ${figure.number} of step ${step}${figure.cell >= 0 ? ` (cell ${figure.cell + 1})` : ''}`;
      box.append(
        h(
          'button',
          {
            type: 'button',
            role: 'listitem',
            className: 'cp-thumb',
            'data-key': `figure:${step}:${figure.number}`,
            'data-figure': figure.number,
            'aria-label': `${label}: open it large`,
            title: label,
            onclick: () => void openFigure(url, label, figure)
          },
          h('img', { src: url, alt: label, loading: 'lazy', width: 72, height: 54 })
        )
      );
    }
    return box;
  }

  private async showLog(path: string, run: string, step: string): Promise<void> {
    this.shown = { kind: 'log', run, step };
    const pre = h('pre', { className: 'cp-log', tabindex: 0, 'aria-label': `log of step ${step}` });
    this.output.replaceChildren(h('h3', { className: 'cp-subtitle' }, `Log of ${step}`), pre);
    await this.readLog(path, run, step, pre);
    this.followLog();
  }

  private async readLog(path: string, run: string, step: string, pre: HTMLElement): Promise<void> {
    try {
      const text = (await api.stepLog(path, run, step)) || '(empty)';
      const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      if (pre.textContent !== text) {
        pre.textContent = text;
        if (atEnd) {
          pre.scrollTop = pre.scrollHeight; // following the end, as `tail -f`
        }
      }
    } catch (error) {
      if (error instanceof api.ApiError && error.status === 404) {
        pre.textContent = '(no log yet: the step has not started)';
      } else {
        this.output.replaceChildren(h('p', { className: 'cp-error' }, describe(error)));
      }
    }
  }

  /** While the log shown is of a running step of the live run, read it again. */
  private followLog(): void {
    window.clearTimeout(this.logTimer);
    const s = this.store.get();
    const shown = this.shown;
    const detail = s.selectedDetail;
    const path = s.notebook?.context.path;
    if (!shown || shown.kind !== 'log' || !detail || detail.id !== shown.run || !path) {
      return;
    }
    const state = detail.steps[shown.step]?.status ?? 'pending';
    if (!detail.live && !RUNNING.has(state)) {
      // ended: one last read, for what was printed after the previous one
      const pre = this.output.querySelector<HTMLElement>('pre.cp-log');
      if (pre && pre.dataset.final !== 'true') {
        pre.dataset.final = 'true';
        void this.readLog(path, shown.run, shown.step, pre);
      }
      return;
    }
    this.logTimer = window.setTimeout(() => {
      const pre = this.output.querySelector<HTMLElement>('pre.cp-log');
      if (pre && this.shown === shown) {
        pre.dataset.following = 'true';
        void this.readLog(path, shown.run, shown.step, pre).then(() => this.followLog());
      }
    }, LOG_POLL_MS);
  }

  private async showReport(path: string, run: string, step: string): Promise<void> {
    this.shown = { kind: 'report', run, step };
    let html: string;
    try {
      html = await api.stepReport(path, run, step);
    } catch (error) {
      this.output.replaceChildren(h('p', { className: 'cp-error' }, describe(error)));
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
    this.output.replaceChildren(
      h('h3', { className: 'cp-subtitle' }, `Report of ${step}`),
      frame,
      h('a', { href: api.reportUrl(path, run, step), target: '_blank', rel: 'noopener noreferrer' }, 'open the report in a new tab')
    );
  }

  dispose(): void {
    window.clearTimeout(this.logTimer);
    super.dispose();
  }
}

/** A figure, large, in a dialog. */
async function openFigure(url: string, label: string, figure: api.Figure): Promise<void> {
  const size = figure.width && figure.height ? ` — ${figure.width}×${figure.height} px` : '';
  const body = new Widget({
    node: h(
      'div',
      { className: 'cp-figure-large' },
      h('img', { src: url, alt: label }),
      h('p', { className: 'cp-caption' }, `${label}${size}`)
    )
  });
  await showDialog({ title: label, body, buttons: [Dialog.okButton({ label: 'Close' })] });
}
