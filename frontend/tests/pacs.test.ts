import { describe, expect, it } from "vitest";
import { ApiClient } from "../src/services/api";
import { connectionsFor, dicomDate, personName, pollUntil, searchStudies } from "../src/services/pacs";

function fakeApi(routes: Record<string, unknown>, seen: string[] = []): ApiClient {
  const fetchImpl = (async (url: string) => {
    seen.push(String(url));
    const path = String(url).split("?")[0];
    const body = routes[path];
    return new Response(JSON.stringify(body ?? { detail: "nope" }), { status: body ? 200 : 404, headers: { "Content-Type": "application/json" } });
  }) as unknown as typeof fetch;
  return ApiClient.create({ fetchImpl, cookies: () => "" });
}

describe("pacs service", () => {
  it("formats DICOM dates and person names for people", () => {
    expect(dicomDate("20260101")).toBe("2026-01-01");
    expect(dicomDate("2026")).toBe("2026");
    expect(personName("Doe^Jane")).toBe("Doe, Jane");
    expect(personName("")).toBe("");
  });

  it("offers a project its own and the site-wide connections only", async () => {
    const api = fakeApi({
      "/api/pacs/connections/": { count: 3, next: null, previous: null, results: [
        { id: 1, name: "ours", project: 5 }, { id: 2, name: "site", project: null }, { id: 3, name: "theirs", project: 6 },
      ] },
    });
    expect((await connectionsFor(api, 5)).map((c) => c.name)).toEqual(["ours", "site"]);
  });

  it("sends only the filled search fields with the project", async () => {
    const seen: string[] = [];
    const api = fakeApi({ "/api/pacs/connections/4/studies/": { results: [{ PatientID: "P1" }] } }, seen);
    const found = await searchStudies(api, 4, 5, { patient_id: "P1", modality: "", description: undefined });
    expect(found).toEqual([{ PatientID: "P1" }]);
    expect(seen[0]).toBe("/api/pacs/connections/4/studies/?project=5&patient_id=P1");
  });

  it("polls until the state is final and stops when the page is gone", async () => {
    const states = ["queued", "running", "succeeded", "never"];
    const shown: string[] = [];
    const last = await pollUntil(async () => states.shift()!, (s) => s === "succeeded", (s) => shown.push(s), () => true, 1);
    expect(last).toBe("succeeded");
    expect(shown).toEqual(["queued", "running", "succeeded"]);
    let reads = 0;
    const gone = await pollUntil(async () => ++reads, () => false, () => undefined, () => reads < 2, 1);
    expect(gone).toBeNull();
    expect(reads).toBe(2);
  });
});
