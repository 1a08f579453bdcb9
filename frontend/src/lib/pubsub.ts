/** Minimal typed publish/subscribe: every subscribe returns its unsubscribe. */
export class Emitter<Events extends Record<string, unknown>> {
  private handlers = new Map<keyof Events, Set<(payload: never) => void>>();

  on<K extends keyof Events>(kind: K, fn: (payload: Events[K]) => void): () => void {
    let set = this.handlers.get(kind);
    if (!set) {
      set = new Set();
      this.handlers.set(kind, set);
    }
    set.add(fn as (payload: never) => void);
    return () => {
      set!.delete(fn as (payload: never) => void);
    };
  }

  emit<K extends keyof Events>(kind: K, payload: Events[K]): void {
    const set = this.handlers.get(kind);
    if (!set) return;
    for (const fn of [...set]) (fn as (p: Events[K]) => void)(payload);
  }

  clear(): void {
    this.handlers.clear();
  }
}
