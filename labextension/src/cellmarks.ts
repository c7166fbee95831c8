/**
 * The diagnostics on their cells: a cell with a diagnostic gets the class
 * `cp-has-diagnostic` (its left edge is marked) and, under its input, one line per
 * diagnostic (`.cp-cell-diagnostic`) with the code, the line and the message.
 *
 * The marks follow the analysis shown (of the saved file, or of the editor's cells as the
 * user types), so a name read before any cell defines it is flagged on its cell at once.
 */
import type { NotebookPanel } from '@jupyterlab/notebook';

import type { Diagnostic } from './api';

export const MARKED_CLASS = 'cp-has-diagnostic';
export const NOTE_CLASS = 'cp-cell-diagnostics';

/** Put `diagnostics` on the cells of `panel` (and take the old marks off). */
export function markCells(panel: NotebookPanel | null, diagnostics: readonly Diagnostic[]): void {
  if (!panel || panel.isDisposed) {
    return;
  }
  const byCell = new Map<number, Diagnostic[]>();
  for (const d of diagnostics) {
    if (d.cell !== null && d.cell !== undefined) {
      byCell.set(d.cell, [...(byCell.get(d.cell) ?? []), d]);
    }
  }
  panel.content.widgets.forEach((cell, index) => {
    if (cell.isDisposed) {
      return;
    }
    const found = byCell.get(index) ?? [];
    const worst = found.some(d => d.severity === 'error') ? 'error' : found.length ? 'warning' : null;
    cell.node.classList.toggle(MARKED_CLASS, worst !== null);
    if (worst) {
      cell.node.dataset.cpSeverity = worst;
    } else {
      delete cell.node.dataset.cpSeverity;
    }
    let note = cell.node.querySelector<HTMLElement>(`:scope > .${NOTE_CLASS}`);
    if (!found.length) {
      note?.remove();
      return;
    }
    const text = found.map(d => `${d.code}${d.line !== null ? ` line ${d.line}` : ''}: ${d.message}`);
    const key = JSON.stringify(text);
    if (note?.dataset.key === key) {
      return;
    }
    if (!note) {
      note = document.createElement('div');
      note.className = NOTE_CLASS;
      note.setAttribute('role', 'note');
      // under the input, above the outputs: next to the code it is about
      const input = cell.node.querySelector(':scope > .jp-Cell-inputWrapper');
      if (input?.nextSibling) {
        cell.node.insertBefore(note, input.nextSibling);
      } else {
        cell.node.appendChild(note);
      }
    }
    note.dataset.key = key;
    note.setAttribute('aria-label', `cellpipe: ${found.length} diagnostic(s) in cell ${index + 1}`);
    note.replaceChildren(
      ...found.map((d, i) => {
        const line = document.createElement('div');
        line.className = `cp-cell-diagnostic cp-${d.severity}`;
        line.textContent = text[i];
        if (d.hint) {
          line.title = `fix: ${d.hint}`;
        }
        return line;
      })
    );
  });
}
