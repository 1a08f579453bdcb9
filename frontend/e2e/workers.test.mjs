// End-to-end: the manager page shows the live worker of the stack started by scripts/e2e.sh (its
// name, queues and state, from GET /api/workers/), as the one-command run's manager sees it; and the
// workspace of a job that waits with no worker listening says so instead of an endless progress bar
// (the browser is shown a queued job and an empty worker list: the real worker keeps running for the
// other e2e files).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

const BASE_URL = process.env.BASE_URL ?? "http://127.0.0.1:8000";
const MANAGER = process.env.E2E_MANAGER ?? "demo-manager";
const ANNOTATOR = process.env.E2E_ANNOTATOR ?? "demo-annotator";
const PASSWORD = process.env.E2E_PASSWORD ?? "demo-pass-123";
const SHOTS = path.join(process.env.E2E_ARTIFACTS ?? path.resolve(import.meta.dirname, "../../test-artifacts"), "screenshots");

let browser;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
  });
});

after(async () => {
  await browser?.close();
});

async function signedIn(username) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (err) => errors.push(err.message));
  await page.goto(`${BASE_URL}/#/login`);
  await page.fill("input[name=username]", username);
  await page.fill("input[name=password]", PASSWORD);
  await page.click("form[data-testid=login-form] button[type=submit]");
  await page.waitForSelector("[data-testid=whoami]");
  return { context, page, errors };
}

async function api(page, url) {
  const res = await page.request.fetch(`${BASE_URL}${url}`);
  assert.ok(res.ok(), `${url} -> ${res.status()}`);
  return res.json();
}

test("the manager page lists the live worker with its queues and state", async () => {
  const { context, page, errors } = await signedIn(MANAGER);
  await page.goto(`${BASE_URL}/#/manage`);
  // the worker refreshes its presence every 5 s; the card every 5 s
  const item = page.locator("[data-testid=workers-list] li[data-worker]").first();
  await item.waitFor({ timeout: 30000 });
  const line = await item.textContent();
  assert.match(line, /@/, line);
  assert.match(line, /queues [a-z, ]*gpu/, line);
  assert.match(line, /idle|running job/, line);
  assert.equal(await page.locator("[data-testid=no-worker]").count(), 0);
  await page.screenshot({ path: path.join(SHOTS, "manage-workers.png") });
  assert.deepEqual(errors, []);
  await context.close();
});

test("a job that waits with no worker listening is named in the workspace within seconds", async () => {
  const { context, page, errors } = await signedIn(ANNOTATOR);
  const cases = await api(page, "/api/cases/?page_size=50");
  const kase = cases.results.find((c) => c.modality === "CT" && c.kind === "volume");
  const targets = await api(page, `/api/targets/?case=${kase.id}`);
  const target = targets.results[0];
  const job = { id: 999999, target: target.id, kind: "propagate", status: "queued", queue: "gpu", progress: 0, frames_done: 0, frames_total: 0, device: "", worker: "", model_name: "", error: "", result_revision: null, timings: {} };
  const json = (route, body) => route.fulfill({ status: 200, contentType: "application/json", body: JSON.stringify(body) });
  await page.route(/\/api\/propagation-jobs\//, (route) => {
    const url = route.request().url();
    if (url.includes("/999999/frames/")) return json(route, { job: job.id, status: "queued", finished: false, cursor: 0, frames: {} });
    if (url.includes("/999999/")) return json(route, job);
    return json(route, { count: 1, next: null, previous: null, results: [job] });
  });
  await page.route(/\/api\/workers\//, (route) => json(route, { queues: { default: 0, gpu: 1, training: 0 }, workers: [] }));
  const opened = Date.now();
  await page.goto(`${BASE_URL}/#/cases/${kase.id}?target=${target.id}`);
  const progress = page.locator("[data-testid=job-progress]");
  await page.waitForFunction(() => document.querySelector("[data-testid=job-progress]")?.getAttribute("data-status") === "no-worker", null, { timeout: 30000 });
  const text = await progress.textContent();
  assert.match(text, /No worker is running for this queue \(gpu\)/, text);
  const waited = (Date.now() - opened) / 1000;
  assert.ok(waited < 20, `named after ${waited.toFixed(1)} s`);
  await page.screenshot({ path: path.join(SHOTS, "workspace-no-worker.png") });
  assert.deepEqual(errors, []);
  await context.close();
});
