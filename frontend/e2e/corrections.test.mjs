// End-to-end corrections on the demo CT in Chromium against the real stack of scripts/e2e.sh:
// box -> key-slice mask first (timed in the page) -> propagation -> a positive click on a tracked
// slice -> its re-propagation -> undo brings back exactly the mask volume seen before the click
// (in the page and in the stored revision) -> submit asks about unvisited suspect slices.
// Fails on any console error.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

const BASE_URL = process.env.BASE_URL ?? "http://127.0.0.1:8000";
const ANNOTATOR = process.env.E2E_ANNOTATOR ?? "demo-annotator";
const PASSWORD = process.env.E2E_PASSWORD ?? "demo-pass-123";
const SHOTS = path.join(process.env.E2E_ARTIFACTS ?? path.resolve(import.meta.dirname, "../../test-artifacts"), "screenshots");
const LESION = JSON.parse(process.env.E2E_LESION ?? "null");
const JOB_TIMEOUT_MS = Number(process.env.E2E_JOB_TIMEOUT_MS ?? 300000);

let browser;
const consoleErrors = [];

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"],
  });
});

after(async () => {
  await browser?.close();
});

async function api(page, url) {
  const res = await page.request.fetch(`${BASE_URL}${url}`);
  assert.ok(res.ok(), `${url} -> ${res.status()} ${await res.text()}`);
  return res.json();
}

/** A revision's frames with the empty ones left out: {"<frame>": runs} for frames with a voxel. */
async function storedFrames(page, revision) {
  const frames = await api(page, `/api/mask-revisions/${revision}/frames/`);
  return Object.fromEntries(Object.entries(frames).filter(([, runs]) => runs.some((r, i) => i % 2 === 1 && r > 0)).sort(([a], [b]) => a - b));
}

/** The mask volume the page shows: every non-empty frame of the workspace's mask, as 0/1 bytes. */
function shownMask(page) {
  return page.evaluate(() => {
    const m = window.medsam2Workspace.mask;
    const out = {};
    for (const f of m.framesWithMask()) out[f] = Array.from(m.get(f)).join("");
    return out;
  });
}

/** Wait until the page follows no job and shows revision `revision`, saved. */
function settled(page, revision) {
  return page.waitForFunction(
    (rev) => {
      const ws = window.medsam2Workspace;
      return !ws.jobRunning && ws.mask && ws.mask.baseRevision === rev && ws.mask.dirty.length === 0;
    },
    revision,
    { timeout: JOB_TIMEOUT_MS },
  );
}

/** Forget the last timing: the next pointer release on the overlay and the next first frames count. */
function armTimer(page) {
  return page.evaluate(() => {
    window.e2eBoxUp = undefined;
    window.e2eFirst = undefined;
  });
}

/** Release -> first frames drawn (ms, in the page) and what was drawn then. */
async function readTimer(page) {
  await page.waitForFunction(() => window.e2eFirst?.painted, null, { timeout: JOB_TIMEOUT_MS });
  const t = await page.evaluate(() => ({ ...window.e2eFirst, boxUp: window.e2eBoxUp }));
  return { ...t, shownMs: t.painted - t.boxUp, appliedMs: t.applied - t.boxUp };
}

async function boxLesion(page) {
  await page.keyboard.press("r");
  const [x0, y0, x1, y1] = LESION.box;
  const overlay = await page.locator("[data-testid=overlay]").boundingBox();
  const [a, b] = await page.evaluate(([p, q]) => [window.medsam2Viewer.imageToCanvas(p), window.medsam2Viewer.imageToCanvas(q)], [[x0, y0], [x1, y1]]);
  await page.mouse.move(overlay.x + a[0], overlay.y + a[1]);
  await page.mouse.down();
  await page.mouse.move(overlay.x + b[0], overlay.y + b[1], { steps: 8 });
  await page.mouse.up();
}

async function waitForJobs(page, target, n) {
  let jobs = [];
  for (let i = 0; i < JOB_TIMEOUT_MS / 500; i++) {
    jobs = (await api(page, `/api/propagation-jobs/?target=${target}`)).results.sort((a, b) => a.id - b.id);
    if (jobs.length >= n && ["succeeded", "failed", "cancelled"].includes(jobs[n - 1].status)) return jobs[n - 1];
    await page.waitForTimeout(500);
  }
  assert.fail(`job ${n} of target ${target} did not finish: ${JSON.stringify(jobs[n - 1])}`);
}

