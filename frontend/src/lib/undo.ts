/**
 * Undo/redo across prompts and brush edits. A command knows how to undo and redo itself; both may be
 * async (a prompt's undo withdraws it on the server). Operations are serialised so a fast Ctrl+Z
 * Ctrl+Z never runs two undos at once.
 */
export interface Command {
  readonly label: string;
  undo(): void | Promise<void>;
  redo(): void | Promise<void>;
}

export class UndoStack {
  private done: Command[] = [];
  private undone: Command[] = [];
  private chain: Promise<unknown> = Promise.resolve();
  private listeners = new Set<() => void>();

  constructor(private readonly limit = 200) {}

  /** Record a command that has already been applied; clears the redo branch. */
  push(cmd: Command): void {
    this.done.push(cmd);
    if (this.done.length > this.limit) this.done.shift();
    this.undone = [];
    this.emit();
  }

  get canUndo(): boolean {
    return this.done.length > 0;
  }

  get canRedo(): boolean {
    return this.undone.length > 0;
  }

  peekUndo(): Command | undefined {
    return this.done[this.done.length - 1];
  }

  /** Undo the latest command; resolves with it (or undefined when nothing to undo). */
  undo(): Promise<Command | undefined> {
    return this.enqueue(async () => {
      const cmd = this.done.pop();
      if (!cmd) return undefined;
      try {
        await cmd.undo();
      } catch (err) {
        this.done.push(cmd); // failed: the command is still applied
        this.emit();
        throw err;
      }
      this.undone.push(cmd);
      this.emit();
      return cmd;
    });
  }

  redo(): Promise<Command | undefined> {
    return this.enqueue(async () => {
      const cmd = this.undone.pop();
      if (!cmd) return undefined;
      try {
        await cmd.redo();
      } catch (err) {
        this.undone.push(cmd);
        this.emit();
        throw err;
      }
      this.done.push(cmd);
      this.emit();
      return cmd;
    });
  }

  clear(): void {
    this.done = [];
    this.undone = [];
    this.emit();
  }

  /** Subscribe to changes; returns the unsubscribe function. */
  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private emit(): void {
    for (const fn of this.listeners) fn();
  }

  private enqueue<T>(op: () => Promise<T>): Promise<T> {
    const run = this.chain.then(op, op);
    this.chain = run.catch(() => undefined);
    return run;
  }
}
