"""Locust scenario for evserver: browsers visiting the demo site in ``www/``.

Each simulated user behaves like a browser with an empty cache visiting the
site: it loads the landing page and then every asset that page references
(stylesheet, script, images, favicon). Less often it follows the link to the
``/about/`` page, mistypes an address (``/no-such-page``, which must be a 404),
or revalidates a cached stylesheet with ``If-Modified-Since`` (expecting 304).

Every ordinary response must be ``200`` with a non-empty body; anything else
is recorded as a failure.

Run against a local server, for example::

    locust -f loadtests/locustfile.py --headless -u 10 -r 10 -t 30s \
        --host http://127.0.0.1:8000
"""

from __future__ import annotations

from locust import HttpUser, between, task

PAGE_ASSETS: tuple[str, ...] = (
    "/css/style.css",
    "/js/app.js",
    "/img/logo.png",
    "/img/photo.jpg",
    "/img/icon.svg",
    "/favicon.ico",
)


class SiteVisitor(HttpUser):
    """A browser-like visitor of the evserver demo site."""

    wait_time = between(0.0, 0.1)

    def on_start(self) -> None:
        self.css_last_modified: str | None = None

    def _get_ok(self, path: str) -> None:
        """GET ``path``; anything but a non-empty 200 is a failure."""
        with self.client.get(path, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"{path}: expected 200, got {response.status_code}")
            elif not response.content:
                response.failure(f"{path}: empty body")
            else:
                if path == "/css/style.css":
                    self.css_last_modified = response.headers.get("Last-Modified")
                response.success()

    @task(10)
    def visit_home(self) -> None:
        """Load the landing page and everything it references."""
        self._get_ok("/")
        for asset in PAGE_ASSETS:
            self._get_ok(asset)

    @task(3)
    def visit_about(self) -> None:
        """Follow the link to the second page (assets come from the cache)."""
        self._get_ok("/about/")

    @task(1)
    def missing_page(self) -> None:
        """A mistyped address: the only correct answer is 404."""
        with self.client.get("/no-such-page", catch_response=True) as response:
            if response.status_code == 404:
                response.success()
            else:
                response.failure(f"/no-such-page: expected 404, got {response.status_code}")

    @task(3)
    def revalidate_css(self) -> None:
        """Conditional GET of a cached stylesheet: 304 expected."""
        headers: dict[str, str] = {}
        if self.css_last_modified:
            headers["If-Modified-Since"] = self.css_last_modified
        with self.client.get(
            "/css/style.css",
            headers=headers,
            catch_response=True,
            name="/css/style.css [revalidate]",
        ) as response:
            status = response.status_code
            if status == 304:
                response.success()
            elif status == 200 and not self.css_last_modified and response.content:
                # Nothing to revalidate against yet: a full response is fine.
                self.css_last_modified = response.headers.get("Last-Modified")
                response.success()
            else:
                response.failure(f"revalidate /css/style.css: got {status}")
