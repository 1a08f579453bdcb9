// End-to-end: viewer basics. Presets fit the modality (CT windows on CT only, percentile presets on
// MR), the intensity under the cursor is read out (HU on CT), and orientation markers name the sides
// of each view.
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
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"],
  });
});

after(async () => {
  await browser?.close();
});

async function open(page, caseId) {
  await page.goto(`${BASE_URL}/#/cases/${caseId}`);
  await page.waitForSelector(".view[data-ready='1']");
  await page.waitForFunction(() => document.querySelector("[data-testid=slice-label]")?.textContent?.includes("/"));
}

test("presets fit the modality, the value under the cursor is shown, and the sides are marked", async () => {
  const context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
  const page = await context.newPage();
  page.setDefaultTimeout(90000);
  const problems = [];
  page.on("console", (msg) => msg.type() === "error" && problems.push(msg.text()));
  await page.goto(`${BASE_URL}/#/login`);
  await page.fill("input[name=username]", "demo-annotator");
  await page.fill("input[name=password]", PASSWORD);
  await page.click("form[data-testid=login-form] button[type=submit]");
  await page.waitForSelector("[data-testid=whoami]");
  const cases = (await (await page.request.fetch(`${BASE_URL}/api/cases/?status=ready`)).json()).results;
  const ct = cases.find((c) => c.modality === "CT" && c.kind === "volume");
  const mr = cases.find((c) => c.modality === "MR" && c.kind === "volume");
  const options = () => page.$$eval("[data-testid=preset] option", (os) => os.map((o) => o.textContent).slice(1));

  await open(page, mr.id);
  const mrOptions = await options();
  assert.ok(mrOptions.length === 4 && mrOptions.every((o) => /%|Full range/.test(o)), `MR presets: ${mrOptions}`);
  assert.ok(!mrOptions.some((o) => /CT|Lung|Bone/.test(o)));
  const before = await page.evaluate(() => window.medsam2Viewer.window);
  await page.keyboard.press("2"); // 5-95 %: narrower than the slice's full range
  await page.waitForFunction((b) => window.medsam2Viewer.window.width < b.width, before);

  await open(page, ct.id);
  const ctOptions = await options();
  assert.equal(ctOptions[0], "1 CT abdomen (400/40)");
  assert.deepEqual(
    await page.$$eval("[data-testid^=orient-]", (els) => Object.fromEntries(els.map((e) => [e.dataset.testid, e.textContent]))),
    { "orient-left": "R", "orient-right": "L", "orient-top": "A", "orient-bottom": "P" },
  );
  const box = await page.locator("[data-testid=overlay]").boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.move(box.x + box.width / 2 + 3, box.y + box.height / 2 + 2);
  await page.waitForFunction(() => / HU$/.test(document.querySelector("[data-testid=readout]")?.textContent ?? ""));
  const shown = await page.textContent("[data-testid=readout]");
  // the readout agrees with the raw slice the server sends for that pixel
  const [, x, y, hu] = /x (\d+), y (\d+) · (-?\d+(?:\.\d+)?) HU/.exec(shown).map(Number);
  const index = Number(/slice (\d+)/.exec(await page.textContent("[data-testid=slice-label]"))[1]) - 1;
  const raw = await page.request.fetch(`${BASE_URL}/api/cases/${ct.id}/slice/?axis=axial&index=${index}&format=raw`);
  const headers = raw.headers();
  const bytes = await raw.body();
  const width = headers["x-shape"].match(/\d+/g).map(Number)[1];
  const dtype = headers["x-dtype"] ?? "int16";
  const value = /uint8/.test(dtype) ? bytes[y * width + x] : bytes.readInt16LE(2 * (y * width + x));
  const slope = Number(headers["x-rescale-slope"] ?? 1);
  const intercept = Number(headers["x-rescale-intercept"] ?? 0);
  assert.ok(Math.abs(hu - (value * slope + intercept)) < 0.01, `readout ${shown} vs raw ${value} (x${slope} + ${intercept})`);

  await page.keyboard.press("c");
  await page.waitForFunction(() => document.querySelector("[data-testid=orient-top]")?.textContent === "S");
  assert.equal(await page.textContent("[data-testid=orient-bottom]"), "I");
  assert.deepEqual(problems, [], "no console errors");
  await context.close();
});
