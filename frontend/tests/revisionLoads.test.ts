import { describe, expect, it } from "vitest";
import { ApiClient } from "../src/services/api";
import { EventService } from "../src/services/events";
import { JobService } from "../src/services/jobs";
import { MaskStore } from "../src/viewer/maskStore";
import { Workspace } from "../src/views/workspace";
import type { Case, Project } from "../src/types";

const kase = { id: 1, project: 1, name: "ct", kind: "volume", modality: "CT", shape: [1, 1, 4], spacing: [1, 1, 1], status: "ready" } as Case;
const project = { id: 1, name: "p", labels: [{ name: "lesion" }], settings: {} } as unknown as Project;

describe("switching between the proposal and the final mask", () => {
  it("shows the revision asked for last, even when an earlier, slower load answers after it", async () => {
    // revision 1 (the proposal) answers after 40 ms, revision 2 (the final mask) at once
    const frames: Record<string, number[]> = { "1": [0, 4], "2": [2, 2] };
    const fetchImpl = (async (url: string) => {
      const m = /\/api\/mask-revisions\/(\d+)\/(frames\/)?$/.exec(url.split("?")[0]);
      if (!m) return new Response(JSON.stringify({ detail: "no route" }), { status: 404 });
      if (m[1] === "1") await new Promise((r) => setTimeout(r, 40));
      const body = m[2] ? { "0": frames[m[1]] } : { id: Number(m[1]), frame_scores: {} };
      return new Response(JSON.stringify(body), { status: 200 });
    }) as unknown as typeof fetch;
    const api = ApiClient.create({ fetchImpl, cookies: () => "" });
    const events = EventService.create({ transport: async () => "ok" as const, storage: null });
    const ws = new Workspace(api, events, JobService.create(api), kase, project);
    ws.mask = new MaskStore(1, 1, 4);
    await Promise.all([ws.loadRevision(1), ws.loadRevision(2)]);
    expect(ws.mask.baseRevision).toBe(2);
    expect(Array.from(ws.mask.get(0)!)).toEqual([0, 0, 1, 1]);
    ws.destroy();
    events.destroy();
  });

  it("stays on the final mask when it is asked for while the proposal is still being looked up", async () => {
    let listed: (() => void) | null = null;
    const fetchImpl = (async (url: string) => {
      const path = url.split("?")[0];
      if (path === "/api/mask-revisions/") {
        await new Promise<void>((r) => (listed = r)); // the proposal's lookup answers last
        return new Response(JSON.stringify({ count: 1, next: null, previous: null, results: [{ id: 1, number: 1, source: "model" }] }));
      }
      const m = /\/api\/mask-revisions\/(\d+)\/(frames\/)?$/.exec(path);
      const body = m && m[2] ? { "0": m[1] === "1" ? [0, 4] : [2, 2] } : { id: Number(m?.[1]), frame_scores: {} };
      return new Response(JSON.stringify(body), { status: 200 });
    }) as unknown as typeof fetch;
    const api = ApiClient.create({ fetchImpl, cookies: () => "" });
    const events = EventService.create({ transport: async () => "ok" as const, storage: null });
    const ws = new Workspace(api, events, JobService.create(api), kase, project);
    ws.mask = new MaskStore(1, 1, 4);
    ws.target = { id: 7, current_revision: { id: 2, number: 2, source: "human", voxel_count: 2 } } as never;
    const proposal = ws.showRevision("proposal");
    await ws.showRevision("current");
    (listed as unknown as () => void)();
    await proposal;
    expect([ws.viewing, ws.mask.baseRevision]).toEqual(["current", 2]);
    expect(Array.from(ws.mask.get(0)!)).toEqual([0, 0, 1, 1]);
    ws.destroy();
    events.destroy();
  });
});
