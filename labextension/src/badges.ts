/**
 * A small badge on every annotated cell naming its step (or its role), kept in step with
 * the cells' tags and `%%step` headers.
 */
import type { Cell } from '@jupyterlab/cells';
import type { NotebookPanel } from '@jupyterlab/notebook';

import { badgeLabel } from './tags';

export const BADGE_CLASS = 'cp-cell-badge';
const ANNOTATED_CLASS = 'cp-annotated';

function tagsOf(cell: Cell): string[] {
  const tags = cell.model.getMetadata('tags');
  return Array.isArray(tags) ? tags.filter((t): t is string => typeof t === 'string') : [];
}

/** Add, update or remove the badge of every cell of `panel`. */
export function updateBadges(panel: NotebookPanel): void {
  for (const cell of panel.content.widgets) {
    if (cell.isDisposed) {
      continue;
    }
    const source = cell.model.type === 'code' ? cell.model.sharedModel.getSource() : '';
    const label = cell.model.type === 'code' ? badgeLabel(tagsOf(cell), source) : null;
    let badge = cell.node.querySelector<HTMLElement>(`:scope > .${BADGE_CLASS}`);
    if (!label) {
      badge?.remove();
      cell.node.classList.remove(ANNOTATED_CLASS);
      continue;
    }
    if (!badge) {
      badge = document.createElement('span');
      badge.className = BADGE_CLASS;
      cell.node.appendChild(badge);
    }
    const role = ['parameters', 'metrics', 'skip'].includes(label) ? label : 'step';
    if (badge.textContent !== label || badge.dataset.role !== role) {
      badge.textContent = label;
      badge.dataset.role = role;
      badge.title = role === 'step' ? `cellpipe step ${label}` : `cellpipe: ${label} cell`;
    }
    cell.node.classList.add(ANNOTATED_CLASS);
  }
}

/** Keep `panel`'s badges current until it is disposed. */
export function trackBadges(panel: NotebookPanel): void {
  let timer = 0;
  const schedule = () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => {
      if (!panel.isDisposed) {
        updateBadges(panel);
      }
    }, 150);
  };
  void panel.context.ready.then(() => {
    updateBadges(panel);
    panel.model?.contentChanged.connect(schedule);
    panel.content.modelContentChanged.connect(schedule);
  });
  panel.disposed.connect(() => window.clearTimeout(timer));
}
