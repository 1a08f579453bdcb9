// End-to-end PACS round trip against a real Orthanc (annotation_app/pacs/tests/serve_orthanc.py starts
// it with one synthetic CT study and adds a DICOMweb connection to the demo project): a manager finds
// the study in the browser's PACS tab and imports its series (progress, then a link to the case), a
// second import of the same series is refused; an annotator draws and submits a mask and a reviewer
// accepts it (through the API), then sends it from the case view; the send state reads "sent" there
// and on the review page, and Orthanc holds one DICOM SEG in the study.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const BASE_URL = process.env.BASE_URL ?? "http://127.0.0.1:8000";
const PASSWORD = process.env.E2E_PASSWORD ?? "demo-pass-123";
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

let browser;
let pacs;
let pacsInfo;
const consoleErrors = [];

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"],
  });
});

after(async () => {
  await browser?.close();
  if (pacs && pacs.exitCode === null) {
    pacs.stdin.end();
    await Promise.race([once(pacs, "exit"), new Promise((r) => setTimeout(r, 15000))]);
    if (pacs.exitCode === null) pacs.kill("SIGKILL");
  }
});

async function startPacs(projectId) {
  const python = process.env.PYTHON ?? path.join(REPO, ".venv/bin/python");
  pacs = spawn(python, ["-m", "annotation_app.pacs.tests.serve_orthanc", "--project", String(projectId)], {
    cwd: REPO,
    env: process.env,
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: pacs.stdout });
  for await (const line of lines) {
    if (line.startsWith("{")) return JSON.parse(line);
  }
  throw new Error("the Orthanc helper exited before it was ready");
}

async function signedIn(username) {
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const page = await context.newPage();
  page.on("console", (msg) => msg.type() === "error" && consoleErrors.push(`${username}: ${msg.text()} (${msg.location().url})`));
  page.on("pageerror", (err) => consoleErrors.push(`${username}: pageerror ${err.message}`));
  await page.goto(`${BASE_URL}/#/login`);
  await page.fill("input[name=username]", username);
  await page.fill("input[name=password]", PASSWORD);
  await page.click("form[data-testid=login-form] button[type=submit]");
  await page.waitForSelector("[data-testid=whoami]");
  const csrf = async () => (await context.cookies()).find((c) => c.name === "csrftoken")?.value ?? "";
  const call = async (method, url, data) => {
    const res = await page.request.fetch(`${BASE_URL}${url}`, { method, data, headers: { "X-CSRFToken": await csrf() } });
    assert.ok(res.ok(), `${method} ${url} -> ${res.status()} ${await res.text()}`);
    return res.json();
  };
  return { context, page, call };
}

test("a manager imports a study from Orthanc in the browser and the accepted lesion's SEG lands in Orthanc", async () => {
  const manager = await signedIn("demo-manager");
  const project = (await manager.call("GET", "/api/projects/")).results.find((p) => p.my_role === "manager");
  pacsInfo = await startPacs(project.id);

  // the PACS tab: search by patient id, open the study, import its one series
  await manager.page.goto(`${BASE_URL}/#/manage?project=${project.id}`);
  await manager.page.click("[data-testid=pacs-tab]");
  await manager.page.waitForSelector("[data-testid=pacs-search]");
  await manager.page.selectOption("[data-testid=pacs-connection]", String(pacsInfo.connection));
  await manager.page.fill("[data-testid=pacs-patient_id]", pacsInfo.patient_id);
  await manager.page.click("[data-testid=pacs-search] button[type=submit]");
  await manager.page.waitForSelector(`[data-testid="pacs-study-${pacsInfo.study_uid}"]`);
  const rows = await manager.page.locator("[data-testid=pacs-studies] tbody tr").count();
  assert.equal(rows, 1, "one study matches the patient id");
  await manager.page.click(`[data-testid="pacs-study-${pacsInfo.study_uid}"] [data-testid=pacs-open-study]`);
  await manager.page.click(`[data-testid="pacs-series-${pacsInfo.series_uid}"] [data-testid=pacs-import]`);
  const caseLink = manager.page.locator("[data-testid=pacs-import-case]");
  await caseLink.waitFor({ timeout: 120000 });
  const caseId = Number((await caseLink.getAttribute("href")).split("/").pop());
  const kase = await manager.call("GET", `/api/cases/${caseId}/`);
  assert.deepEqual([kase.status, kase.shape], ["ready", [8, 64, 64]]);

  // searching again shows the series as imported; importing it once more is refused with the reason
  await manager.page.click(`[data-testid="pacs-study-${pacsInfo.study_uid}"] [data-testid=pacs-open-study]`);
  await manager.page.waitForSelector(`[data-testid="pacs-series-${pacsInfo.series_uid}"] [data-testid=pacs-already]`);
  const again = await manager.page.request.fetch(`${BASE_URL}/api/pacs/imports/`, {
    method: "POST",
    headers: { "X-CSRFToken": (await manager.context.cookies()).find((c) => c.name === "csrftoken").value },
    data: { project: project.id, connection: pacsInfo.connection, study_uid: pacsInfo.study_uid, series_uid: pacsInfo.series_uid },
  });
  assert.equal(again.status(), 409);
  assert.match((await again.json()).detail, /already imported/);

  // the team: an annotator saves and submits a mask, a reviewer accepts it
  const annotator = await signedIn("demo-annotator");
  const target = await annotator.call("POST", "/api/targets/", { case: caseId, label: project.labels[0].name });
  const mask = new Uint8Array(Math.ceil((8 * 64 * 64) / 8));
  for (let z = 3; z < 5; z++) for (let y = 20; y < 30; y++) for (let x = 24; x < 40; x++) {
    const i = z * 64 * 64 + y * 64 + x;
    mask[i >> 3] |= 0x80 >> (i & 7);
  }
  await annotator.call("POST", "/api/mask-revisions/", { target: target.id, mask_b64: Buffer.from(mask).toString("base64") });
  await annotator.call("POST", `/api/targets/${target.id}/submit/`, {});
  const reviewer = await signedIn("demo-reviewer");
  await reviewer.call("POST", `/api/targets/${target.id}/accept/`, { comment: "ok" });

  // the reviewer sends it from the case view and watches the state turn to "sent"
  await reviewer.page.goto(`${BASE_URL}/#/cases/${caseId}?target=${target.id}`);
  await reviewer.page.waitForSelector("[data-testid=pacs-send-none]", { timeout: 60000 });
  await reviewer.page.click(`[data-testid=pacs-send-to-${pacsInfo.connection}]`);
  await reviewer.page.waitForSelector("[data-testid=pacs-send] .badge-sent", { timeout: 60000 });
  // the review page lists it among the accepted targets with its PACS state
  await reviewer.page.goto(`${BASE_URL}/#/review`);
  await reviewer.page.waitForSelector(`[data-testid=accepted-${target.id}] [data-testid=pacs-state] .badge-sent`, { timeout: 30000 });

  // Orthanc now holds one SEG series in the study (read with its own DICOMweb, as a viewer would)
  const auth = Buffer.from(`${pacsInfo.username}:${pacsInfo.password}`).toString("base64");
  const res = await fetch(`${pacsInfo.dicomweb_url}/studies/${pacsInfo.study_uid}/series?Modality=SEG`, { headers: { Authorization: `Basic ${auth}` } });
  assert.equal(res.status, 200);
  const segs = await res.json();
  assert.equal(segs.length, 1, "one DICOM SEG series in the study");
  assert.deepEqual(consoleErrors, [], "no console error");
  for (const who of [manager, annotator, reviewer]) await who.context.close();
});
