// End-to-end: the learning loop's admin pages as a project admin sees them (issue 14 item 6), on the
// stack started by scripts/e2e.sh. A project of its own ("E2E learning loop", so the demo project's
// round stays open for the other files) is seeded through manage.py shell: an admin, round 1 closed
// with a frozen snapshot, round 2 open, a parent version (active) and a candidate the gate rejected
// with per-target held-out Dice, and a running training run whose row is then advanced the way the
// training worker writes it (e2e.sh starts no worker on the `training` queue, so the fine-tuning
// itself is not run here). The browser: sets and clears the manual-baseline flag, starts a training
// run (queued, then cancelled), watches the running run's progress bar, ETA and curves grow, compares
// the two versions, promotes the candidate and rolls back with a reason, and uploads a file that is
// not a checkpoint, which the worker rejects. No page error, no console error.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

const BASE_URL = process.env.BASE_URL ?? "http://127.0.0.1:8000";
const PASSWORD = process.env.E2E_PASSWORD ?? "demo-pass-123";
const ADMIN = "e2e-loop-admin";
const ROOT = path.resolve(import.meta.dirname, "../..");
const SHOTS = path.join(process.env.E2E_ARTIFACTS ?? path.join(ROOT, "test-artifacts"), "screenshots");

let browser;
let seed;

function shell(code) {
  const out = execFileSync("python", ["manage.py", "shell", "-v", "0", "-c", code], { cwd: ROOT, encoding: "utf8" });
  return JSON.parse(out.trim().split("\n").at(-1));
}

const SEED = `
import json
from django.contrib.auth import get_user_model
from django.utils import timezone
from annotation_app.lib.roles import Role
from annotation_app.projects.models import Project
from annotation_app.rounds.models import ModelVersion, Round, TrainingRun
User = get_user_model()
admin, _ = User.objects.get_or_create(username="${ADMIN}")
admin.set_password("${PASSWORD}"); admin.save()
p = Project.objects.create(name="E2E learning loop", modality="MR")
p.add_member(admin, Role.ADMIN)
now = timezone.now()
parent = ModelVersion.objects.create(project=p, name="bootstrap", checkpoint_key=f"models/{p.pk}/e2e/bootstrap.pt",
    sha256="a" * 64, verified_at=now, created_by=admin)
parent.activate(by=admin)
r1 = Round.objects.create(project=p, number=1, model_version=parent, status="training", closed_at=now,
    snapshot={"train": [101, 102], "held_out": [201, 202]}, snapshot_hash="d" * 64)
r2 = Round.objects.create(project=p, number=2, model_version=parent, status="closed", closed_at=now,
    snapshot={"train": [101, 102, 103], "held_out": [201, 202]}, snapshot_hash="b" * 64)
r3 = Round.objects.create(project=p, number=3, model_version=parent)
per_target = [
    {"target": 201, "case": 31, "modality": "MR", "dice": 0.82, "nsd": 0.9, "parent_dice": 0.71, "parent_nsd": 0.8},
    {"target": 202, "case": 32, "modality": "US", "dice": 0.55, "nsd": 0.6, "parent_dice": 0.74, "parent_nsd": 0.7},
]
metrics = {"held_out": {"candidate": {"mean_dice": 0.685, "mean_nsd": 0.75, "by_modality": {"MR": {"dice": 0.82, "nsd": 0.9, "targets": 1}, "US": {"dice": 0.55, "nsd": 0.6, "targets": 1}}},
                        "parent": {"mean_dice": 0.725, "mean_nsd": 0.75, "by_modality": {"MR": {"dice": 0.71, "nsd": 0.8, "targets": 1}, "US": {"dice": 0.74, "nsd": 0.7, "targets": 1}}}},
           "per_target": per_target, "train": {"steps": 40, "final_loss": 0.31, "wall_s": 95.0}}
done = TrainingRun.objects.create(project=p, round=r1, base_model=parent, status="succeeded", progress=1.0, step=40, total_steps=40,
    started_at=now, finished_at=now, requested_by=admin)
child = ModelVersion.objects.create(project=p, name="round 1 run e2e", checkpoint_key=f"models/{p.pk}/runs/{done.pk}/model.pt",
    sha256="c" * 64, parent=parent, training_run=done, round=r1, snapshot_hash=r1.snapshot_hash, metrics=metrics,
    verified_at=now, status="candidate", created_by=admin, code_version="0.1.0 (e2e)")
child.reject("held-out Dice 0.6850 vs the parent's 0.7250: fails the gate (at most 0.01 below)")
live = TrainingRun.objects.create(project=p, round=r1, base_model=parent, status="running", started_at=now, worker="train@e2e#1",
    attempts=1, step=20, total_steps=200, progress=0.1, loss=0.9, learning_rate=5e-5, eta_s=725,
    history=[{"step": s, "loss": round(1.2 - s * 0.01, 3), "lr": 5e-5} for s in range(1, 21)], log="started on train@e2e#1 (cpu), attempt 1")
print(json.dumps({"project": p.pk, "r1": r1.pk, "r2": r2.pk, "r3": r3.pk, "parent": parent.pk, "child": child.pk, "live": live.pk}))
`;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  seed = shell(SEED);
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
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (err) => errors.push(err.message));
  page.on("console", (msg) => {
    if (msg.type() === "error") errors.push(msg.text());
  });
  page.on("dialog", (d) => void d.accept());
  await page.goto(`${BASE_URL}/#/login`);
  await page.fill("input[name=username]", username);
  await page.fill("input[name=password]", PASSWORD);
  await page.click("form[data-testid=login-form] button[type=submit]");
  await page.waitForSelector("[data-testid=whoami]");
  return { context, page, errors };
}

