/**
 * Forms the user types in while the panel keeps changing around them.
 *
 * A form is built once and then patched: a field takes a new value from the state only
 * when the user is not in it and has not typed in it since it was last applied, so a poll
 * or a refresh never moves the caret, steals the focus or drops typed text. A form whose
 * fields themselves change is rebuilt, and what the user typed moves to the new one.
 */
import { h } from './dom';

type Control = HTMLInputElement | HTMLSelectElement;

/** Mark a field as edited by the user when they type in it or change it. */
export function trackEdits(form: HTMLFormElement): void {
  const mark = (event: Event) => {
    const target = event.target as HTMLElement | null;
    if (target && 'value' in target) {
      target.dataset.edited = 'true';
    }
  };
  form.addEventListener('input', mark);
  form.addEventListener('change', mark);
}

/** Forget the edits: the next patch shows the state's values again. */
export function clearEdits(form: HTMLFormElement): void {
  for (const control of controls(form)) {
    delete control.dataset.edited;
  }
}

/** Whether the field is the user's right now (focused, or edited and not yet applied). */
export function isUsers(control: Control): boolean {
  return control === document.activeElement || control.dataset.edited === 'true';
}

/** Show `value` in the field, unless it is the user's. */
export function patchValue(control: Control | null, value: string): void {
  if (control && !isUsers(control) && control.value !== value) {
    control.value = value;
  }
}

/** Tick or untick a checkbox, unless it is the user's. */
export function patchChecked(control: HTMLInputElement | null, checked: boolean): void {
  if (control && !isUsers(control) && control.checked !== checked) {
    control.checked = checked;
  }
}

/** Set an attribute (or remove it, for null), only when it differs. */
export function patchAttribute(node: Element | null, name: string, value: string | null): void {
  if (!node || node.getAttribute(name) === value) {
    return;
  }
  if (value === null) {
    node.removeAttribute(name);
  } else {
    node.setAttribute(name, value);
  }
}

/** Set a node's text, only when it differs. */
export function patchText(node: Element | null, text: string): void {
  if (node && node.textContent !== text) {
    node.textContent = text;
  }
}

/** The named field of a form. */
export function control<T extends Control = HTMLInputElement>(form: HTMLFormElement, name: string): T | null {
  const found = form.elements.namedItem(name);
  return found instanceof HTMLInputElement || found instanceof HTMLSelectElement ? (found as T) : null;
}

/** The trimmed value of a named field ('' when it is missing). */
export function fieldValue(form: HTMLFormElement, name: string): string {
  return (control(form, name)?.value ?? '').trim();
}

/**
 * Put `next` in place of `previous`, carrying over the fields the user edited (by name),
 * and the focus and caret when the user was in `previous`.
 */
export function replaceForm(previous: HTMLFormElement | null, next: HTMLFormElement, container: Element): void {
  if (!previous || !previous.isConnected) {
    container.replaceChildren(next);
    return;
  }
  const focused = document.activeElement;
  const focusedName =
    focused && previous.contains(focused) ? (focused as HTMLInputElement).name || null : null;
  const selection =
    focused instanceof HTMLInputElement && focusedName !== null
      ? { start: focused.selectionStart, end: focused.selectionEnd }
      : null;
  for (const old of controls(previous)) {
    const fresh = old.name ? control(next, old.name) : null;
    if (!fresh || old.dataset.edited !== 'true') {
      continue;
    }
    if (old instanceof HTMLInputElement && old.type === 'checkbox' && fresh instanceof HTMLInputElement) {
      fresh.checked = old.checked;
    } else {
      fresh.value = old.value;
    }
    fresh.dataset.edited = 'true';
  }
  container.replaceChildren(next);
  if (focusedName !== null) {
    const again = control<Control>(next, focusedName);
    again?.focus();
    if (again instanceof HTMLInputElement && selection && selection.start !== null) {
      try {
        again.setSelectionRange(selection.start, selection.end ?? selection.start);
      } catch {
        // a checkbox has no caret
      }
    }
  }
}

/** A labeled text input with an optional problem shown under it. */
export function textField(options: {
  id: string;
  name: string;
  label: string;
  value: string;
  placeholder?: string;
  title?: string;
}): HTMLElement {
  return h(
    'div',
    { className: 'cp-field' },
    h('label', { for: options.id }, options.label),
    h('input', {
      id: options.id,
      name: options.name,
      className: 'jp-mod-styled cp-input',
      type: 'text',
      value: options.value,
      placeholder: options.placeholder ?? '',
      title: options.title || undefined,
      'aria-label': options.label,
      spellcheck: 'false',
      autocomplete: 'off'
    })
  );
}

function controls(form: HTMLFormElement): Control[] {
  return [...form.elements].filter(
    (e): e is Control => e instanceof HTMLInputElement || e instanceof HTMLSelectElement
  );
}
