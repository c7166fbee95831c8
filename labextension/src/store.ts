/**
 * A small typed state store: the panel's state in one object, changed by `update`, and
 * listeners that say which part of it they show.
 *
 * A listener subscribes with a selector returning the values it depends on; after an
 * update it is called only when one of them changed (compared with `Object.is`), so a
 * component re-renders its own section only when its slice of the state changed.
 */

/** The values a listener depends on (a tuple, compared element by element). */
export type Selector<S> = (state: Readonly<S>) => readonly unknown[];
export type Listener<S> = (state: Readonly<S>) => void;

interface Subscription<S> {
  select: Selector<S>;
  listener: Listener<S>;
  last: readonly unknown[];
}

export class Store<S extends object> {
  private state: S;
  private readonly subscriptions = new Set<Subscription<S>>();
  private notifying = false;
  private pending = false;

  constructor(initial: S) {
    this.state = initial;
  }

  /** The current state (replace it through `update`, never change it in place). */
  get(): Readonly<S> {
    return this.state;
  }

  /** Merge `patch` into the state and notify the listeners whose slice changed. */
  update(patch: Partial<S>): void {
    this.state = { ...this.state, ...patch };
    if (this.notifying) {
      this.pending = true; // a listener updated the state: notify again once it returns
      return;
    }
    this.notifying = true;
    try {
      do {
        this.pending = false;
        for (const subscription of [...this.subscriptions]) {
          if (!this.subscriptions.has(subscription)) {
            continue; // unsubscribed by an earlier listener
          }
          const next = subscription.select(this.state);
          if (!sameValues(next, subscription.last)) {
            subscription.last = next;
            subscription.listener(this.state);
          }
        }
      } while (this.pending);
    } finally {
      this.notifying = false;
    }
  }

  /**
   * Call `listener` whenever what `select` picks changes (and once now, when `immediate`).
   * Returns the function that unsubscribes.
   */
  subscribe(select: Selector<S>, listener: Listener<S>, immediate = true): () => void {
    const subscription: Subscription<S> = { select, listener, last: select(this.state) };
    this.subscriptions.add(subscription);
    if (immediate) {
      listener(this.state);
    }
    return () => this.subscriptions.delete(subscription);
  }
}

function sameValues(a: readonly unknown[], b: readonly unknown[]): boolean {
  return a.length === b.length && a.every((value, i) => Object.is(value, b[i]));
}
