/**
 * The named CT windows come from the server (GET /api/windows/, medsam2.window.PRESETS): the browser
 * keeps no copy of the table. Asked once per page load; a failed request is asked again next time.
 */
import type { WindowPresets } from "../lib/windowing";
import type { ApiClient } from "./api";

let cached: Promise<WindowPresets> | null = null;

export function windowPresets(api: ApiClient): Promise<WindowPresets> {
  cached ??= api.get<WindowPresets>("/api/windows/").catch((err: unknown) => {
    cached = null;
    throw err;
  });
  return cached;
}
