/**
 * The pipeline's DAG as SVG: dagre lays it out, we draw what it computed.
 */
import * as dagre from '@dagrejs/dagre';

import type { Edge, StepInfo } from './api';

const SVG_NS = 'http://www.w3.org/2000/svg';
const CHAR_WIDTH = 7.2; // px per character of the node and edge label fonts (approximate)
const NODE_HEIGHT = 30;
const LABEL_HEIGHT = 14;
const MAX_LABEL_NAMES = 2;

export interface DagOptions {
  /** Step name → run state (pending, running, succeeded, failed, cached, skipped, …). */
  states: Record<string, string>;
  /** Step name → why it failed, was skipped or was cancelled (its title and label say it). */
  reasons?: Record<string, string>;
  /** Called when a node is clicked or activated with Enter / Space. */
  onSelect: (step: string) => void;
}

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

/** The label an edge shows: the variables it carries, shortened when there are many. */
export function edgeLabel(variables: string[]): string {
  if (variables.length <= MAX_LABEL_NAMES) {
    return variables.join(', ');
  }
  return `${variables.slice(0, MAX_LABEL_NAMES).join(', ')} +${variables.length - MAX_LABEL_NAMES}`;
}

/** The state class of a step; steps that have not reported yet are pending. */
export function stateOf(states: Record<string, string>, step: string): string {
  const state = states[step];
  if (!state) {
    return 'pending';
  }
  return state === 'retrying' ? 'running' : state;
}

/** Lay the steps and edges out with dagre and draw them as an `<svg>`. */
export function renderDag(steps: StepInfo[], edges: Edge[], options: DagOptions): SVGSVGElement {
  const graph = new dagre.graphlib.Graph({ multigraph: false });
  graph.setGraph({ rankdir: 'TB', nodesep: 24, ranksep: 36, edgesep: 12, marginx: 8, marginy: 8 });
  graph.setDefaultEdgeLabel(() => ({}));
  for (const step of steps) {
    graph.setNode(step.name, {
      label: step.name,
      width: Math.max(64, step.name.length * CHAR_WIDTH + 24),
      height: NODE_HEIGHT
    });
  }
  const names = new Set(steps.map(s => s.name));
  for (const edge of edges) {
    if (!names.has(edge.from) || !names.has(edge.to)) {
      continue;
    }
    const label = edgeLabel(edge.variables);
    graph.setEdge(edge.from, edge.to, {
      label,
      width: label.length * CHAR_WIDTH * 0.85,
      height: label ? LABEL_HEIGHT : 0,
      labelpos: 'c'
    });
  }
  dagre.layout(graph);
  const size = graph.graph();
  const width = Math.max(1, Math.ceil(size.width ?? 1));
  const height = Math.max(1, Math.ceil(size.height ?? 1));

  const root = svg('svg', {
    class: 'cp-dag-svg',
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: 'group',
    'aria-label': `pipeline graph: ${steps.length} steps, ${graph.edgeCount()} edges`
  });
  root.style.maxWidth = '100%';
  root.style.height = 'auto';
  const defs = svg('defs');
  const marker = svg('marker', {
    id: 'cp-arrow',
    viewBox: '0 0 10 10',
    refX: 9,
    refY: 5,
    markerWidth: 7,
    markerHeight: 7,
    orient: 'auto-start-reverse'
  });
  marker.appendChild(svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'cp-dag-arrow' }));
  defs.appendChild(marker);
  root.appendChild(defs);

  const edgeLayer = svg('g', { class: 'cp-dag-edges' });
  for (const e of graph.edges()) {
    const data = graph.edge(e) as dagre.GraphEdge & { label?: string };
    const points = data.points ?? [];
    if (!points.length) {
      continue;
    }
    const source = edges.find(x => x.from === e.v && x.to === e.w);
    const group = svg('g', {
      class: `cp-dag-edge${source?.explicit ? ' cp-explicit' : ''}`,
      'data-from': e.v,
      'data-to': e.w
    });
    const d = points.map((p, i) => `${i ? 'L' : 'M'} ${p.x.toFixed(1)} ${p.y.toFixed(1)}`).join(' ');
    group.appendChild(svg('path', { d, 'marker-end': 'url(#cp-arrow)' }));
    const vars = source?.variables ?? [];
    group.appendChild(
      svg('title', {}, vars.length ? `${e.v} → ${e.w}: ${vars.join(', ')}` : `${e.v} → ${e.w} (after)`)
    );
    if (data.label && data.x !== undefined && data.y !== undefined) {
      group.appendChild(
        svg(
          'text',
          { x: data.x, y: data.y + 4, class: 'cp-dag-edge-label', 'text-anchor': 'middle' },
          data.label
        )
      );
    }
    edgeLayer.appendChild(group);
  }
  root.appendChild(edgeLayer);

  const nodeLayer = svg('g', { class: 'cp-dag-nodes' });
  for (const step of steps) {
    const node = graph.node(step.name);
    const state = stateOf(options.states, step.name);
    const reason = options.reasons?.[step.name];
    const group = svg('g', {
      class: `cp-dag-node cp-state-${state}`,
      'data-step': step.name,
      'data-state': state,
      transform: `translate(${(node.x - node.width / 2).toFixed(1)},${(node.y - node.height / 2).toFixed(1)})`,
      tabindex: 0,
      role: 'button',
      'aria-label': `step ${step.name}: ${state}${reason ? ` — ${reason}` : ''}`
    });
    group.appendChild(svg('rect', { width: node.width, height: node.height, rx: 6, ry: 6 }));
    group.appendChild(
      svg('text', { x: node.width / 2, y: node.height / 2 + 4, 'text-anchor': 'middle' }, step.name)
    );
    group.appendChild(svg('title', {}, `${step.name} (${state})${reason ? `: ${reason}` : ''}`));
    group.addEventListener('click', () => options.onSelect(step.name));
    group.addEventListener('keydown', event => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        options.onSelect(step.name);
      }
    });
    nodeLayer.appendChild(group);
  }
  root.appendChild(nodeLayer);
  return root;
}
