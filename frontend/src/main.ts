/** Entry point: builds the app shell and its routes. */
import "./styles.css";
import { App } from "./app";
import { caseView } from "./views/caseView";
import { loginView } from "./views/login";
import { manageView } from "./views/manage";
import { pacsView } from "./views/pacs";
import { reviewView } from "./views/review";
import { worklistView } from "./views/worklist";

const app = new App(document.getElementById("app")!);
app.addRoute(/^\/login$/, (root, a) => loginView(root, a));
app.addRoute(/^\/worklist$/, (root, a) => worklistView(root, a));
app.addRoute(/^\/review$/, (root, a) => reviewView(root, a));
app.addRoute(/^\/manage$/, (root, a, params) => manageView(root, a, params));
app.addRoute(/^\/pacs$/, (root, a, params) => pacsView(root, a, params));
app.addRoute(/^\/cases\/(\d+)$/, (root, a, params, m) => caseView(root, a, params, m));
// loaded on first visit: its charting library (ECharts) stays out of the annotators' bundle
app.addRoute(/^\/dashboard$/, async (root, a, params) => (await import("./views/dashboard")).dashboardView(root, a, params));
// the learning loop's admin pages (rounds, a training run live, the model registry): lazy, with ECharts
app.addRoute(/^\/rounds$/, async (root, a, params) => (await import("./views/rounds")).roundsView(root, a, params));
app.addRoute(/^\/training-runs\/(\d+)$/, async (root, a, params, m) => (await import("./views/trainingRun")).trainingRunView(root, a, params, m));
app.addRoute(/^\/registry$/, async (root, a, params) => (await import("./views/registry")).registryView(root, a, params));
void app.start();
(window as unknown as { medsam2App: App }).medsam2App = app;
