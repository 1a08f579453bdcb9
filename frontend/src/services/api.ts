/**
 * REST client for /api/: session cookies, the CSRF header from the `csrftoken` cookie, JSON errors
 * turned into ApiError with the server's own message. Paginated lists are unwrapped by `list()`.
 */
export interface Page<T> {
  count: number;
  next: string | null;
  previous: string | null;
  results: T[];
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly errors: Record<string, string[]> = {},
    readonly body: unknown = null,
  ) {
    super(detail);
  }

  /** One human-readable line: the detail plus each field error, as the server wrote them. */
  get summary(): string {
    const parts = Object.entries(this.errors).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(" ") : String(v)}`);
    return [this.detail, ...parts].filter(Boolean).join(" — ");
  }
}

export type Query = Record<string, string | number | boolean | undefined | null>;

export function readCookie(name: string, cookieString: string): string | null {
  for (const part of cookieString.split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) return decodeURIComponent(v.join("="));
  }
  return null;
}

export function buildUrl(base: string, path: string, query?: Query): string {
  let url = path.startsWith("http") ? path : `${base}${path}`;
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== "") params.set(k, String(v));
    const qs = params.toString();
    if (qs) url += (url.includes("?") ? "&" : "?") + qs;
  }
  return url;
}

/** Turn any error body DRF may produce into (detail, errors). */
export function parseErrorBody(status: number, body: unknown): { detail: string; errors: Record<string, string[]> } {
  if (body && typeof body === "object" && !Array.isArray(body)) {
    const b = body as Record<string, unknown>;
    const errors: Record<string, string[]> = {};
    const src = (b.errors && typeof b.errors === "object" ? b.errors : b) as Record<string, unknown>;
    for (const [k, v] of Object.entries(src)) {
      if (k === "detail" || k === "code") continue; // "code" is a machine-readable tag, not a message
      errors[k] = Array.isArray(v) ? v.map((x) => (typeof x === "string" ? x : JSON.stringify(x))) : [typeof v === "string" ? v : JSON.stringify(v)];
    }
    const detail = typeof b.detail === "string" ? b.detail : Object.keys(errors).length ? "Invalid input." : `HTTP ${status}`;
    return { detail, errors };
  }
  if (Array.isArray(body)) return { detail: body.map(String).join(" "), errors: {} };
  if (typeof body === "string" && body.trim()) return { detail: body.trim().slice(0, 300), errors: {} };
  return { detail: `HTTP ${status}`, errors: {} };
}

export class ApiClient {
  private constructor(
    readonly base: string,
    private readonly fetchImpl: typeof fetch,
    private readonly cookies: () => string,
  ) {}

  static create(opts: { base?: string; fetchImpl?: typeof fetch; cookies?: () => string } = {}): ApiClient {
    return new ApiClient(
      opts.base ?? "",
      opts.fetchImpl ?? ((...a) => fetch(...a)),
      opts.cookies ?? (() => (typeof document !== "undefined" ? document.cookie : "")),
    );
  }

  destroy(): void {
    /* stateless; present so every service has the same lifecycle */
  }

  csrfToken(): string | null {
    return readCookie("csrftoken", this.cookies());
  }

  url(path: string, query?: Query): string {
    return buildUrl(this.base, path, query);
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    const h: Record<string, string> = { Accept: "application/json", ...extra };
    const token = this.csrfToken();
    if (token) h["X-CSRFToken"] = token;
    return h;
  }

  async request<T>(method: string, path: string, opts: { query?: Query; body?: unknown; keepalive?: boolean } = {}): Promise<T> {
    const init: RequestInit = { method, credentials: "same-origin", headers: this.headers(), keepalive: opts.keepalive };
    if (opts.body !== undefined) {
      init.body = JSON.stringify(opts.body);
      (init.headers as Record<string, string>)["Content-Type"] = "application/json";
    }
    const res = await this.fetchImpl(this.url(path, opts.query), init);
    return this.handle<T>(res);
  }

  async handle<T>(res: Response): Promise<T> {
    const text = await res.text();
    let body: unknown = null;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
    }
    if (!res.ok) {
      const { detail, errors } = parseErrorBody(res.status, body);
      throw new ApiError(res.status, detail, errors, body);
    }
    return body as T;
  }

  get<T>(path: string, query?: Query): Promise<T> {
    return this.request<T>("GET", path, { query });
  }

  post<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>("POST", path, { body: body ?? {} });
  }

  patch<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>("PATCH", path, { body });
  }

  delete<T>(path: string): Promise<T> {
    return this.request<T>("DELETE", path);
  }

  /** All results of a paginated (or plain list) endpoint, following `next` up to `maxPages`. */
  async list<T>(path: string, query: Query = {}, maxPages = 20): Promise<T[]> {
    const first = await this.get<Page<T> | T[]>(path, { page_size: 500, ...query });
    if (Array.isArray(first)) return first;
    const out = [...first.results];
    let next = first.next;
    for (let i = 1; next && i < maxPages; i++) {
      const page = await this.get<Page<T>>(next);
      out.push(...page.results);
      next = page.next;
    }
    return out;
  }

  /** Binary GET (slices): returns the raw response so callers can read headers. */
  async raw(path: string, query?: Query): Promise<Response> {
    const res = await this.fetchImpl(this.url(path, query), { credentials: "same-origin", headers: this.headers({ Accept: "*/*" }) });
    if (!res.ok) await this.handle(res);
    return res;
  }

  /** Multipart upload with progress (XMLHttpRequest: fetch has no upload progress). */
  upload<T>(path: string, form: FormData, onProgress: (fraction: number) => void): { promise: Promise<T>; abort: () => void } {
    const xhr = new XMLHttpRequest();
    const promise = new Promise<T>((resolve, reject) => {
      xhr.open("POST", this.url(path));
      xhr.withCredentials = true;
      for (const [k, v] of Object.entries(this.headers())) xhr.setRequestHeader(k, v);
      xhr.upload.onprogress = (e) => {
        if (e.lengthComputable) onProgress(e.loaded / e.total);
      };
      xhr.onerror = () => reject(new ApiError(0, "Network error during upload"));
      xhr.onabort = () => reject(new ApiError(0, "Upload cancelled"));
      xhr.onload = () => {
        let body: unknown = xhr.responseText;
        try {
          body = JSON.parse(xhr.responseText);
        } catch {
          /* keep the text */
        }
        if (xhr.status >= 200 && xhr.status < 300) resolve(body as T);
        else {
          const { detail, errors } = parseErrorBody(xhr.status, body);
          reject(new ApiError(xhr.status, detail, errors, body));
        }
      };
      xhr.send(form);
    });
    return { promise, abort: () => xhr.abort() };
  }
}
