/**
 * Asking before a submit that skips suspect slices: an in-page dialog (not window.confirm, which
 * blocks the page and which browser automation dismisses) saying how many suspect slices were not
 * visited, with "Review them" (go to the first) and "Submit anyway".
 */
import { h } from "../ui/dom";

export interface SubmitCheckActions {
  /** show slice `frame` (the first unvisited suspect one) */
  review(frame: number): void;
  submit(): void;
}

/** The dialog element; it removes itself on either button or Escape. */
export function submitCheckDialog(unvisited: number[], unit: string, actions: SubmitCheckActions): HTMLElement {
  const n = unvisited.length;
  const list = unvisited.slice(0, 12).map((f) => f + 1).join(", ") + (n > 12 ? ", …" : "");
  const close = () => {
    window.removeEventListener("keydown", onKey, true);
    dialog.remove();
  };
  const onKey = (e: KeyboardEvent) => {
    if (e.key !== "Escape") return;
    e.stopPropagation();
    close();
  };
  const dialog = h(
    "div",
    { class: "help submit-check", role: "dialog", "aria-modal": "true", "aria-labelledby": "submit-check-title", "data-testid": "submit-check", dataset: { unvisited: String(n) } },
    h("h2", { id: "submit-check-title" }, "Submit with unvisited suspect slices?"),
    h("p", { "data-testid": "submit-check-text" }, `${n} suspect ${unit}${n === 1 ? "" : "s"} (red in the strip) not visited: ${list}.`),
    h(
      "div",
      { class: "row" },
      h("button", { class: "primary", "data-testid": "submit-check-review", onclick: () => (close(), actions.review(unvisited[0])) }, "Review them"),
      h("button", { "data-testid": "submit-check-anyway", onclick: () => (close(), actions.submit()) }, "Submit anyway"),
    ),
  );
  window.addEventListener("keydown", onKey, true);
  return dialog;
}