async function api(page, url, init) {
  const res = await page.request.fetch(`${BASE_URL}${url}`, init);
  assert.ok(res.ok(), `${url} -> ${res.status()}`);
  return res.json();
}

test("the rounds page shows the rounds, toggles the manual baseline and starts a training run", async () => {
  const { context, page, errors } = await signedIn(ADMIN);
  await page.click("nav a[href='#/rounds']");
  await page.selectOption("[data-testid=project-picker]", String(seed.project));
  await page.locator("[data-testid=round-3]").waitFor();
  assert.equal(await page.locator("[data-testid=rounds] tr[data-testid^=round-]").count(), 3);
  assert.match(await page.locator("[data-testid=round-1]").textContent(), /training.*run \d+ running 10 % · ETA 12 min 05 s/);
  assert.match(await page.locator("[data-testid=round-2]").textContent(), /closed/);
  assert.equal(await page.locator("[data-testid=snapshot-2]").textContent(), "3 train · 2 held-out masks · bbbbbbbbbb");
  assert.match(await page.locator("[data-testid=round-3]").textContent(), /open.*bootstrap/);
  assert.equal(await page.textContent("[data-testid=active-model]"), "bootstrap");
  assert.equal(await page.locator("[data-testid=baseline-2]").isDisabled(), true, "a closed round's flag is fixed");
  assert.equal(await page.locator("[data-testid=train-1]").count(), 0, "no second run while one trains the round");

  // the manual-baseline flag of the open round: on (no model pinned), then off again (the active model)
  await page.check("[data-testid=baseline-3]");
  await page.waitForFunction(() => document.querySelector("[data-testid=round-3]")?.textContent?.includes("none (manual)"));
  let r3 = await api(page, `/api/rounds/${seed.r3}/`);
  assert.deepEqual([r3.is_manual_baseline, r3.model_version], [true, null]);
  await page.uncheck("[data-testid=baseline-3]");
  await page.waitForFunction(() => !document.querySelector("[data-testid=round-3]")?.textContent?.includes("none (manual)"));
  r3 = await api(page, `/api/rounds/${seed.r3}/`);
  assert.deepEqual([r3.is_manual_baseline, r3.model_version], [false, seed.parent]);
  await page.locator("[data-testid=round-3]").waitFor();
  await page.screenshot({ path: path.join(SHOTS, "learning-rounds.png") });
  assert.equal(await page.locator("[data-testid=open-round]").count(), 0, "one open round per project");

  // close round 3 (confirmed): its snapshot is frozen; then open round 4 as the manual baseline
  await page.click("[data-testid=close-round-3]");
  await page.waitForFunction(() => document.querySelector("[data-testid=round-3]")?.textContent?.includes("closed"));
  const closed = await api(page, `/api/rounds/${seed.r3}/`);
  assert.equal(closed.status, "closed");
  assert.equal(closed.snapshot_hash.length, 64);
  assert.equal(await page.textContent("[data-testid=snapshot-3]"), `${closed.snapshot.train.length} train · ${closed.snapshot.held_out.length} held-out masks · ${closed.snapshot_hash.slice(0, 10)}`);
  await page.check("[data-testid=open-baseline]");
  await page.click("[data-testid=open-round]");
  await page.locator("[data-testid=round-4]").waitFor();
  assert.match(await page.textContent("[data-testid=round-4]"), /Round 4open\s*none \(manual\)/);
  const r4 = (await api(page, `/api/rounds/?project=${seed.project}`)).results.find((r) => r.number === 4);
  assert.deepEqual([r4.status, r4.is_manual_baseline, r4.model_version], ["open", true, null]);

  // start training on the closed round: a queued run, shown live; then cancelled
  await page.fill("[data-testid=train-steps-2]", "25");
  await page.click("[data-testid=train-2]");
  await page.waitForURL(/#\/training-runs\/\d+$/);
  const runId = Number(page.url().match(/training-runs\/(\d+)/)[1]);
  await page.waitForFunction(() => document.querySelector("[data-testid=run-progress]")?.textContent?.startsWith("Queued"));
  const queued = await api(page, `/api/training-runs/${runId}/`);
  assert.deepEqual([queued.status, queued.round, queued.hyperparameters], ["queued", seed.r2, { steps: 25 }]);
  assert.equal(await page.textContent("[data-testid=fact-settings]"), '{"steps":25}');
  await page.click("[data-testid=run-cancel]");
  await page.waitForFunction(() => document.querySelector("[data-testid=run-status]")?.textContent === "cancelled");
  assert.equal((await api(page, `/api/training-runs/${runId}/`)).status, "cancelled");
  await page.screenshot({ path: path.join(SHOTS, "learning-run-cancelled.png") });
  assert.deepEqual(errors, []);
  await context.close();
});

test("a running training run's progress bar, ETA and curves follow the worker's writes", async () => {
  const { context, page, errors } = await signedIn(ADMIN);
  await page.goto(`${BASE_URL}/#/training-runs/${seed.live}`);
  const chart = page.locator("[data-testid=run-chart]");
  await page.waitForFunction(() => document.querySelector("[data-testid=run-chart]")?.dataset.rendered === "1");
  assert.equal(await page.textContent("[data-testid=run-progress]"), "step 20 / 200 · 10.0 % · ETA 12 min 05 s");
  assert.equal(await page.getAttribute("[data-testid=run-progress-bar]", "aria-valuenow"), "10.0");
  assert.equal(await chart.getAttribute("data-loss-points"), "20");
  assert.equal(await chart.getAttribute("data-dice-points"), "0");
  assert.equal(await page.textContent("[data-testid=fact-lr]"), "5.00e-5");
  // the worker writes 80 more steps and a validation
  shell(`
import json
from annotation_app.rounds.models import TrainingRun
run = TrainingRun.objects.get(pk=${seed.live})
run.history += [{"step": s, "loss": round(1.2 - s * 0.005, 4), "lr": 4e-5} for s in range(21, 101)] + [{"step": 100, "val_dice": 0.7731, "val_nsd": 0.81}]
run.step, run.progress, run.loss, run.eta_s, run.learning_rate = 100, 0.5, 0.7, 95, 4e-5
run.last_validation = {"step": 100, "mean_dice": 0.7731, "mean_nsd": 0.81}
run.save()
print(json.dumps(len(run.history)))
`);
  await page.waitForFunction(() => document.querySelector("[data-testid=run-chart]")?.dataset.dicePoints === "1", null, { timeout: 15000 });
  assert.equal(await chart.getAttribute("data-loss-points"), "100");
  assert.equal(await page.textContent("[data-testid=run-progress]"), "step 100 / 200 · 50.0 % · ETA 1 min 35 s");
  assert.equal(await page.textContent("[data-testid=fact-validation]"), "step 100: Dice 0.7731 · NSD 0.8100");
  // the validation point is drawn (ECharts' SVG renderer: a symbol path per point with a label)
  await page.waitForFunction(() => [...document.querySelectorAll("[data-testid=run-chart] text")].some((t) => t.textContent === "0.773"));
  await page.screenshot({ path: path.join(SHOTS, "learning-run-live.png") });
  // the run ends: the gate's decision and the version it made
  shell(`
import json
from annotation_app.rounds.models import TrainingRun
TrainingRun.objects.filter(pk=${seed.live}).update(status="succeeded", step=200, progress=1.0, eta_s=None,
    metrics={"model_version": ${seed.child}, "gate": {"passed": False, "margin": 0.01, "reason": "held-out Dice 0.6850 vs the parent's 0.7250: fails the gate (at most 0.01 below)"}})
print(json.dumps(1))
`);
  await page.locator("[data-testid=gate]").waitFor({ timeout: 15000 });
  assert.match(await page.textContent("[data-testid=gate]"), /Rejected: held-out Dice 0\.6850 vs the parent's 0\.7250.*New version round 1 run e2e rejected/);
  assert.equal(await page.textContent("[data-testid=run-progress]"), "Finished: 200 steps");
  assert.deepEqual(errors, []);
  await context.close();
});

test("the registry shows the lineage, compares two versions per target, promotes and rolls back with a reason", async () => {
  const { context, page, errors } = await signedIn(ADMIN);
  await page.goto(`${BASE_URL}/#/registry?project=${seed.project}`);
  await page.locator("[data-testid=versions]").waitFor();
  const names = await page.locator("[data-testid=versions] tr[data-name]").evaluateAll((rows) => rows.map((r) => r.dataset.name));
  assert.deepEqual(names, ["bootstrap", "round 1 run e2e"]);
  assert.match(await page.textContent(`[data-testid=reason-${seed.child}]`), /fails the gate/);
  assert.equal(await page.textContent(`[data-testid=dice-${seed.child}]`), "0.6850");
  // compare: A = the parent, B = the candidate by default
  assert.equal(await page.inputValue("[data-testid=compare-a]"), String(seed.parent));
  assert.equal(await page.inputValue("[data-testid=compare-b]"), String(seed.child));
  assert.equal(await page.textContent("[data-testid=diff-summary]"), "2 targets compared: mean ΔDice -0.0400; 1 better, 1 worse in B.");
  assert.deepEqual(
    await page.locator("[data-testid=target-diff] tr[data-testid^=diff-]").evaluateAll((rows) => rows.map((r) => [...r.cells].map((c) => c.textContent))),
    [["201", "31", "MR", "0.7100", "0.8200", "+0.1100"], ["202", "32", "US", "0.7400", "0.5500", "-0.1900"]],
  );
  const dice = await page.locator("[data-testid=compare-metrics] tr").evaluateAll((rows) => rows.filter((r) => r.cells[0].textContent.startsWith("held-out mean Dice") || r.cells[0].textContent.startsWith("Dice ")).map((r) => [...r.cells].map((c) => c.textContent)));
  assert.deepEqual(dice, [["held-out mean Dice", "0.7250", "0.6850", "-0.0400"], ["Dice MR", "0.7100", "0.8200", "+0.1100"], ["Dice US", "0.7400", "0.5500", "-0.1900"]]);
  assert.equal(await page.textContent(`[data-testid=dice-${seed.parent}]`), "0.7250");
  await page.waitForFunction(() => document.querySelector("[data-testid=diff-chart]")?.dataset.rendered === "1");
  await page.screenshot({ path: path.join(SHOTS, "learning-registry.png"), fullPage: true });

  // promote the rejected candidate: a confirmation with a reason
  await page.click(`[data-testid=promote-${seed.child}]`);
  assert.match(await page.textContent("[data-testid=action-question]"), /Promote round 1 run e2e\? .*replacing bootstrap/);
  await page.fill("[data-testid=action-reason]", "better on MR, which is what round 3 annotates");
  await page.click("[data-testid=action-confirm]");
  await page.waitForFunction((id) => document.querySelector(`[data-testid=version-${id}] .badge`)?.textContent === "active", seed.child);
  let active = await api(page, `/api/model-versions/?project=${seed.project}&status=active`);
  assert.deepEqual(active.results.map((v) => v.id), [seed.child]);
  // roll back to the parent
  await page.click(`[data-testid=rollback-${seed.parent}]`);
  await page.fill("[data-testid=action-reason]", "US targets got worse");
  await page.click("[data-testid=action-confirm]");
  await page.waitForFunction((id) => document.querySelector(`[data-testid=version-${id}] .badge`)?.textContent === "active", seed.parent);
  active = await api(page, `/api/model-versions/?project=${seed.project}&status=active`);
  assert.deepEqual(active.results.map((v) => v.id), [seed.parent]);
  const log = await page.locator("[data-testid=activations] tr").evaluateAll((rows) => rows.slice(1).map((r) => [1, 2, 3, 4, 5].map((i) => r.cells[i].textContent)));
  assert.deepEqual(log, [
    ["rollback", "bootstrap", "round 1 run e2e", ADMIN, "US targets got worse"],
    ["promote", "round 1 run e2e", "bootstrap", ADMIN, "better on MR, which is what round 3 annotates"],
    ["activate", "bootstrap", "—", ADMIN, ""],
  ]);

  // upload: a zip that is no checkpoint is stored, then refused by the worker's strict load
  await page.fill("[data-testid=upload-name]", "not a model");
  await page.setInputFiles("[data-testid=upload-file]", { name: "bogus.pt", mimeType: "application/octet-stream", buffer: Buffer.from("PK\x03\x04 this is not a torch checkpoint") });
  await page.click("[data-testid=upload-submit]");
  await page.waitForFunction(() => /uploaded \((pending|rejected)\)/.test(document.querySelector("[data-testid=upload-status]")?.textContent ?? ""));
  let refused = null;
  for (let i = 0; i < 90 && !refused; i++) {
    const found = await api(page, `/api/model-versions/?project=${seed.project}&status=rejected`);
    refused = found.results.find((v) => v.name === "not a model") ?? null;
    if (!refused) await page.waitForTimeout(1000);
  }
  assert.ok(refused, "the worker refused the bogus checkpoint within 90 s");
  assert.ok(refused.status_reason.length > 0);
  await page.goto(`${BASE_URL}/#/registry?project=${seed.project}&t=1`);
  await page.locator(`[data-testid=version-${refused.id}]`).waitFor();
  assert.equal(await page.locator(`[data-testid=promote-${refused.id}]`).count(), 0, "a refused upload cannot be promoted");
  assert.deepEqual(errors, []);
  await context.close();
});
