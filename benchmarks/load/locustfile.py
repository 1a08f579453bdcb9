"""Locust scenario: annotators doing what the browser workspace does, against a running server.

Each simulated annotator signs in (CSRF cookie from /api/auth/me/, then /api/auth/login/), opens its
target and then, at a person's pace, scrolls slices (raw int16 axial slices, as the Cornerstone slice
source fetches them), sends interaction-event batches, saves edited slices as a mask revision, polls
its propagation job and its frames, and now and then reloads the worklist. Request names group URLs by
route so the statistics read per endpoint.

The fixture (users, case, targets, jobs, RLE payloads) comes from a JSON file named by LOAD_FIXTURE,
written by benchmarks/bench_load.py, which also starts the server and prints the figures.

Cookies are sent by hand: production settings mark them Secure, and the server here sits behind no
TLS proxy (the scenario says X-Forwarded-Proto: https instead, as a proxy would).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import threading
import uuid
from datetime import UTC, datetime

from locust import HttpUser, between, task

with open(os.environ["LOAD_FIXTURE"]) as _f:
    FIXTURE = json.load(_f)

_next_user = itertools.count()
_lock = threading.Lock()


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Annotator(HttpUser):
    # a person looks at a slice, then acts: 0.3-1.5 s between requests keeps 20 of them near the
    # ~700 calls in two minutes that one busy annotator was measured to make, times 20
    wait_time = between(0.3, 1.5)

    def on_start(self) -> None:
        with _lock:
            me = FIXTURE["users"][next(_next_user) % len(FIXTURE["users"])]
        self.me = me
        self.case_id = FIXTURE["case"]["id"]
        self.depth = FIXTURE["case"]["depth"]
        self.slice_index = random.randrange(self.depth)
        # signed in earlier in the day (bench_load.py made the session): the steady state is measured
        self.cookies: dict[str, str] = dict(me["cookies"])
        self._get("/api/auth/me/", name="/api/auth/me/")
        self._get(f"/api/targets/{me['target']}/", name="/api/targets/{id}/")

    # -- plumbing -------------------------------------------------------------------------------------
    def _headers(self, write: bool = False) -> dict[str, str]:
        host = self.host.split("://", 1)[-1].rstrip("/")
        headers = {"X-Forwarded-Proto": "https", "Referer": f"https://{host}/"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if write and "csrftoken" in self.cookies:
            headers["X-CSRFToken"] = self.cookies["csrftoken"]
        return headers

    def _remember(self, response) -> None:
        for name, value in response.cookies.items():
            self.cookies[name] = value
        self.client.cookies.clear()

    def _get(self, path: str, name: str, params: dict | None = None, ok=(200, 304)):
        with self.client.get(path, params=params, headers=self._headers(), name=name, catch_response=True) as r:
            self._remember(r)
            if r.status_code in ok:
                r.success()
            else:
                r.failure(f"HTTP {r.status_code}: {r.text[:120]}")
            return r

    def _post(self, path: str, body, name: str):
        with self.client.post(path, json=body, headers=self._headers(write=True), name=name, catch_response=True) as r:
            self._remember(r)
            if r.status_code >= 300:
                r.failure(f"HTTP {r.status_code}: {r.text[:120]}")
            return r

    # -- what the workspace does ----------------------------------------------------------------------
    @task(12)
    def scroll_slices(self) -> None:
        self.slice_index = max(0, min(self.depth - 1, self.slice_index + random.choice((-2, -1, 1, 2))))
        self._get(
            f"/api/cases/{self.case_id}/slice/",
            name="/api/cases/{id}/slice/ (raw)",
            params={"axis": "axial", "index": self.slice_index, "format": "raw"},
        )

    @task(4)
    def send_events(self) -> None:
        kinds = ("edit_stroke", "focus", "prompt_placed", "undo")
        batch = [
            {
                "client_event_id": str(uuid.uuid4()),
                "kind": random.choice(kinds),
                "client_ts": _now(),
                "target": self.me["target"],
                "case": self.case_id,
                "payload": {"frame": self.slice_index},
            }
            for _ in range(random.randint(3, 12))
        ]
        self._post("/api/events/", batch, "/api/events/ (batch)")

    @task(2)
    def save_edited_slices(self) -> None:
        body = {"target": self.me["target"], "slices": FIXTURE["edit"]}
        self._post("/api/mask-revisions/", body, "/api/mask-revisions/")

    @task(4)
    def poll_job(self) -> None:
        job = self.me["job"]
        self._get(f"/api/propagation-jobs/{job}/", name="/api/propagation-jobs/{id}/")

    @task(1)
    def job_frames(self) -> None:
        job = self.me["job"]
        name = "/api/propagation-jobs/{id}/frames/"
        self._get(f"/api/propagation-jobs/{job}/frames/", name=name, params={"since": 0})

    @task(1)
    def reload_target_masks(self) -> None:
        revision = self.me["revision"]
        self._get(
            f"/api/mask-revisions/{revision}/frames/",
            name="/api/mask-revisions/{id}/frames/ (window)",
            params={"start": max(0, self.slice_index - 8), "stop": min(self.depth, self.slice_index + 8)},
        )

    @task(1)
    def worklist(self) -> None:
        self._get("/api/cases/", name="/api/cases/ (worklist)", params={"project": FIXTURE["project"]})
        self._get("/api/targets/", name="/api/targets/ (case)", params={"case": self.case_id})
