/**
 * The Steps section: the steps in notebook order with their state in the run shown, and
 * under them the diagnostics; each of the two re-renders on its own.
 */
import { stateOf } from '../dag';
import { h, replaceKeepingFocus } from '../dom';
import { cellRanges, formatValue } from '../format';
import { PanelState, stepStates, stepStatesKey } from '../state';
import { Component } from './component';

export class StepsComponent extends Component {
  protected select = (s: Readonly<PanelState>) => [s.notebook, s.analysis?.steps, stepStatesKey(s.run)];

  render(s: Readonly<PanelState>): void {
    const steps = s.analysis?.steps;
    if (!steps) {
      this.body.replaceChildren(h('p', { className: 'cp-empty' }, s.notebook ? '' : 'No notebook.'));
      return;
    }
    const states = stepStates(s.run);
    const list = h('ol', { className: 'cp-steps', 'aria-label': 'steps in notebook order' });
    for (const step of steps) {
      const state = stateOf(states, step.name);
      const cells = cellRanges(step.cells.map(c => c.index + 1));
      const settings = Object.entries(step.settings)
        .map(([k, v]) => `${k}:${formatValue(v)}`)
        .join(' ');
      list.append(
        h(
          'li',
          { className: `cp-step cp-state-${state}`, 'data-step': step.name, 'data-state': state },
          h(
            'button',
            {
              type: 'button',
              className: 'cp-link cp-step-name',
              'data-key': `step:${step.name}`,
              'aria-label': `step ${step.name}, ${state}: go to its first cell`,
              onclick: () => step.cells.length && this.actions.goToCell(step.cells[0].index, null)
            },
            step.name
          ),
          h('span', { className: `cp-pill cp-state-${state}` }, state),
          h('span', { className: 'cp-step-cells' }, `${step.cells.length > 1 ? 'cells' : 'cell'} ${cells}`),
          settings ? h('span', { className: 'cp-step-settings' }, settings) : null
        )
      );
    }
    replaceKeepingFocus(this.body, list);
  }
}

export class DiagnosticsComponent extends Component {
  protected select = (s: Readonly<PanelState>) => [s.analysis?.diagnostics];

  render(s: Readonly<PanelState>): void {
    const diagnostics = s.analysis?.diagnostics;
    if (!diagnostics) {
      this.body.replaceChildren();
      return;
    }
    if (!diagnostics.length) {
      this.body.replaceChildren(h('p', { className: 'cp-ok' }, 'No diagnostics.'));
      return;
    }
    const list = h('ul', { className: 'cp-diagnostics', 'aria-label': 'diagnostics' });
    diagnostics.forEach((d, i) => {
      const where = d.cell !== null ? `cell ${d.cell + 1}${d.line !== null ? `, line ${d.line}` : ''}` : '';
      list.append(
        h(
          'li',
          { className: `cp-diagnostic cp-${d.severity}` },
          h(
            'button',
            {
              type: 'button',
              className: 'cp-link cp-diagnostic-button',
              'data-key': `diagnostic:${i}:${d.code}`,
              disabled: d.cell === null,
              'aria-label': `${d.severity} ${d.code} at ${where || 'the notebook'}: ${d.message}`,
              onclick: () => d.cell !== null && this.actions.goToCell(d.cell, d.line)
            },
            h('span', { className: 'cp-code' }, d.code),
            ' ',
            h('span', { className: 'cp-where' }, where),
            ' ',
            h('span', { className: 'cp-message' }, d.message)
          ),
          d.hint ? h('div', { className: 'cp-hint' }, `fix: ${d.hint}`) : null
        )
      );
    });
    replaceKeepingFocus(this.body, h('h3', { className: 'cp-subtitle' }, 'Diagnostics'), list);
  }
}
