/**
 * Application shell: the service container (api, events, jobs), the signed-in user, the hash
 * router (#/login, #/worklist, #/cases/12?target=3, #/review, #/manage) and the top bar.
 */
import { ApiClient, ApiError } from "./services/api";
import { beaconSender, EventService, httpTransport, trackPage } from "./services/events";
import { JobService } from "./services/jobs";
import type { Me, Role } from "./types";
import { clear, h } from "./ui/dom";

export interface Services {
  api: ApiClient;
  events: EventService;
  jobs: JobService;
  me: Me | null;
}

export interface View {
  destroy(): void;
}

export type ViewFactory = (root: HTMLElement, app: App, params: URLSearchParams, match: RegExpMatchArray) => View | Promise<View>;

const HINT_KEY = "medsam2.signedIn";

function readHint(): boolean {
  try {
    return localStorage.getItem(HINT_KEY) === "1";
  } catch {
    return true; // no storage: always ask the server
  }
}

function writeHint(on: boolean): void {
  try {
    if (on) localStorage.setItem(HINT_KEY, "1");
    else localStorage.removeItem(HINT_KEY);
  } catch {
    /* storage unavailable */
  }
}

const ROLE_ORDER: Role[] = ["annotator", "reviewer", "manager", "admin"];

export function roleAtLeast(role: Role | null | undefined, needed: Role): boolean {
  return !!role && ROLE_ORDER.indexOf(role) >= ROLE_ORDER.indexOf(needed);
}

export class App {
  readonly services: Services;
  private routes: [RegExp, ViewFactory][] = [];
  private current: View | null = null;
  private unsubs: (() => void)[] = [];
  private main: HTMLElement;
  private nav: HTMLElement;
  private navToken = 0;
  /** where a deep link wanted to go before the sign-in page interrupted it */
  afterLogin = "#/worklist";

  constructor(root: HTMLElement) {
    const api = ApiClient.create();
    const eventsUrl = api.url("/api/events/");
    const events = EventService.create({
      transport: httpTransport(eventsUrl, () => api.headers()),
      storage: typeof localStorage !== "undefined" ? localStorage : null,
    });
    this.services = { api, events, jobs: JobService.create(api), me: null };
    this.unsubs.push(trackPage(events, beaconSender(eventsUrl, () => api.csrfToken())));
    this.nav = h("nav", { class: "topbar" });
    this.main = h("main", { class: "main" });
    root.append(this.nav, this.main);
    const onHash = () => void this.route();
    window.addEventListener("hashchange", onHash);
    this.unsubs.push(() => window.removeEventListener("hashchange", onHash));
  }

  get me(): Me | null {
    return this.services.me;
  }

  /** Highest role of the user in any project (superuser = admin). */
  get topRole(): Role | null {
    const me = this.me;
    if (!me) return null;
    if (me.is_superuser) return "admin";
    let best: Role | null = null;
    for (const m of me.memberships) if (!best || roleAtLeast(m.role, best)) best = m.role;
    return best;
  }

  roleIn(projectId: number): Role | null {
    const me = this.me;
    if (!me) return null;
    if (me.is_superuser) return "admin";
    return me.memberships.find((m) => m.project === projectId)?.role ?? null;
  }

  addRoute(pattern: RegExp, factory: ViewFactory): void {
    this.routes.push([pattern, factory]);
  }

  async start(): Promise<void> {
    await this.refreshMe();
    await this.route();
  }

  /**
   * Ask the server who is signed in. Skipped when this browser never signed in (a localStorage
   * hint), so a fresh visit does not produce a 403 in the console.
   */
  async refreshMe(): Promise<void> {
    if (!readHint()) {
      this.services.me = null;
      this.renderNav();
      return;
    }
    try {
      this.services.me = await this.services.api.get<Me>("/api/auth/me/");
    } catch (err) {
      if (!(err instanceof ApiError) || (err.status !== 401 && err.status !== 403)) throw err;
      this.services.me = null;
      writeHint(false);
    }
    this.renderNav();
  }

  /** After a successful sign-in. */
  async signedIn(): Promise<void> {
    writeHint(true);
    await this.refreshMe();
  }

  go(hash: string): void {
    if (location.hash === hash) void this.route();
    else location.hash = hash;
  }

  private renderNav(): void {
    clear(this.nav);
    const me = this.me;
    const link = (href: string, text: string) => h("a", { href, class: location.hash.startsWith(href) ? "active" : "" }, text);
    this.nav.append(h("span", { class: "brand" }, "MedSAM2 annotate"));
    if (!me) return;
    // Roles belong to projects: the bar shows pages, never one role for all projects.
    const role = this.topRole;
    this.nav.append(link("#/worklist", "Worklist"));
    if (roleAtLeast(role, "reviewer")) this.nav.append(link("#/review", "Review"));
    if (roleAtLeast(role, "manager")) this.nav.append(link("#/dashboard", "Dashboard"));
    if (roleAtLeast(role, "manager")) this.nav.append(link("#/rounds", "Rounds"), link("#/registry", "Models"));
    if (roleAtLeast(role, "annotator") || me.can_create_projects) this.nav.append(link("#/manage", "Projects"));
    this.nav.append(
      h("span", { class: "spacer" }),
      h("span", { class: "who", "data-testid": "whoami", title: me.memberships.map((m) => `${m.project_name}: ${m.role}`).join("\n") }, me.username),
      h("button", { class: "link", onclick: () => void this.logout() }, "Sign out"),
    );
  }

  private async logout(): Promise<void> {
    await this.services.events.flush();
    await this.services.api.post("/api/auth/logout/").catch(() => undefined);
    writeHint(false);
    this.services.me = null;
    this.go("#/login");
  }

  private async route(): Promise<void> {
    const token = ++this.navToken;
    const raw = location.hash.replace(/^#/, "") || "/worklist";
    const [path, qs] = raw.split("?");
    if (!this.me && path !== "/login") {
      this.afterLogin = location.hash || "#/worklist";
      location.hash = "#/login";
      return;
    }
    this.current?.destroy();
    this.current = null;
    this.services.events.setContext({});
    clear(this.main);
    this.renderNav();
    for (const [re, factory] of this.routes) {
      const m = path.match(re);
      if (!m) continue;
      const container = h("div", { class: "view" });
      this.main.appendChild(container);
      try {
        const view = await factory(container, this, new URLSearchParams(qs ?? ""), m);
        if (token !== this.navToken) view.destroy();
        else this.current = view;
      } catch (err) {
        container.append(h("p", { class: "error" }, err instanceof Error ? err.message : String(err)));
      }
      return;
    }
    this.main.append(h("p", {}, "Page not found. ", h("a", { href: "#/worklist" }, "Go to the worklist")));
  }

  destroy(): void {
    this.current?.destroy();
    for (const u of this.unsubs) u();
    this.services.events.destroy();
    this.services.jobs.destroy();
    this.services.api.destroy();
  }
}
