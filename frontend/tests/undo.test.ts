import { describe, expect, it } from "vitest";
import { UndoStack, type Command } from "../src/lib/undo";

function counter() {
  const state = { value: 0 };
  const add = (n: number): Command => ({ label: `+${n}`, undo: () => void (state.value -= n), redo: () => void (state.value += n) });
  return { state, add };
}

describe("UndoStack", () => {
  it("undoes and redoes commands in order", async () => {
    const { state, add } = counter();
    const stack = new UndoStack();
    for (const n of [1, 10, 100]) {
      state.value += n;
      stack.push(add(n));
    }
    await stack.undo();
    expect(state.value).toBe(11);
    await stack.undo();
    expect(state.value).toBe(1);
    await stack.redo();
    expect(state.value).toBe(11);
    expect(stack.canRedo).toBe(true);
  });

  it("drops the redo branch when a new command is pushed", async () => {
    const { state, add } = counter();
    const stack = new UndoStack();
    state.value += 5;
    stack.push(add(5));
    await stack.undo();
    state.value += 7;
    stack.push(add(7));
    expect(stack.canRedo).toBe(false);
    expect(await stack.redo()).toBeUndefined();
    expect(state.value).toBe(7);
  });

  it("serialises async undos so two rapid presses undo two commands", async () => {
    const log: string[] = [];
    const slow = (name: string): Command => ({
      label: name,
      undo: () => new Promise((r) => setTimeout(() => (log.push(name), r()), name === "a" ? 1 : 20)),
      redo: () => undefined,
    });
    const stack = new UndoStack();
    stack.push(slow("a"));
    stack.push(slow("b"));
    await Promise.all([stack.undo(), stack.undo()]);
    expect(log).toEqual(["b", "a"]);
    expect(stack.canUndo).toBe(false);
  });

  it("keeps a command applied when its undo fails", async () => {
    const stack = new UndoStack();
    stack.push({ label: "x", undo: () => Promise.reject(new Error("offline")), redo: () => undefined });
    await expect(stack.undo()).rejects.toThrow("offline");
    expect(stack.canUndo).toBe(true);
    expect(stack.canRedo).toBe(false);
  });

  it("notifies subscribers until they unsubscribe", () => {
    const stack = new UndoStack();
    let calls = 0;
    const off = stack.subscribe(() => calls++);
    stack.push({ label: "x", undo: () => undefined, redo: () => undefined });
    off();
    stack.push({ label: "y", undo: () => undefined, redo: () => undefined });
    expect(calls).toBe(1);
  });
});
