/**
 * The metrics of the last runs as a chart: one small line chart per metric (each on its
 * own scale, stacked so that they fit the sidebar's width), oldest run on the left. A
 * point's tooltip and label give the run, the value and the run's parameters; a point is
 * a button: it opens its run.
 *
 * Plain SVG; its colors are JupyterLab's theme variables (CSS), so it follows the theme.
 */
import type { RunSummary } from '../api';
import { h, replaceKeepingFocus } from '../dom';
import { formatValue } from '../format';
import type { PanelState } from '../state';
import { Component } from './component';

const SVG_NS = 'http://www.w3.org/2000/svg';
export const CHART_RUNS = 12; // the runs a chart shows, the newest ones
const WIDTH = 260;
const HEIGHT = 64;
const PAD = { left: 6, right: 6, top: 8, bottom: 8 };

function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number> = {},
  text?: string
): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    node.setAttribute(key, String(value));
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/** The parameters of a run in one line (`lr=0.1, depth=3`). */
export function parametersLine(parameters: Record<string, unknown> | undefined): string {
  const entries = Object.entries(parameters ?? {});
  return entries.length ? entries.map(([k, v]) => `${k}=${formatValue(v)}`).join(', ') : 'no parameters';
}

/** The metric names of `runs`, in the order they first appear. */
export function metricNames(runs: readonly RunSummary[]): string[] {
  const names: string[] = [];
  for (const run of runs) {
    for (const name of Object.keys(run.metrics ?? {})) {
      if (!names.includes(name)) {
        names.push(name);
      }
    }
  }
  return names;
}

/** One metric over `runs` (oldest first) as an `<svg>`. */
export function metricChart(
  metric: string,
  runs: readonly RunSummary[],
  onSelect: (id: string) => void,
  selected: string | null
): SVGSVGElement {
  const points = runs
    .map((run, i) => ({ run, i, value: run.metrics?.[metric] }))
    .filter((p): p is { run: RunSummary; i: number; value: number } => typeof p.value === 'number');
  const values = points.map(p => p.value);
  const low = Math.min(...values);
  const high = Math.max(...values);
  const x = (i: number) => PAD.left + (runs.length > 1 ? (i / (runs.length - 1)) * (WIDTH - PAD.left - PAD.right) : (WIDTH - PAD.left - PAD.right) / 2);
  const y = (v: number) =>
    high === low ? HEIGHT / 2 : HEIGHT - PAD.bottom - ((v - low) / (high - low)) * (HEIGHT - PAD.top - PAD.bottom);
  const root = svg('svg', {
    class: 'cp-chart-svg',
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: 'group',
    'aria-label': `${metric} over the last ${runs.length} runs: from ${formatValue(points[0]?.value)} to ${formatValue(points[points.length - 1]?.value)}`,
    'data-metric': metric
  });
  root.appendChild(svg('line', { class: 'cp-chart-axis', x1: PAD.left, x2: WIDTH - PAD.right, y1: HEIGHT - PAD.bottom, y2: HEIGHT - PAD.bottom }));
  if (points.length > 1) {
    const d = points.map((p, k) => `${k ? 'L' : 'M'} ${x(p.i).toFixed(1)} ${y(p.value).toFixed(1)}`).join(' ');
    root.appendChild(svg('path', { class: 'cp-chart-line', d }));
  }
  for (const p of points) {
    const label = `run ${p.run.id}: ${metric} = ${formatValue(p.value)}; ${parametersLine(p.run.parameters)}`;
    const dot = svg('circle', {
      class: `cp-chart-point cp-state-${p.run.status}${p.run.id === selected ? ' cp-selected' : ''}`,
      cx: x(p.i).toFixed(1),
      cy: y(p.value).toFixed(1),
      r: 4,
      tabindex: 0,
      role: 'button',
      'data-run': p.run.id,
      'data-key': `chart:${metric}:${p.run.id}`,
      'aria-label': `${label} — open this run`
    });
    dot.appendChild(svg('title', {}, label));
    dot.addEventListener('click', () => onSelect(p.run.id));
    dot.addEventListener('keydown', event => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        onSelect(p.run.id);
      }
    });
    root.appendChild(dot);
  }
  return root;
}

export class MetricsChartComponent extends Component {
  protected select = (s: Readonly<PanelState>) => [s.runs, s.selectedRun];

  render(s: Readonly<PanelState>): void {
    const runs = s.runs.slice(0, CHART_RUNS).reverse(); // the list is newest first
    const names = metricNames(runs);
    if (!names.length) {
      this.body.replaceChildren();
      return;
    }
    const charts = names.map(name => {
      const values = runs.map(r => r.metrics?.[name]).filter((v): v is number => typeof v === 'number');
      const last = values[values.length - 1];
      return h(
        'figure',
        { className: 'cp-chart', 'data-metric': name },
        h(
          'figcaption',
          {},
          h('span', { className: 'cp-chart-name' }, name),
          h(
            'span',
            { className: 'cp-chart-range' },
            `last ${formatValue(last)} · min ${formatValue(Math.min(...values))} · max ${formatValue(Math.max(...values))}`
          )
        ),
        metricChart(name, runs, id => void this.actions.selectRun(id), s.selectedRun)
      );
    });
    replaceKeepingFocus(
      this.body,
      h('h3', { className: 'cp-subtitle' }, `Metrics of the last ${runs.length} run${runs.length > 1 ? 's' : ''}`),
      ...charts,
      h('p', { className: 'cp-caption' }, 'Oldest run on the left; hover or focus a point for its run and parameters.')
    );
  }
}
