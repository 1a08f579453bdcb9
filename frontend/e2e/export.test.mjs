// End-to-end: a manager exports the project from the browser; the job runs on the worker's `default`
// queue, the page shows its progress and then a download link that serves the zip.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const BASE_URL = process.env.BASE_URL ?? "http://127.0.0.1:8000";
const PASSWORD = process.env.E2E_PASSWORD ?? "demo-pass-123";

let browser;

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run"],
  });
});

after(async () => {
  await browser?.close();
});

test("a manager exports the project as a job with progress and downloads the zip", async () => {
  const context = await browser.newContext({ viewport: { width: 1600, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(90000);
  const problems = [];
  page.on("console", (msg) => msg.type() === "error" && problems.push(msg.text()));
  page.on("pageerror", (err) => problems.push(`pageerror ${err.message}`));
  await page.goto(`${BASE_URL}/#/login`);
  await page.fill("input[name=username]", "demo-manager");
  await page.fill("input[name=password]", PASSWORD);
  await page.click("form[data-testid=login-form] button[type=submit]");
  await page.waitForSelector("[data-testid=whoami]");
  const projects = (await (await page.request.fetch(`${BASE_URL}/api/projects/`)).json()).results;
  await page.goto(`${BASE_URL}/#/manage?project=${projects[0].id}`);
  await page.waitForSelector("[data-testid=export-start]");
  // watch the progress cell's states as the page polls the job
  await page.evaluate(() => {
    window.__exportStates = [];
    new MutationObserver(() => {
      for (const el of document.querySelectorAll("[data-testid^=export-progress-]")) {
        const state = `${el.dataset.status} ${el.textContent}`;
        if (window.__exportStates.at(-1) !== state) window.__exportStates.push(state);
      }
    }).observe(document.body, { subtree: true, childList: true, attributes: true });
  });
  await page.selectOption("[data-testid=export-scope]", "");
  await page.click("[data-testid=export-start]");
  const link = await page.waitForSelector("[data-testid^=export-download-]", { timeout: 120000 });
  const states = await page.evaluate(() => window.__exportStates);
  assert.ok(states.length >= 2 && /^(queued|running) /.test(states[0]), `progress states: ${states.join(" -> ")}`);
  assert.equal(states.at(-1), "succeeded 100%");
  const href = await link.getAttribute("href");
  const res = await page.request.fetch(`${BASE_URL}${href.replace(BASE_URL, "")}`);
  assert.equal(res.status(), 200);
  const body = await res.body();
  assert.equal(body.subarray(0, 2).toString(), "PK", "a zip archive");
  console.log(`export states: ${states.join(" -> ")}; ${body.length} bytes`);
  assert.deepEqual(problems, [], "no console errors");
  await context.close();
});
