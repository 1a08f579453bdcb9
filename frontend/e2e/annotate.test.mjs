// End-to-end: the annotate -> propagate -> correct -> undo -> submit -> accept path in Chromium
// against the real stack started by scripts/e2e.sh (BASE_URL). Fails on any console error.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

const BASE_URL = process.env.BASE_URL ?? "http://127.0.0.1:8000";
const ANNOTATOR = process.env.E2E_ANNOTATOR ?? "demo-annotator";
const REVIEWER = process.env.E2E_REVIEWER ?? "demo-reviewer";
const PASSWORD = process.env.E2E_PASSWORD ?? "demo-pass-123";
const SHOTS = path.join(process.env.E2E_ARTIFACTS ?? path.resolve(import.meta.dirname, "../../test-artifacts"), "screenshots");
// {case, frame, box: [x0, y0, x1, y1]} of a demo lesion (scripts/e2e.sh reads it from the ground truth)
const LESION = JSON.parse(process.env.E2E_LESION ?? "null");
const JOB_TIMEOUT_MS = Number(process.env.E2E_JOB_TIMEOUT_MS ?? 300000);
const MANAGER = process.env.E2E_MANAGER ?? "demo-manager";
// the project's idle threshold during the annotation test, short so the test sees `idle` and `active`
const IDLE_S = 5;
// where the README's dashboard screenshot goes when set (E2E_DOCS_DIR=$PWD/docs scripts/e2e.sh)
const DOCS_DIR = process.env.E2E_DOCS_DIR ?? "";

let browser;
const consoleErrors = [];

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--use-gl=angle",
      "--use-angle=swiftshader",
      "--enable-unsafe-swiftshader",
    ],
  });
});

after(async () => {
  await browser?.close();
});

async function newPage(width, height) {
  const context = await browser.newContext({ viewport: { width, height } });
  const page = await context.newPage();
  page.on("console", (msg) => {
    if (msg.type() !== "error") return;
    // a refused upload is the one expected error response (its test checks the message shown)
    if (page.allowUploadError && msg.location().url.includes("/api/cases/upload/")) return;
    consoleErrors.push(`[${width}x${height}] ${msg.text()} (${msg.location().url})`);
  });
  page.on("pageerror", (err) => consoleErrors.push(`[${width}x${height}] pageerror: ${err.message}`));
  return { context, page };
}

async function login(page, username) {
  await page.goto(`${BASE_URL}/#/login`);
  await page.fill("input[name=username]", username);
  await page.fill("input[name=password]", PASSWORD);
  await page.click("form[data-testid=login-form] button[type=submit]");
  await page.waitForSelector("[data-testid=whoami]");
  const who = await page.textContent("[data-testid=whoami]");
  assert.ok(who.startsWith(username), `signed in as ${who}`);
}

async function api(page, url, init = {}) {
  const res = await page.request.fetch(`${BASE_URL}${url}`, init);
  assert.ok(res.ok(), `${url} -> ${res.status()} ${await res.text()}`);
  return res.json();
}

async function openCase(page, caseId, targetId) {
  await page.goto(`${BASE_URL}/#/cases/${caseId}${targetId ? `?target=${targetId}` : ""}`);
  await page.waitForSelector(".view[data-ready='1']", { timeout: 60000 });
  await page.waitForFunction(() => document.querySelector("[data-testid=slice-label]")?.textContent?.includes("/"));
}

/** Drag on the overlay between two image points (x, y in pixels of the current slice). */
async function dragImage(page, from, to, steps = 8) {
  const box = await page.locator("[data-testid=overlay]").boundingBox();
  const [a, b] = await page.evaluate(([p, q]) => [window.medsam2Viewer.imageToCanvas(p), window.medsam2Viewer.imageToCanvas(q)], [from, to]);
  await page.mouse.move(box.x + a[0], box.y + a[1]);
  await page.mouse.down();
  await page.mouse.move(box.x + b[0], box.y + b[1], { steps });
  await page.mouse.up();
}

