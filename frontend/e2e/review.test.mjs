// End-to-end: team workflow. A manager assigns a case to an annotator and a reviewer; the reviewer
// sees the model's first proposal, the final mask and their diff, the strip keeps the model's
// confidence on untouched slices and marks the edited one, fixes a slice (a "review" revision), pins a
// comment to a slice and rejects; the annotator sees the comment on the rejected target and jumps to it.
// The submitted target comes from scripts/e2e.sh (E2E_REVIEW), with the diff's true counts.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const BASE_URL = process.env.BASE_URL ?? "http://127.0.0.1:8000";
const PASSWORD = process.env.E2E_PASSWORD ?? "demo-pass-123";
const REVIEW = JSON.parse(process.env.E2E_REVIEW ?? "null");

let browser;
const problems = [];

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"],
  });
});

after(async () => {
  await browser?.close();
});

async function signIn(username) {
  const context = await browser.newContext({ viewport: { width: 1600, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(90000); // the test machine is shared and often loaded
  page.on("console", (msg) => msg.type() === "error" && problems.push(`${username}: ${msg.text()}`));
  page.on("pageerror", (err) => problems.push(`${username}: pageerror ${err.message}`));
  await page.goto(`${BASE_URL}/#/login`);
  await page.fill("input[name=username]", username);
  await page.fill("input[name=password]", PASSWORD);
  await page.click("form[data-testid=login-form] button[type=submit]");
  await page.waitForSelector("[data-testid=whoami]");
  return { context, page };
}

async function api(page, url) {
  const res = await page.request.fetch(`${BASE_URL}${url}`);
  assert.ok(res.ok(), `${url} -> ${res.status()}`);
  return res.json();
}

async function goToSlice(page, frame) {
  await page.evaluate((f) => window.medsam2Viewer.setIndex(f), frame);
  await page.waitForFunction((f) => document.querySelector("[data-testid=slice-label]")?.textContent?.startsWith(`slice ${f + 1} /`), frame);
}

/**
 * Click a side-panel button until it shows its effect: the panel is re-rendered on every change, and a
 * click whose button is replaced between mouse down and up never fires.
 */
async function clickUntil(page, selector, effect) {
  for (let i = 0; i < 5; i++) {
    await page.click(selector);
    if (await page.waitForSelector(effect, { timeout: 3000 }).then(() => true, () => false)) return;
  }
  assert.fail(`${selector} never took effect (${effect})`);
}

/** The strip's colour at a frame's cell, as [r, g, b]. */
async function stripColor(page, frame, count) {
  return page.evaluate(([f, n]) => {
    const c = document.querySelector("[data-testid=confidence-strip]");
    const dpr = window.devicePixelRatio || 1;
    const x = Math.floor(((f + 0.5) * c.clientWidth * dpr) / n);
    return Array.from(c.getContext("2d").getImageData(x, Math.floor(c.height / 2), 1, 1).data.slice(0, 3));
  }, [frame, count]);
}

test("a manager assigns a case to an annotator and a reviewer, and their worklists show it", async () => {
  const { context, page } = await signIn("demo-manager");
  const kase = await api(page, `/api/cases/${REVIEW.case}/`);
  await page.goto(`${BASE_URL}/#/manage?project=${kase.project}`);
  await page.waitForSelector(`[data-testid=pick-case-${kase.id}]`);
  const members = (await api(page, `/api/memberships/?project=${kase.project}`)).results;
  const id = (name) => String(members.find((m) => m.username === name).user);
  await page.check(`[data-testid=pick-case-${kase.id}]`);
  await page.selectOption("[data-testid=assign-annotator]", id("demo-annotator"));
  await page.selectOption("[data-testid=assign-reviewer]", id("demo-reviewer"));
  await page.click("[data-testid=assign]");
  await page.waitForFunction((c) => document.querySelector(`[data-testid=reviewer-${c}]`)?.textContent === "demo-reviewer", kase.id);
  const after = await api(page, `/api/cases/${kase.id}/`);
  assert.equal(after.assignee_username, "demo-annotator");
  assert.equal(after.reviewer_username, "demo-reviewer");
  // roles are per project: the top bar shows only the name
  assert.equal((await page.textContent("[data-testid=whoami]")).trim(), "demo-manager");
  await context.close();

  const r = await signIn("demo-reviewer");
  await r.page.waitForSelector(`[data-testid=reviewing-cases] [data-testid=case-row-${kase.id}]`);
  await r.context.close();
});

test("a reviewer sees proposal, final and diff, fixes a slice, pins a comment; the annotator jumps to it", async () => {
  assert.ok(REVIEW, "E2E_REVIEW (set by scripts/e2e.sh) names the submitted target");
  const { context, page } = await signIn("demo-reviewer");
  await page.goto(`${BASE_URL}/#/review`);
  await page.click(`[data-testid=review-target-${REVIEW.target}]`);
  await page.waitForSelector(".view[data-ready='1']", { timeout: 60000 });
  await page.waitForSelector("[data-testid=diff-totals]");
  assert.equal(await page.textContent("[data-testid=diff-totals]"), `+${REVIEW.added} / −${REVIEW.removed} voxels on 1 edited slices`);

  // the strip: the edited slice is a person's (blue), an untouched one keeps the model's confidence (green)
  const kase = await api(page, `/api/cases/${REVIEW.case}/`);
  const depth = kase.shape[0];
  assert.deepEqual(await stripColor(page, REVIEW.frame, depth), [29, 57, 196]);
  assert.deepEqual(await stripColor(page, REVIEW.model_frame, depth), [56, 158, 13]);

  // the proposal is the first model run: its slices, then back to the final mask
  await page.click("[data-testid=show-proposal]");
  await page.waitForFunction((n) => document.querySelector("[data-testid=target-info]")?.textContent?.includes(`${n} slices with mask`), REVIEW.proposal_frames);
  await page.click("[data-testid=show-final]");
  await page.waitForSelector("[data-testid=show-diff]");

  // the diff on the edited slice
  await clickUntil(page, "[data-testid=show-diff]", "[data-testid=show-diff].active");
  await goToSlice(page, REVIEW.frame);
  await page
    .waitForFunction(
      ([a, r]) => document.querySelector("[data-testid=diff-slice]")?.textContent === `this slice: +${a} added (green), −${r} removed (magenta)`,
      [REVIEW.added, REVIEW.removed],
      { timeout: 30000 },
    )
    .catch(async (err) => {
      const seen = await page.evaluate(() => ["diff-slice", "diff-totals", "target-info", "slice-label"].map((t) => document.querySelector(`[data-testid=${t}]`)?.textContent));
      throw new Error(`${err.message}; the page shows ${JSON.stringify(seen)}`);
    });

  // a reviewer's fix: brush on the slice; saved as a "review" revision, the target stays submitted
  await clickUntil(page, "[data-testid=review-fix]", "[data-testid=review-fix].active");
  await page.keyboard.press("b");
  const box = await page.locator("[data-testid=overlay]").boundingBox();
  await page.mouse.move(box.x + box.width * 0.6, box.y + box.height * 0.6);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.7, box.y + box.height * 0.65, { steps: 6 });
  await page.mouse.up();
  let revisions = [];
  for (let i = 0; i < 120 && !revisions.some((r) => r.source === "review"); i++) {
    await page.waitForTimeout(250);
    revisions = (await api(page, `/api/mask-revisions/?target=${REVIEW.target}`)).results;
  }
  assert.ok(revisions.some((r) => r.source === "review" && r.author !== null), `revisions: ${revisions.map((r) => r.source)}`);
  assert.equal((await api(page, `/api/targets/${REVIEW.target}/`)).status, "submitted");

  // pin a comment to a spot of the slice, then reject
  await page.fill("[data-testid=slice-comment-text]", "the rim is missed here");
  await clickUntil(page, "[data-testid=pin-comment]", "[data-testid=pin-comment].active");
  const spot = await page.evaluate(() => window.medsam2Viewer.imageToCanvas([20, 20]));
  await page.mouse.click(box.x + spot[0], box.y + spot[1]);
  await page.waitForSelector("[data-testid=slice-comments] li");
  const comments = (await api(page, `/api/slice-comments/?target=${REVIEW.target}`)).results;
  assert.equal(comments.length, 1);
  assert.equal(comments[0].frame, REVIEW.frame);
  assert.ok(Math.abs(comments[0].x - 20) < 1.5 && Math.abs(comments[0].y - 20) < 1.5, `pinned at ${comments[0].x}, ${comments[0].y}`);
  await page.fill("[data-testid=review-comment]", "see the pinned note");
  await page.click("[data-testid=reject]");
  await page.waitForSelector(`[data-testid=target-${REVIEW.target}] .badge-rejected`);
  await context.close();

  // the annotator sees the note on the rejected target and jumps to its slice
  const a = await signIn("demo-annotator");
  await a.page.goto(`${BASE_URL}/#/cases/${REVIEW.case}?target=${REVIEW.target}`);
  await a.page.waitForSelector(".view[data-ready='1']", { timeout: 60000 });
  await a.page.waitForSelector(`[data-testid=comment-${comments[0].id}]`);
  await goToSlice(a.page, REVIEW.frame === 0 ? 1 : 0);
  await a.page.click(`[data-testid=comment-${comments[0].id}]`);
  await a.page.waitForFunction((f) => document.querySelector("[data-testid=slice-label]")?.textContent?.startsWith(`slice ${f + 1} /`), REVIEW.frame);
  await a.context.close();

  assert.deepEqual(problems, [], "no console errors");
});

test("a reviewer who annotated a target is told that another reviewer must review it", async () => {
  const { context, page } = await signIn("demo-reviewer");
  const csrf = (await context.cookies()).find((c) => c.name === "csrftoken").value;
  const post = async (url, data) => {
    const res = await page.request.fetch(`${BASE_URL}${url}`, { method: "POST", headers: { "X-CSRFToken": csrf }, data });
    assert.ok(res.ok(), `${url} -> ${res.status()} ${await res.text()}`);
    return res.json();
  };
  const kase = await api(page, `/api/cases/${REVIEW.case}/`);
  const target = await post("/api/targets/", { case: kase.id, label: "lesion" });
  const [, height, width] = kase.shape;
  const runs = [width * 2 + 2, 3, height * width - width * 2 - 5]; // 3 voxels on frame 0
  await post("/api/mask-revisions/", { target: target.id, slices: { 0: { rle: runs } } });
  await post(`/api/targets/${target.id}/submit/`, {});
  await page.goto(`${BASE_URL}/#/cases/${kase.id}?target=${target.id}`);
  await page.waitForSelector("[data-testid=own-work]");
  assert.equal(await page.$("[data-testid=accept]"), null, "no Accept button on one's own work");
  // and the server agrees
  const res = await page.request.fetch(`${BASE_URL}/api/targets/${target.id}/accept/`, { method: "POST", headers: { "X-CSRFToken": csrf }, data: {} });
  assert.equal(res.status(), 403);
  await context.close();
  assert.deepEqual(problems, [], "no console errors");
});
