/**
 * The Graph section: the DAG colored by the run shown, its caption and legend.
 */
import { renderDag } from '../dag';
import { h, replaceKeepingFocus } from '../dom';
import { PanelState, stepReasons, stepStates, stepStatesKey } from '../state';
import { Component } from './component';

const LEGEND = ['pending', 'running', 'succeeded', 'cached', 'failed', 'skipped'];

export class DagComponent extends Component {
  protected select = (s: Readonly<PanelState>) => [
    s.analysis?.steps,
    s.analysis?.edges,
    stepStatesKey(s.run),
    JSON.stringify(stepReasons(s.run)),
    s.run?.id,
    s.run?.status
  ];

  render(s: Readonly<PanelState>): void {
    const analysis = s.analysis;
    if (!analysis || !analysis.steps.length) {
      this.body.replaceChildren(h('p', { className: 'cp-empty' }, analysis ? 'No steps.' : ''));
      return;
    }
    const graph = renderDag(analysis.steps, analysis.edges, {
      states: stepStates(s.run),
      reasons: stepReasons(s.run),
      onSelect: step => {
        const info = analysis.steps.find(candidate => candidate.name === step);
        if (info?.cells.length) {
          this.actions.goToCell(info.cells[0].index, null);
        }
      }
    });
    for (const node of graph.querySelectorAll<SVGElement>('[data-step]')) {
      node.dataset.key = `dag:${node.dataset.step}`; // a focused node stays focused
    }
    const caption = s.run ? `Colored by run ${s.run.id} (${s.run.status})` : 'No run yet: every step is pending.';
    replaceKeepingFocus(
      this.body,
      h('div', { className: 'cp-dag' }, graph),
      h('div', { className: 'cp-caption' }, caption),
      h(
        'div',
        { className: 'cp-legend', 'aria-hidden': 'true' },
        ...LEGEND.map(state => h('span', { className: `cp-pill cp-state-${state}` }, state))
      )
    );
  }
}