async function currentSlice(page) {
  const text = await page.textContent("[data-testid=slice-label]");
  return Number(/(\d+) \//.exec(text)[1]) - 1;
}

/** Decode backend RLE (runs alternate 0/1 starting with zeros) into a flat 0/1 array. */
function decodeRle(runs) {
  const out = [];
  runs.forEach((r, i) => {
    for (let k = 0; k < r; k++) out.push(i % 2);
  });
  return out;
}

/** Drag on the overlay between fractions of its size (left button). */
async function drag(page, from, to, steps = 8) {
  const box = await page.locator("[data-testid=overlay]").boundingBox();
  const p = (f) => [box.x + box.width * f[0], box.y + box.height * f[1]];
  const [x0, y0] = p(from);
  const [x1, y1] = p(to);
  await page.mouse.move(x0, y0);
  await page.mouse.down();
  await page.mouse.move(x1, y1, { steps });
  await page.mouse.up();
}

async function targetInfo(page) {
  return (await page.textContent("[data-testid=target-info]")) ?? "";
}

function slicesWithMask(info) {
  const m = /(\d+) slices with mask/.exec(info);
  return m ? Number(m[1]) : -1;
}

/** Wait until the stored events of `query` include every kind in `wanted`; returns the kinds seen. */
async function eventKinds(page, query, wanted, tries = 30) {
  let kinds = new Set();
  for (let i = 0; i < tries && !wanted.every((k) => kinds.has(k)); i++) {
    await page.waitForTimeout(500);
    kinds = new Set((await api(page, `/api/events/?${query}&page_size=500`)).results.map((e) => e.kind));
  }
  return kinds;
}

test("an annotator segments a lesion with MedSAM2, corrects it, a reviewer accepts it, a manager sees its time", async () => {
  assert.ok(LESION, "E2E_LESION (set by scripts/e2e.sh) names the demo lesion to segment");
  // --- manager: a short idle threshold for this project
  const m0 = await newPage(1366, 768);
  await login(m0.page, MANAGER);
  const project = await api(m0.page, `/api/projects/${(await api(m0.page, `/api/cases/${LESION.case}/`)).project}/`);
  const csrf = (await m0.context.cookies()).find((c) => c.name === "csrftoken").value;
  await api(m0.page, `/api/projects/${project.id}/`, {
    method: "PATCH",
    headers: { "X-CSRFToken": csrf, "Content-Type": "application/json" },
    data: { settings: { ...project.settings, idle_threshold_s: IDLE_S } },
  });
  await m0.context.close();

  // --- annotator, laptop screen
  const { context, page } = await newPage(1366, 768);
  await login(page, ANNOTATOR);
  await page.waitForSelector("[data-testid=all-cases]");
  await page.screenshot({ path: path.join(SHOTS, "worklist-1366x768.png") });
  const ct = await api(page, `/api/cases/${LESION.case}/`);
  assert.equal(ct.status, "ready");

  const started = Date.now();
  await openCase(page, ct.id);
  const idsBefore = new Set((await api(page, `/api/targets/?case=${ct.id}&page_size=500`)).results.map((t) => t.id));

  // scroll to the lesion's key slice with the keyboard, then box it: with no target selected the box
  // creates one, places the prompt and starts propagation
  for (let i = await currentSlice(page); i !== LESION.frame; i = await currentSlice(page)) {
    await page.keyboard.press(i < LESION.frame ? "ArrowDown" : "ArrowUp");
  }
  await page.keyboard.press("r");
  const [x0, y0, x1, y1] = LESION.box;
  await dragImage(page, [x0, y0], [x1, y1]);
  await page.waitForSelector("[data-testid=target-info]");
  const target = (await api(page, `/api/targets/?case=${ct.id}&page_size=500`)).results.find((t) => !idsBefore.has(t.id));
  assert.ok(target, "the box created a new target");
  await page.waitForSelector("[data-testid=job-progress]:is([data-status=succeeded], [data-status=failed], [data-status=cancelled])", { timeout: JOB_TIMEOUT_MS });
  const jobs = (await api(page, `/api/propagation-jobs/?target=${target.id}`)).results;
  assert.equal(jobs[0]?.status, "succeeded", `propagation job: ${JSON.stringify(jobs[0])}`);
  await page.waitForFunction(() => /[1-9]\d* slices with mask/.test(document.querySelector("[data-testid=target-info]")?.textContent ?? ""));
  assert.ok(slicesWithMask(await targetInfo(page)) > 0, "the propagated mask covers at least one slice");
  // the key slice's mask lies mostly inside the lesion's box
  const frames = await api(page, `/api/mask-revisions/${jobs[0].result_revision}/frames/?start=${LESION.frame}&stop=${LESION.frame + 1}`);
  const key = decodeRle(frames[String(LESION.frame)]);
  const width = ct.shape[2];
  let inside = 0;
  let total = 0;
  key.forEach((v, i) => {
    if (!v) return;
    total++;
    const x = i % width;
    const y = Math.floor(i / width);
    if (x >= x0 && x < x1 && y >= y0 && y < y1) inside++;
  });
  assert.ok(total > 0, "the key slice has a mask");
  console.log(`key slice mask: ${total} px, ${Math.round((100 * inside) / total)}% inside the lesion box`);
  await page.screenshot({ path: path.join(SHOTS, "case-propagated-1366x768.png") });

  // paint a correction with the brush, then undo it; the stroke is saved as a human revision first
  await page.keyboard.press("b");
  await drag(page, [0.3, 0.7], [0.45, 0.75]);
  await page.waitForFunction(() => !/unsaved/.test(document.querySelector("[data-testid=target-info]")?.textContent ?? "") , null, { timeout: 15000 });
  const revsAfterStroke = (await api(page, `/api/mask-revisions/?target=${target.id}`)).results;
  assert.ok(revsAfterStroke.some((r) => r.source === "human"), "the brush stroke was saved as a human revision");
  await page.keyboard.press("Control+z");
  await page.waitForFunction(() => !/unsaved/.test(document.querySelector("[data-testid=target-info]")?.textContent ?? ""), null, { timeout: 15000 });
  await page.screenshot({ path: path.join(SHOTS, "case-corrected-1366x768.png") });

  // when the page is hidden the queued events go out at once with navigator.sendBeacon (a form body)
  const beacon = page.waitForResponse((res) => res.url().endsWith("/api/events/") && (res.request().headers()["content-type"] ?? "").startsWith("multipart/form-data"));
  await page.evaluate(() => {
    Object.defineProperty(document, "visibilityState", { value: "hidden", configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
  });
  const beaconRes = await beacon;
  assert.equal(beaconRes.status(), 201, `beacon answered ${beaconRes.status()}`);
  await page.evaluate(() => {
    Object.defineProperty(document, "visibilityState", { value: "visible", configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
  });

  // help overlay opens with "?"
  await page.keyboard.press("?");
  await page.waitForSelector("[data-testid=help]:not(.hidden)");
  await page.keyboard.press("Escape");

  // submit (suspect slices not visited: the page asks first, in the page, and we submit anyway)
  await page.click("[data-testid=submit]");
  if (await page.$("[data-testid=submit-check]")) await page.click("[data-testid=submit-check-anyway]");
  await page.waitForSelector(`[data-testid=target-${target.id}] .badge-submitted`);
  const wallSeconds = (Date.now() - started) / 1000;

  // stored revisions: model proposal, human stroke, human undo (the undo restores the model's mask)
  const revisions = (await api(page, `/api/mask-revisions/?target=${target.id}`)).results.sort((a, b) => a.number - b.number);
  assert.equal(revisions[0].source, "model");
  assert.ok(revisions.filter((r) => r.source === "human").length >= 2, `revisions: ${revisions.map((r) => r.source)}`);
  const model = revisions[0];
  const last = revisions[revisions.length - 1];
  assert.equal(last.voxel_count, model.voxel_count, "after undo the final mask equals the model proposal again");
  assert.ok(Object.keys(model.frame_scores ?? {}).length > 0, "the model revision carries per-frame scores");

  // timing events arrive in batches (flush every ~2 s)
  const wanted = ["target_opened", "prompt_placed", "propagation_requested", "propagation_received", "edit_stroke", "undo", "visibility_hidden", "visibility_visible", "submit"];
  let kinds = await eventKinds(page, `target=${target.id}`, wanted);
  assert.deepEqual(wanted.filter((k) => !kinds.has(k)), [], `events stored: ${[...kinds].join(", ")}`);

  // no input for longer than the idle threshold: the page records `idle` once, then `active` on the next input
  await page.waitForTimeout((IDLE_S + 1.5) * 1000);
  await page.mouse.move(200, 200);
  const activity = ["heartbeat", "idle", "active"];
  kinds = await eventKinds(page, `target=${target.id}`, activity);
  assert.deepEqual(activity.filter((k) => !kinds.has(k)), [], `events stored: ${[...kinds].join(", ")}`);
  const prompts = (await api(page, `/api/prompts/?target=${target.id}`)).results;
  assert.equal(prompts.filter((p) => p.kind === "box" && !p.withdrawn).length, 1);
  await context.close();

  // --- reviewer, desktop screen
  const r = await newPage(1920, 1080);
  await login(r.page, REVIEWER);
  await r.page.goto(`${BASE_URL}/#/review`);
  await r.page.waitForSelector(`[data-testid=review-target-${target.id}]`);
  // the queue shows who submitted it, its active time, edits and Dice(first proposal, final)
  const queued = r.page.locator("tr", { has: r.page.locator(`[data-testid=review-target-${target.id}]`) });
  assert.match(await queued.locator("[data-testid=active-time]").textContent(), /\d/);
  assert.ok((await queued.textContent()).includes(ANNOTATOR), "the submitter is shown");
  await r.page.screenshot({ path: path.join(SHOTS, "review-queue-1920x1080.png") });
  await r.page.click(`[data-testid=review-target-${target.id}]`);
  await r.page.waitForSelector(".view[data-ready='1']", { timeout: 60000 });
  await r.page.waitForSelector("[data-testid=accept]");
  await r.page.click("[data-testid=show-proposal]");
  await r.page.click("[data-testid=show-final]");
  await r.page.screenshot({ path: path.join(SHOTS, "review-case-1920x1080.png") });
  await r.page.fill("[data-testid=review-comment]", "looks right");
  await r.page.click("[data-testid=accept]");
  await r.page.waitForSelector(`[data-testid=target-${target.id}] .badge-accepted`);
  const accepted = await api(r.page, `/api/targets/${target.id}/`);
  assert.equal(accepted.status, "accepted");
  assert.equal(accepted.review_comment, "looks right");
  await r.context.close();

  // --- manager: the lesion on the dashboard with a plausible time, and every chart drawn
  const m = await newPage(1440, 900);
  await login(m.page, MANAGER);
  await m.page.goto(`${BASE_URL}/#/dashboard?project=${project.id}`);
  await m.page.waitForSelector(`[data-testid=lesion-row-${target.id}]`, { timeout: 60000 });
  // every chart drew; the box plots drew a box in the series colour, the phase bars a waiting bar
  const drawn = {};
  for (const chart of ["chart-time", "chart-reduction", "chart-phases", "chart-dice"]) {
    await m.page.waitForSelector(`[data-testid=${chart}][data-rendered='1']`, { timeout: 30000 });
    drawn[chart] = await m.page.$$eval(`[data-testid=${chart}] svg path`, (paths) =>
      [...new Set(paths.flatMap((p) => [p.getAttribute("fill"), p.getAttribute("stroke")]).filter(Boolean).map((c) => c.toLowerCase().replace(/\s/g, "")))],
    );
  }
  console.log(`chart colours: ${JSON.stringify(drawn)}`);
  const has = (chart, hex, rgb) => drawn[chart].includes(hex) || drawn[chart].includes(rgb);
  assert.ok(has("chart-time", "#40a9ff", "rgb(64,169,255)"), "the time box plot drew a box");
  assert.ok(has("chart-dice", "#40a9ff", "rgb(64,169,255)"), "the Dice box plot drew a box");
  assert.ok(has("chart-phases", "#faad14", "rgb(250,173,20)"), "the phase chart drew the waiting bar");
  const timing = await api(m.page, `/api/target-timings/${target.id}/`);
  console.log(`lesion ${target.id}: ${timing.time_s} s (prompting ${timing.prompting_s}, waiting ${timing.waiting_s}, correcting ${timing.correcting_s}, reviewing ${timing.reviewing_s}) of ${wallSeconds.toFixed(1)} s wall`);
  assert.ok(timing.time_s > 0 && timing.time_s <= wallSeconds + 1, `time ${timing.time_s} s within the ${wallSeconds} s the annotator had the case open`);
  assert.ok(timing.waiting_s > 0, "waiting for the model is counted from the job");
  assert.ok(Math.abs(timing.prompting_s + timing.waiting_s + timing.correcting_s - timing.time_s) < 0.01);
  assert.deepEqual([timing.status, timing.n_prompts, timing.n_strokes, timing.n_undos], ["accepted", 1, 1, 1]);
  assert.equal(timing.dice, 1, "after the undo the accepted mask is the model's first proposal");
  assert.equal(timing.submitted_by_username, ANNOTATOR);
  const shown = await m.page.textContent(`[data-testid=lesion-row-${target.id}] [data-testid=lesion-time]`);
  assert.match(shown, /^\d/);
  await m.page.screenshot({ path: path.join(SHOTS, "dashboard-1440x900.png"), fullPage: true });
  if (DOCS_DIR) await m.page.screenshot({ path: path.join(DOCS_DIR, "dashboard.png"), fullPage: true });
  await m.context.close();

  assert.deepEqual(consoleErrors, [], "no console errors");
});

test("a manager sees the server's own message when an upload is refused", async () => {
  const { context, page } = await newPage(1366, 768);
  page.allowUploadError = true;
  await login(page, MANAGER);
  const projects = (await api(page, "/api/projects/")).results;
  await page.goto(`${BASE_URL}/#/manage?project=${projects[0].id}`);
  await page.waitForSelector("[data-testid=dropzone]");
  await page.setInputFiles("[data-testid=dropzone] + input[type=file]", { name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("not an image") });
  await page.waitForSelector("[data-testid=upload-progress].failed");
  const shown = await page.textContent("[data-testid=upload-progress] .text");
  // the same request made directly gives the message the page must show verbatim
  const direct = await page.request.post(`${BASE_URL}/api/cases/upload/`, {
    headers: { "X-CSRFToken": (await context.cookies()).find((c) => c.name === "csrftoken").value },
    multipart: { project: String(projects[0].id), file: { name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("not an image") } },
  });
  assert.ok(direct.status() >= 400 && direct.status() < 500, `upload refused with 4xx, got ${direct.status()}`);
  const body = await direct.json();
  assert.ok(shown.startsWith(body.detail), `shown "${shown}" starts with the server's "${body.detail}"`);
  await page.screenshot({ path: path.join(SHOTS, "manage-upload-error-1366x768.png") });
  await context.close();
  assert.deepEqual(consoleErrors, [], "no console errors");
});

test("the viewer scrolls, windows, zooms, pans, switches axes and plays videos", async () => {
  const { context, page } = await newPage(1920, 1080);
  await login(page, ANNOTATOR);
  const cases = (await api(page, "/api/cases/?page_size=500")).results;
  const ct = cases.find((c) => c.kind === "volume" && c.modality === "CT" && c.status === "ready");
  await openCase(page, ct.id);
  const label = () => page.textContent("[data-testid=slice-label]");
  const start = await currentSlice(page);

  // wheel and arrow keys scroll slices
  const overlay = await page.locator("[data-testid=overlay]").boundingBox();
  await page.mouse.move(overlay.x + overlay.width / 2, overlay.y + overlay.height / 2);
  await page.mouse.wheel(0, 120);
  await page.waitForFunction((s) => document.querySelector("[data-testid=slice-label]").textContent.startsWith(`slice ${s + 2} `), start);
  await page.keyboard.press("ArrowUp");
  await page.keyboard.press("ArrowUp");
  assert.equal(await currentSlice(page), start - 1);

  // presets by key and window/level by right-drag
  await page.keyboard.press("2");
  assert.deepEqual(await page.evaluate(() => window.medsam2Viewer.window), { width: 1500, level: -600 });
  await page.mouse.move(overlay.x + 300, overlay.y + 300);
  await page.mouse.down({ button: "right" });
  await page.mouse.move(overlay.x + 400, overlay.y + 300, { steps: 4 });
  await page.mouse.up({ button: "right" });
  const w = await page.evaluate(() => window.medsam2Viewer.window);
  assert.ok(w.width > 1500 && w.level === -600, `right-drag widened the window: ${JSON.stringify(w)}`);

  // Ctrl+wheel zooms around the cursor; middle-drag pans; 0 resets
  const at = [overlay.width * 0.3, overlay.height * 0.4];
  const imageAt = await page.evaluate((p) => window.medsam2Viewer.canvasToImage(p), at);
  const span = () => page.evaluate(() => window.medsam2Viewer.imageToCanvas([10, 0])[0] - window.medsam2Viewer.imageToCanvas([0, 0])[0]);
  const before = await span();
  await page.mouse.move(overlay.x + at[0], overlay.y + at[1]);
  await page.keyboard.down("Control");
  await page.mouse.wheel(0, -200);
  await page.keyboard.up("Control");
  await page.waitForFunction((b) => window.medsam2Viewer.imageToCanvas([10, 0])[0] - window.medsam2Viewer.imageToCanvas([0, 0])[0] > b * 1.2, before);
  const stayed = await page.evaluate((p) => window.medsam2Viewer.imageToCanvas(p), imageAt);
  assert.ok(Math.hypot(stayed[0] - at[0], stayed[1] - at[1]) < 2, "the point under the cursor stays put");
  const origin = await page.evaluate(() => window.medsam2Viewer.imageToCanvas([0, 0]));
  await page.mouse.down({ button: "middle" });
  await page.mouse.move(overlay.x + at[0] + 40, overlay.y + at[1] + 20, { steps: 4 });
  await page.mouse.up({ button: "middle" });
  const moved = await page.evaluate(() => window.medsam2Viewer.imageToCanvas([0, 0]));
  assert.ok(Math.abs(moved[0] - origin[0] - 40) < 2 && Math.abs(moved[1] - origin[1] - 20) < 2, "middle-drag pans by the drag");
  await page.keyboard.press("0");
  assert.ok(Math.abs((await span()) - before) < 0.5, "0 resets the zoom");

  // coronal and sagittal
  await page.keyboard.press("c");
  await page.waitForFunction(() => document.querySelector("[data-testid=slice-label]").textContent.startsWith("coronal"));
  assert.match(await label(), new RegExp(`/ ${ct.shape[1]}$`));
  await page.click("[data-testid=axis-sagittal]");
  await page.waitForFunction(() => document.querySelector("[data-testid=slice-label]").textContent.startsWith("sagittal"));
  await page.screenshot({ path: path.join(SHOTS, "viewer-sagittal-1920x1080.png") });

  // a video plays
  const video = cases.find((c) => c.kind === "video" && c.status === "ready");
  if (video) {
    await openCase(page, video.id);
    const first = await currentSlice(page);
    await page.keyboard.press(" ");
    await page.waitForFunction((f) => !document.querySelector("[data-testid=slice-label]").textContent.startsWith(`frame ${f + 1} `), first);
    await page.keyboard.press(" ");
    await page.screenshot({ path: path.join(SHOTS, "viewer-video-1920x1080.png") });
  }
  await context.close();
  assert.deepEqual(consoleErrors, [], "no console errors");
});

test("a manager changes a member's role, closes the round and opens a manual-baseline round", async () => {
  const { context, page } = await newPage(1366, 768);
  await login(page, process.env.E2E_MANAGER ?? "demo-manager");
  const project = (await api(page, "/api/projects/")).results[0];
  await page.goto(`${BASE_URL}/#/manage?project=${project.id}`);
  await page.waitForSelector("[data-testid=members]");

  // role change through the members table
  const row = page.locator("[data-testid=members] tr", { hasText: ANNOTATOR });
  await row.locator("select").selectOption("reviewer");
  await page.waitForSelector(".toast-ok");
  let members = (await api(page, `/api/memberships/?project=${project.id}`)).results;
  assert.equal(members.find((m) => m.username === ANNOTATOR).role, "reviewer");
  await row.locator("select").selectOption("annotator");
  await page.waitForFunction(() => document.querySelectorAll(".toast-ok").length >= 1);
  for (let i = 0; i < 20; i++) {
    members = (await api(page, `/api/memberships/?project=${project.id}`)).results;
    if (members.find((m) => m.username === ANNOTATOR).role === "annotator") break;
    await page.waitForTimeout(250);
  }
  assert.equal(members.find((m) => m.username === ANNOTATOR).role, "annotator");

  // close the open round, then open the next one as a manual baseline
  const before = (await api(page, `/api/rounds/?project=${project.id}`)).results;
  const open = before.find((r) => r.status === "open");
  assert.ok(open, "the demo project has an open round");
  await page.click("text=Close round");
  await page.waitForSelector("text=Open next round");
  await page.check("[data-testid=progress] ~ .row input[type=checkbox]");
  await page.click("text=Open next round");
  await page.waitForSelector(`text=Round ${open.number + 1} (manual baseline)`);
  const rounds = (await api(page, `/api/rounds/?project=${project.id}`)).results;
  assert.equal(rounds.find((r) => r.id === open.id).status, "closed");
  const next = rounds.find((r) => r.number === open.number + 1);
  assert.deepEqual([next.status, next.is_manual_baseline], ["open", true]);
  await page.screenshot({ path: path.join(SHOTS, "manage-rounds-1366x768.png") });

  // and back to an assisted round: the browser tests after this one prompt the model (a baseline
  // round refuses propagation)
  await page.click("text=Close round");
  await page.waitForSelector("text=Open next round");
  await page.uncheck("[data-testid=progress] ~ .row input[type=checkbox]");
  await page.click("text=Open next round");
  await page.waitForSelector(`text=Round ${open.number + 2}`);
  const after = (await api(page, `/api/rounds/?project=${project.id}`)).results.find((r) => r.number === open.number + 2);
  assert.deepEqual([after.status, after.is_manual_baseline], ["open", false]);
  await context.close();
  assert.deepEqual(consoleErrors, [], "no console errors");
});
