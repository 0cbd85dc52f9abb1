"""The worker's built-in pages (``/``, ``/d/<name>``) in a real browser, against a
real worker fed by the simulator.

Playwright drives Debian's ``chromium`` (no browser download: scripts/bootstrap.sh
installs the apt package). For every dashboard ``/api/dashboards`` lists: every
panel draws (``data-state="ok"``, ``data-points`` > 0), choosing one model in
the filter changes what the charts show and survives a reload (the URL keeps
it), nothing fails (no console error, uncaught exception, failed request or
4xx/5xx answer), and a screenshot is taken: into a temporary folder, or, with
``FLEETPULSE_SCREENSHOTS_DIR=docs/screenshots``, over the README's pictures.
The worker has a token, so the first visit also goes through the page's token
form; a real Prometheus scrapes it for the pipeline page. Waits are on the pages' own attributes (``wait_for_function``), bounded,
never sleeps.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer
from PIL import Image

from fleetpulse.producers.sim_quality import QualityShares
from fleetpulse.producers.simulator import Drift, SimulationConfig, run_simulation
from fleetpulse.settings import Secret
from tests.integration.promstack import Prometheus
from tests.integration.workers import isolated_settings, run_simulator

pytestmark = pytest.mark.integration

TOKEN = f"pages-{uuid.uuid4().hex}"
#: Set it to docs/screenshots to refresh the README's pictures; a plain run leaves the tree alone.
SCREENSHOTS_DIR = os.environ.get("FLEETPULSE_SCREENSHOTS_DIR", "")
VIEWPORT = {"width": 1280, "height": 900}
SCREENSHOT_MAX_BYTES = 200_000
DRAW_TIMEOUT_MS = 90_000
# Ten minutes ending now: inside the pages' default range (the last 15 minutes).
# One node: its 8 GPUs' lines keep the GPU page's screenshot small.
CONFIG = SimulationConfig(nodes=1, models=2, rate=100.0, duration_s=600, seed=7, burst_every_s=200, burst_len_s=40,
                          burst_error_rate=0.6, pace="fast", gpu_samples=True,
                          drifts=(Drift("input_tokens", 1.0, 300), Drift("finish_reason", 0.5, 300)),
                          quality=QualityShares(refusal=0.05, repetition=0.2))  # the model page's quality panels

# Every panel has drawn what the current range and filters ask for.
ALL_DRAWN = """() => {
    const panels = [...document.querySelectorAll('[data-panel]')];
    const generation = document.body.dataset.generation;
    return panels.length > 0 && generation !== undefined
        && panels.every(p => p.dataset.state && p.dataset.generation === generation);
}"""

# [name, kind, state, points, message, series labels, what it shows] for every
# panel; what it shows: a hash of the chart's pixels, or the tiles' or table's text.
PANELS = """els => els.map(p => {
    const canvas = p.querySelector('canvas');
    let hash = 0;
    for (const c of canvas ? canvas.toDataURL() : '') hash = (hash * 31 + c.charCodeAt(0)) | 0;
    return [
        p.dataset.panel, p.dataset.kind, p.dataset.state, Number(p.dataset.points),
        (p.querySelector('.panel-message') || {}).textContent || '',
        [...p.querySelectorAll('.u-legend .u-label')].map(l => l.textContent),
        hash + '|' + ((p.querySelector('.stat-tiles, table.data') || {}).textContent || ''),
    ];
})"""


@pytest.fixture(scope="module")
def fleet(kafka_settings, tmp_path_factory, start_worker):
    """A worker with a token, holding the last 10 minutes of a simulated fleet
    (error bursts, so alerts fire; a drift; GPU samples), a silence and a dead
    letter, with a trickle of live requests and a real Prometheus scraping it
    for the pipeline page."""
    tmp = tmp_path_factory.mktemp("pages")
    settings = isolated_settings(kafka_settings, tmp, drift_window_minutes=1)
    prometheus = Prometheus(tmp, [f"127.0.0.1:{settings.http_port}"])
    try:
        settings = isolated_settings(kafka_settings, tmp, drift_window_minutes=1, http_port=settings.http_port,
                                     http_token=Secret(TOKEN), prometheus_url=f"http://127.0.0.1:{prometheus.port}")
        worker = start_worker(settings)
        producer = Producer({"bootstrap.servers": settings.bootstrap})
        producer.produce(settings.topic("requests"), b'{"not": "an event"}')
        producer.flush(30)
        result = run_simulation(settings, CONFIG, progress=False)  # pace fast, no start: it ends now
        assert result.sent == CONFIG.total
        last = int(time.time())
        worker.post("/silences", {"action": "add", "matchers": {"model": "nobody"}, "seconds": 3600,
                                  "comment": "pages test"})
        for what, sql in (("drift evaluations", f"SELECT max(window) >= toDateTime({last - 120}) FROM drift_stats"),
                          ("a firing alert", "SELECT count() > 0 FROM alerts WHERE status = 'firing'"),
                          ("GPU windows", f"SELECT max(window_start) >= toDateTime({last - 60}) FROM gpu_efficiency"),
                          ("every request window", f"SELECT sum(requests) = {CONFIG.total} FROM request_windows")):
            assert worker.wait_for(sql, 1, timeout=240) == 1, f"no {what} after 240 s:\n{worker.log_tail()}"
        # Live traffic from here on, as a user's fleet has: the pipeline page's rates need it.
        trickle = run_simulator(settings, "--nodes", "1", "--models", "2", "--rate", "20", "--duration", "3600",
                                "--burst-every", "0", "--seed", "8")
        try:
            wait_for_prometheus(worker)
            yield worker
        finally:
            trickle.terminate()
            trickle.communicate(timeout=30)
    finally:
        prometheus.stop()


def wait_for_prometheus(worker, timeout: float = 120) -> None:
    """Until every PromQL panel has a number: rates need two scrapes and more."""
    names = [p["name"] for d in dashboards(worker.base) for p in d["panels"] if p["source"] == "prometheus"]
    deadline = time.monotonic() + timeout
    for name in names:
        while True:
            rows = worker_get(worker, f"/api/panels/{name}")["rows"]
            if any(value is not None for row in rows for value in row[2:]):
                break
            assert time.monotonic() < deadline, f"{name}: no data from Prometheus after {timeout} s: {rows[:5]}"
            time.sleep(1)


def worker_get(worker, path: str) -> dict:
    request = urllib.request.Request(worker.base + path, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.load(answer)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "chromium is missing: scripts/bootstrap.sh installs Debian's package"
    with sync_playwright() as playwright:
        # --no-sandbox: Chromium's sandbox refuses to run as root (CI, containers); the
        # browser only ever visits the worker on loopback.
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


class Watch:
    """What went wrong on a page: console errors, uncaught exceptions, failed
    requests and answers >= 400 (``allow`` holds statuses a step expects)."""

    def __init__(self, page):
        self.problems: list[str] = []
        self.allow: set[int] = set()
        page.on("console", lambda m: m.type == "error" and self.problems.append(f"console error: {m.text}"))
        page.on("pageerror", lambda e: self.problems.append(f"uncaught: {e}"))
        page.on("requestfailed", lambda r: self.problems.append(f"request failed: {r.url} {r.failure}"))
        page.on("response", lambda r: r.status >= 400 and r.status not in self.allow
                and self.problems.append(f"HTTP {r.status}: {r.url}"))

    def take(self) -> list[str]:
        problems, self.problems = self.problems, []
        return problems


def dashboards(base: str) -> list[dict]:
    with urllib.request.urlopen(base + "/api/dashboards", timeout=30) as answer:
        return json.load(answer)["dashboards"]


def wait_drawn(page) -> list[list]:
    page.wait_for_function(ALL_DRAWN, timeout=DRAW_TIMEOUT_MS)
    return page.eval_on_selector_all("[data-panel]", PANELS)


def assert_all_drew(dashboard: dict, panels: list[list]) -> None:
    assert [p[0] for p in panels] == [p["name"] for p in dashboard["panels"]]
    bad = [f"{name} ({kind}): {state}, {points} points {message!r}"
           for name, kind, state, points, message, *_ in panels if state != "ok" or not points > 0]
    assert not bad, f"dashboard {dashboard['name']}: panels without data:\n" + "\n".join(bad)


def enter_token(page, watch: Watch, base: str, token: str) -> None:
    """The first guarded request answers 401: the page asks for the token, keeps
    it in sessionStorage and draws everything with it."""
    watch.allow.add(401)
    page.goto(base + "/")
    page.wait_for_selector("#token-form:not([hidden])", timeout=DRAW_TIMEOUT_MS)
    page.fill("#token-input", token)
    page.click("#token-form button[type=submit]")
    wait_drawn(page)
    assert page.is_hidden("#token-form")
    assert page.evaluate("() => sessionStorage.getItem('fleetpulse.token')") == token
    watch.allow.discard(401)
    # The 401s themselves show in the console as failed resources; nothing else may.
    rest = [p for p in watch.take() if "401" not in p]
    assert not rest, rest


def choose_one_model(page, dashboard: dict, before: list[list]) -> None:
    """Pick the first model in the filter: the URL keeps it, every panel redraws,
    what the charts show changes, and no series is labelled with another model."""
    menu = '[data-variable="model"]'
    page.click(f"{menu} .filter-button")
    first = page.locator(f"{menu} .filter-menu input[type=checkbox]:not([data-all])").first
    first.wait_for(timeout=DRAW_TIMEOUT_MS)
    models = page.eval_on_selector_all(f"{menu} .filter-menu input[type=checkbox]:not([data-all])",
                                       "els => els.map(e => e.value)")
    chosen = models[0]
    first.check()
    page.keyboard.press("Escape")
    after = wait_drawn(page)
    assert_all_drew(dashboard, after)
    assert f"var-model={chosen}" in page.url
    shown = lambda panels: [(name, points, sorted(labels), drawing)  # noqa: E731
                            for name, _, _, points, _, labels, drawing in panels]
    assert shown(after) != shown(before), f"choosing model {chosen} changed nothing on {dashboard['name']}"
    others = set(models) - {chosen}
    for name, _, _, _, _, labels, _ in after:
        for label in labels:
            tokens = set(label.replace(" / ", " ").split())
            assert not tokens & others, f"{name}: series {label!r} after choosing {chosen}"
    page.reload()
    assert wait_drawn(page) and page.text_content(f"{menu} .filter-value") == chosen


def screenshot(page, name: str, folder: Path) -> Path:
    """The viewport as a 256-colour PNG: a third of Chromium's size, and the
    charts' lines stay sharp (no dithering)."""
    page.mouse.move(0, 0)  # no cursor crosshair in the picture
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    image = Image.open(io.BytesIO(page.screenshot(full_page=False))).convert("RGB")
    image.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)
    assert path.stat().st_size < SCREENSHOT_MAX_BYTES, f"{path}: {path.stat().st_size} bytes"
    return path


