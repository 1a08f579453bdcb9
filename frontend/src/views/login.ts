/** Sign-in page: POST /api/auth/login/ {username, password}; the server's message is shown as is. */
import type { App, View } from "../app";
import { errorText, h } from "../ui/dom";

export function loginView(root: HTMLElement, app: App): View {
  const user = h("input", { name: "username", autocomplete: "username", required: true, autofocus: true });
  const pass = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const message = h("p", { class: "error", role: "alert" });
  const button = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h(
    "form",
    { class: "card login", "data-testid": "login-form" },
    h("h1", {}, "Sign in"),
    h("label", {}, "Username", user),
    h("label", {}, "Password", pass),
    button,
    message,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    message.textContent = "";
    button.disabled = true;
    try {
      // the page itself (GET /) set the csrftoken cookie the login POST needs
      await app.services.api.post("/api/auth/login/", { username: user.value, password: pass.value });
      await app.signedIn();
      app.go(app.afterLogin.startsWith("#/login") ? "#/worklist" : app.afterLogin);
    } catch (err) {
      message.textContent = errorText(err);
    } finally {
      button.disabled = false;
    }
  });
  root.append(form);
  return { destroy: () => form.remove() };
}
