"""The platform's load profile for locust (https://locust.io): radiologists and technologists signed in through the
login form (session cookie + CSRF, as a browser), each doing a realistic mix of reads with a short think time.

Run by benchmarks/load.py against a throwaway sandbox (that is the supported way; it seeds the accounts and the
studies). By hand, against a copy you own:  BENCH_PASSWORD=... locust -f benchmarks/locustfile.py --host URL
with the accounts bench_radiologist and bench_technologist existing there.
"""

from __future__ import annotations

import logging
import os
import random
import re
import time

from locust import HttpUser, constant, events, task

PASSWORD_ENV = "BENCH_PASSWORD"
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


_signed_in = 0
_started = time.monotonic()


@events.test_start.add_listener
def _count_from_zero(environment, **kwargs) -> None:
    global _signed_in, _started
    _signed_in, _started = 0, time.monotonic()


def _signed_in_one(environment) -> None:
    """Once every client has signed in and listed its studies, the statistics start again from zero: a sign-in is
    deliberately slow (PBKDF2 password hashing, about half a second of CPU) and happens once a shift, not once a
    page, so the figures measure the work that follows it."""
    global _signed_in
    _signed_in += 1
    target = getattr(environment.parsed_options, "num_users", None) if environment.parsed_options else None
    if target and _signed_in == target and environment.runner is not None:
        logging.warning("SIGNED_IN %d clients in %.1f s", target, time.monotonic() - _started)
        environment.runner.stats.reset_all()


class SignedInUser(HttpUser):
    abstract = True
    username = ""
    # No think time: each simulated client sends its next request as soon as the last one is answered, so the server
    # is saturated at any number of clients and the throughput measured is what it can serve (a closed loop). A
    # person's pace (a page every few seconds) would make 50 clients far less load than this.
    wait_time = constant(0)

    def on_start(self) -> None:
        page = self.client.get("/accounts/login/", name="/accounts/login/")
        token = CSRF_FIELD.search(page.text)
        if token is None:
            raise RuntimeError("The login page has no CSRF token")
        response = self.client.post(
            "/accounts/login/",
            data={
                "username": self.username,
                "password": os.environ[PASSWORD_ENV],
                "csrfmiddlewaretoken": token.group(1),
            },
            headers={"Referer": f"{self.host}/accounts/login/"},
            name="/accounts/login/ [POST]",
            allow_redirects=False,
        )
        if response.status_code != 302:
            raise RuntimeError(f"Sign-in as {self.username} failed (HTTP {response.status_code})")
        studies = self.client.get("/api/studies/", name="/api/studies/").json()["results"]
        self.study_ids = [study["id"] for study in studies]
        if not self.study_ids:
            raise RuntimeError("No studies to read: seed the sandbox first")
        self.image_ids: dict[int, list[int]] = {}
        _signed_in_one(self.environment)

    def _study(self) -> int:
        return random.choice(self.study_ids)

    def _images(self, study_id: int) -> list[int]:
        if study_id not in self.image_ids:
            detail = self.client.get(f"/api/studies/{study_id}/", name="/api/studies/[id]/").json()
            self.image_ids[study_id] = [image["id"] for image in detail["images"]]
        return self.image_ids[study_id]

    @task(3)
    def study_list(self) -> None:
        self.client.get("/studies/", name="/studies/")

    @task(3)
    def study_page_with_previews(self) -> None:
        study_id = self._study()
        self.client.get(f"/studies/{study_id}/", name="/studies/[id]/")
        for image_id in self._images(study_id):
            self.client.get(f"/images/{image_id}/preview/", name="/images/[id]/preview/")

    @task(2)
    def api_list(self) -> None:
        self.client.get("/api/studies/", name="/api/studies/")

    @task(2)
    def api_detail(self) -> None:
        self.client.get(f"/api/studies/{self._study()}/", name="/api/studies/[id]/")

    @task(1)
    def health(self) -> None:
        self.client.get("/healthz", name="/healthz")


class Radiologist(SignedInUser):
    weight = 3
    username = "bench_radiologist"

    @task(4)
    def worklist(self) -> None:
        self.client.get("/reading/", name="/reading/")


class Technologist(SignedInUser):
    weight = 2
    username = "bench_technologist"

    @task(2)
    def study_status(self) -> None:
        self.client.get(f"/studies/{self._study()}/status.json", name="/studies/[id]/status.json")
