/**
 * Building the panel's DOM: elements from attributes and children, collapsible sections,
 * and replacing a section's content without losing the keyboard focus.
 */

export type Child = Node | string | null | undefined | false;

/** Create an element with attributes (`on*` functions become listeners) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, unknown> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) {
      continue;
    }
    if (key.startsWith('on') && typeof value === 'function') {
      node.addEventListener(key.slice(2).toLowerCase(), value as EventListener);
    } else if (key === 'className') {
      node.className = String(value);
    } else if (key === 'value' && 'value' in node) {
      (node as HTMLInputElement).value = String(value);
    } else if (value === true) {
      node.setAttribute(key, '');
    } else {
      node.setAttribute(key, String(value));
    }
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    node.append(child);
  }
  return node;
}

/** A collapsible section of the panel: `root` goes in the panel, content in `body`. */
export function section(id: string, title: string, open = true): { root: HTMLElement; body: HTMLElement } {
  const body = h('div', { className: 'cp-section-body', id: `${id}-body` });
  const root = h(
    'details',
    { className: `cp-section cp-${id}`, open },
    h('summary', { className: 'cp-section-title' }, title),
    body
  );
  return { root, body };
}

/**
 * Replace the children of `container`; when the focus was on an element with a
 * `data-key` in it, focus the element with the same key in the new content (a step's
 * button keeps the focus while a run recolors the list).
 */
export function replaceKeepingFocus(container: Element, ...children: Node[]): void {
  const focused = document.activeElement;
  const key =
    focused && container.contains(focused) ? (focused as HTMLElement).dataset?.key : undefined;
  container.replaceChildren(...children);
  if (key !== undefined) {
    const again = container.querySelector<HTMLElement | SVGElement>(`[data-key="${CSS.escape(key)}"]`);
    again?.focus();
  }
}