def check_pages(browser, base: str, token: str | None, folder: Path) -> list[str]:
    """Every dashboard, drawn and filtered in one tab; returns the screenshots' names."""
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    try:
        page = context.new_page()
        watch = Watch(page)
        if token:
            enter_token(page, watch, base, token)
        shots = []
        for dashboard in dashboards(base):
            name = dashboard["name"]
            started = time.monotonic()
            page.goto(f"{base}/d/{name}")
            panels = wait_drawn(page)
            assert page.title().startswith(dashboard["title"])
            assert_all_drew(dashboard, panels)
            screenshot(page, name, folder)
            if any(v["name"] == "model" for v in dashboard["variables"]):
                choose_one_model(page, dashboard, panels)
            problems = watch.take()
            assert not problems, f"dashboard {name}:\n" + "\n".join(problems)
            print(f"{name}: {len(panels)} panels drawn and checked in {time.monotonic() - started:.1f}s")
            shots.append(name)
        return shots
    finally:
        context.close()


def test_every_dashboard_draws_filters_and_screenshots(fleet, browser, tmp_path):
    folder = Path(SCREENSHOTS_DIR).resolve() if SCREENSHOTS_DIR else tmp_path
    shots = check_pages(browser, fleet.base, TOKEN, folder)
    assert sorted(p.stem for p in folder.glob("*.png")) == sorted(shots)
    assert shots, "the worker lists no dashboards"
