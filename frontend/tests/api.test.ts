import { describe, expect, it } from "vitest";
import { ApiClient, ApiError, buildUrl, parseErrorBody, readCookie } from "../src/services/api";
import { decodeRawSlice, parseShapeHeader } from "../src/viewer/sliceSource";

function fakeFetch(routes: Record<string, unknown>, seen: RequestInit[] = []): typeof fetch {
  return (async (url: string, init: RequestInit) => {
    seen.push(init);
    const body = routes[url];
    if (body === undefined) return new Response(JSON.stringify({ detail: "Not found." }), { status: 404 });
    if (body instanceof Response) return body;
    return new Response(JSON.stringify(body), { status: 200 });
  }) as unknown as typeof fetch;
}

describe("ApiClient", () => {
  it("sends the CSRF token from the cookie and JSON bodies", async () => {
    const seen: RequestInit[] = [];
    const api = ApiClient.create({ fetchImpl: fakeFetch({ "/api/x/": { ok: 1 } }, seen), cookies: () => "a=1; csrftoken=tok%3D1" });
    expect(await api.post("/api/x/", { a: 1 })).toEqual({ ok: 1 });
    const headers = seen[0].headers as Record<string, string>;
    expect(headers["X-CSRFToken"]).toBe("tok=1");
    expect(headers["Content-Type"]).toBe("application/json");
    expect(seen[0].body).toBe('{"a":1}');
  });

  it("follows pagination in list()", async () => {
    const api = ApiClient.create({
      fetchImpl: fakeFetch({
        "/api/t/?page_size=500": { count: 3, next: "/api/t/?page=2", previous: null, results: [1, 2] },
        "/api/t/?page=2": { count: 3, next: null, previous: null, results: [3] },
      }),
      cookies: () => "",
    });
    expect(await api.list("/api/t/")).toEqual([1, 2, 3]);
  });

  it("turns an error body into an ApiError with the server's words", async () => {
    const api = ApiClient.create({
      fetchImpl: fakeFetch({ "/api/p/": new Response(JSON.stringify({ detail: "Invalid input.", errors: { box: ["box must lie inside the 64x64 frame"] } }), { status: 400 }) }),
      cookies: () => "",
    });
    const err = (await api.post("/api/p/", {}).catch((e) => e)) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(400);
    expect(err.summary).toBe("Invalid input. — box: box must lie inside the 64x64 frame");
  });

  it("reads plain DRF field errors and text bodies", () => {
    expect(parseErrorBody(400, { name: ["This field is required."] })).toEqual({ detail: "Invalid input.", errors: { name: ["This field is required."] } });
    expect(parseErrorBody(400, { detail: "no images found", code: "unsupported" })).toEqual({ detail: "no images found", errors: {} });
    expect(parseErrorBody(502, "Bad gateway")).toEqual({ detail: "Bad gateway", errors: {} });
    expect(parseErrorBody(500, null).detail).toBe("HTTP 500");
  });

  it("builds query strings without empty values", () => {
    expect(buildUrl("", "/api/c/", { a: 1, b: undefined, c: "", d: "x y" })).toBe("/api/c/?a=1&d=x+y");
    expect(readCookie("csrftoken", "x=1")).toBeNull();
  });
});

describe("raw slices", () => {
  it("decodes little-endian int16 with the X-Shape header and applies the rescale", () => {
    const buf = new ArrayBuffer(8);
    const v = new DataView(buf);
    [-1000, 0, 40, 3000].forEach((x, i) => v.setInt16(i * 2, x, true));
    const s = decodeRawSlice(buf, "2,2", "int16");
    expect([s.width, s.height, s.min, s.max]).toEqual([2, 2, -1000, 3000]);
    const r = decodeRawSlice(buf, "2,2", "int16", { slope: 2, intercept: -1024 });
    expect(Array.from(r.pixels)).toEqual([-3024, -1024, -944, 4976]);
  });

  it("decodes uint8 RGB video frames", () => {
    const s = decodeRawSlice(Uint8Array.from([1, 2, 3, 4, 5, 6]).buffer, "1,2,3", "uint8");
    expect(s.color).toBe(true);
    expect([s.width, s.height]).toEqual([2, 1]);
    expect(Array.from(s.pixels)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("refuses a body that does not match its shape", () => {
    expect(() => decodeRawSlice(new ArrayBuffer(6), "2,2", "int16")).toThrow(/expected 8/);
    expect(() => decodeRawSlice(new ArrayBuffer(6), null)).toThrow(/X-Shape/);
    expect(parseShapeHeader("[512, 512, 3]")).toEqual([512, 512, 3]);
  });
});