test("an annotator corrects a propagated CT lesion with a click and undoes it back to the exact mask", async () => {
  assert.ok(LESION, "E2E_LESION (set by scripts/e2e.sh) names the demo lesion to segment");
  const context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
  const page = await context.newPage();
  page.on("console", (msg) => msg.type() === "error" && consoleErrors.push(`${msg.text()} (${msg.location().url})`));
  page.on("pageerror", (err) => consoleErrors.push(`pageerror: ${err.message}`));
  await page.goto(`${BASE_URL}/#/login`);
  await page.fill("input[name=username]", ANNOTATOR);
  await page.fill("input[name=password]", PASSWORD);
  await page.click("form[data-testid=login-form] button[type=submit]");
  await page.waitForSelector("[data-testid=whoami]");

  const ct = await api(page, `/api/cases/${LESION.case}/`);
  const idsBefore = new Set((await api(page, `/api/targets/?case=${ct.id}&page_size=500`)).results.map((t) => t.id));
  await page.goto(`${BASE_URL}/#/cases/${ct.id}`);
  await page.waitForSelector(".view[data-ready='1']", { timeout: 60000 });
  await page.evaluate(() => window.medsam2Workspace.select(null));
  await page.evaluate((f) => window.medsam2Viewer.setIndex(f), LESION.frame);
  await page.waitForFunction((f) => document.querySelector("[data-testid=slice-label]")?.textContent?.startsWith(`slice ${f + 1} `), LESION.frame);

  // in the page: when the box is released and when the first mask is drawn (with what it holds)
  await page.evaluate(() => {
    const ws = window.medsam2Workspace;
    document.querySelector("[data-testid=overlay]").addEventListener("pointerup", (e) => (window.e2eBoxUp ??= e.timeStamp));
    ws.events.on("firstFrames", (frames) => {
      if (window.e2eFirst) return;
      const first = { frames, masked: ws.mask.framesWithMask(), applied: performance.now() };
      window.e2eFirst = first;
      requestAnimationFrame(() => (first.painted = performance.now()));
    });
  });

  // box the lesion on its key slice: a target, the key-slice mask first, then the propagation
  await armTimer(page);
  await boxLesion(page);
  const first = await readTimer(page);
  console.log(`box -> key-slice mask shown (first box, worker just started): ${first.shownMs.toFixed(0)} ms (applied ${first.appliedMs.toFixed(0)} ms); first frames drawn: ${JSON.stringify(first.masked)}`);
  assert.deepEqual(first.frames, [LESION.frame], "the first frames drawn are the key slice");
  assert.deepEqual(first.masked, [LESION.frame], "no propagated slice is drawn before the key slice");

  const target = (await api(page, `/api/targets/?case=${ct.id}&page_size=500`)).results.find((t) => !idsBefore.has(t.id));
  assert.ok(target, "the box created a new target");
  const job1 = await waitForJobs(page, target.id, 1);
  assert.equal(job1.status, "succeeded", JSON.stringify(job1));
  await settled(page, job1.result_revision);
  const beforeShown = await shownMask(page);
  const beforeStored = await storedFrames(page, job1.result_revision);
  assert.deepEqual(Object.keys(beforeShown).map(Number), Object.keys(beforeStored).map(Number), "the page shows the proposal's slices");
  assert.ok(Object.keys(beforeShown).length > 1, `the proposal covers ${Object.keys(beforeShown).length} slices`);

  // a positive click on a tracked slice next to the key slice, just right of its mask
  const clickFrame = beforeShown[LESION.frame + 1] ? LESION.frame + 1 : LESION.frame - 1;
  const width = ct.shape[2];
  const bits = beforeShown[clickFrame];
  let cy = 0;
  let n = 0;
  for (let i = 0; i < bits.length; i++) if (bits[i] === "1") (cy += Math.floor(i / width)), n++;
  cy = Math.round(cy / n);
  let right = 0;
  for (let x = 0; x < width; x++) if (bits[cy * width + x] === "1") right = x;
  const point = [Math.min(width - 1, right + 2), cy];
  await page.evaluate((f) => window.medsam2Viewer.setIndex(f), clickFrame);
  await page.waitForFunction((f) => document.querySelector("[data-testid=slice-label]")?.textContent?.startsWith(`slice ${f + 1} `), clickFrame);
  await page.keyboard.press("p");
  const overlay = await page.locator("[data-testid=overlay]").boundingBox();
  const c = await page.evaluate((q) => window.medsam2Viewer.imageToCanvas(q), point);
  await armTimer(page);
  await page.mouse.click(overlay.x + c[0], overlay.y + c[1]);
  const clicked = await readTimer(page);
  console.log(`click -> corrected slice shown: ${clicked.shownMs.toFixed(0)} ms; first frames: ${JSON.stringify(clicked.frames)}`);
  assert.deepEqual(clicked.frames, [clickFrame], "the clicked slice is drawn first");
  const job2 = await waitForJobs(page, target.id, 2);
  assert.equal(job2.status, "succeeded", JSON.stringify(job2));
  await settled(page, job2.result_revision);
  const afterClick = await shownMask(page);
  const changed = [...new Set([...Object.keys(beforeShown), ...Object.keys(afterClick)])].filter((f) => beforeShown[f] !== afterClick[f]);
  const ones = (m) => Object.values(m).reduce((s, v) => s + v.split("1").length - 1, 0);
  console.log(`click at ${JSON.stringify(point)} on slice ${clickFrame + 1}: ${ones(beforeShown)} -> ${ones(afterClick)} voxels, ${changed.length} slices changed (${changed.map((f) => Number(f) + 1).join(", ")})`);
  assert.ok(changed.length > 0, "the click's re-propagation changed the mask");
  await page.screenshot({ path: path.join(SHOTS, "case-click-corrected-1366x768.png") });

  // undo: the message, then exactly the volume from before the click, in the page and stored
  const revsBefore = (await api(page, `/api/mask-revisions/?target=${target.id}`)).results.length;
  await page.keyboard.press("Control+z");
  await page.waitForSelector(`.toast >> text=Undone: point prompt on slice ${clickFrame + 1}.`);
  await page.waitForFunction((n0) => window.medsam2Workspace.mask.dirty.length === 0 && window.medsam2Workspace.mask.baseRevision !== n0, job2.result_revision, { timeout: 30000 });
  assert.deepEqual(await shownMask(page), beforeShown, "after undo the page shows exactly the mask from before the click");
  const revs = (await api(page, `/api/mask-revisions/?target=${target.id}`)).results.sort((x, y) => x.number - y.number);
  assert.ok(revs.length > revsBefore, "the undo was saved as a revision");
  const latest = revs[revs.length - 1];
  assert.equal(latest.source, "human");
  assert.deepEqual(await storedFrames(page, latest.id), beforeStored, "the stored mask after undo equals the proposal before the click, byte for byte");
  const prompt = (await api(page, `/api/prompts/?target=${target.id}`)).results.find((p) => p.kind === "point");
  assert.equal(prompt.withdrawn, true, "the click's prompt is withdrawn");

  // submit: unvisited suspect slices make the page ask first (in the page), else it submits at once
  const unvisited = await page.evaluate(() => window.medsam2Workspace.unvisitedSuspects());
  await page.click("[data-testid=submit]");
  const asked = await page.$("[data-testid=submit-check]");
  console.log(`suspect slices not visited at submit: ${unvisited.length} (${unvisited.map((f) => f + 1).join(", ")})`);
  assert.equal(!!asked, unvisited.length > 0, "the page asks exactly when suspect slices were not visited");
  if (asked) {
    assert.equal(await asked.getAttribute("data-unvisited"), String(unvisited.length));
    await page.click("[data-testid=submit-check-review]");
    await page.waitForFunction((f) => document.querySelector("[data-testid=slice-label]")?.textContent?.startsWith(`slice ${f + 1} `), unvisited[0]);
    assert.equal((await api(page, `/api/targets/${target.id}/`)).status === "submitted", false, "Review them does not submit");
    await page.click("[data-testid=submit]");
    if (unvisited.length > 1) {
      assert.equal(await page.getAttribute("[data-testid=submit-check]", "data-unvisited"), String(unvisited.length - 1));
      await page.click("[data-testid=submit-check-anyway]");
    } else assert.equal(await page.$("[data-testid=submit-check]"), null);
  }
  await page.waitForSelector(`[data-testid=target-${target.id}] .badge-submitted`);

  // a second box on the warm worker: the key-slice mask again first, timed
  await page.evaluate(() => window.medsam2Workspace.select(null));
  await page.evaluate((f) => window.medsam2Viewer.setIndex(f), LESION.frame);
  await page.waitForFunction((f) => document.querySelector("[data-testid=slice-label]")?.textContent?.startsWith(`slice ${f + 1} `), LESION.frame);
  await armTimer(page);
  await boxLesion(page);
  const warm = await readTimer(page);
  console.log(`box -> key-slice mask shown (warm worker): ${warm.shownMs.toFixed(0)} ms (applied ${warm.appliedMs.toFixed(0)} ms); first frames drawn: ${JSON.stringify(warm.masked)}`);
  assert.deepEqual(warm.masked, [LESION.frame], "no propagated slice is drawn before the key slice");
  const second = (await api(page, `/api/targets/?case=${ct.id}&page_size=500`)).results.find((t) => !idsBefore.has(t.id) && t.id !== target.id);
  const warmJob = await waitForJobs(page, second.id, 1);
  assert.equal(warmJob.status, "succeeded");
  console.log(`warm job timings (worker, s): ${JSON.stringify(warmJob.timings)}`);
  await context.close();
  assert.deepEqual(consoleErrors, [], "no console errors");
});
