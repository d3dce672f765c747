#!/usr/bin/env python
"""Latency of the playground in a real browser (Playwright + Debian chromium against `streamlit run`).

    .venv/bin/python scripts/bench_app.py [--checkpoints DIR] [--moves 40] [--json out.json]

Measures, on a server started here on a free localhost port:
- first load: `streamlit run` -> health, and navigation -> first piano roll and the looper on screen
  (cold: first session of the process; warm: a second page);
- latent slider move -> the new groove's piano roll and audio ready, for single steps (arrow keys:
  the case the app prefetches) and for jumps (PageUp/Home: never prefetched); every move goes to a
  value not shown before.  The issue's target is p95 <= 250 ms;
- Sample "New seed" (3 grooves), Interpolate step count (7 -> 8 steps: encode, decode, strip,
  morph WAV), Grid cell click.
"Ready" = the run the action triggered has finished (Streamlit's script-state attribute went back
to notRunning, or, for a run too quick to show, the rolls' titles / audio sources changed), no
element is stale, a roll and the looper are on screen, and two frames were painted.
Prints a table and optionally writes JSON.  Not a test: numbers depend on the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from test_browser import CHROMIUM, CHROMIUM_ARGS, free_port, hover_cell, start_server  # noqa: E402

# Counts finished script runs (full or fragment) through the attribute Streamlit keeps on its root.
WATCH = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || window.__watched === app) return;
  window.__watched = app; window.__runs = window.__runs || 0;
  new MutationObserver(() => {
    if (app.getAttribute('data-test-script-state') === 'notRunning') window.__runs++;
  }).observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}"""
_SIG = "[...document.querySelectorAll('.js-plotly-plot .gtitle, .mv-label')].map(e => e.src || e.textContent).join('|')"
SIGNATURE = f"() => {_SIG}"
# Done: the run finished (a runs tick, or, for runs too quick for React to show "running", the rolls'
# titles or audio sources changed), nothing is running or stale, and a roll and the looper are there.
READY = f"""([n, sig]) => {{
  const app = document.querySelector('[data-testid="stApp"]');
  return (window.__runs > n || {_SIG} !== sig) && app.getAttribute('data-test-script-state') !== 'running'
    && !document.querySelector('[data-stale="true"]')
    && document.querySelectorAll('.mv-play').length > 0 && document.querySelectorAll('.js-plotly-plot').length > 0;
}}"""


def timed(page, action) -> float:
    """Milliseconds from the action to the end of the run it triggers, with roll and audio on screen."""
    page.evaluate(WATCH)
    before = [page.evaluate("() => window.__runs"), page.evaluate(SIGNATURE)]
    start = time.perf_counter()
    action()
    page.wait_for_function(READY, arg=before, polling="raf", timeout=120_000)
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")  # painted
    return (time.perf_counter() - start) * 1000


def settle(page) -> None:
    page.wait_for_function("() => document.querySelector('[data-testid=\"stApp\"]')"
                           "?.getAttribute('data-test-script-state') === 'notRunning'", timeout=120_000)
    page.wait_for_timeout(300)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summary(values: list[float]) -> dict:
    return {"n": len(values), "p50_ms": round(statistics.median(values), 1),
            "p95_ms": round(percentile(values, 0.95), 1), "max_ms": round(max(values), 1)}


def first_view(page, url: str) -> float:
    start = time.perf_counter()
    page.goto(url)
    page.wait_for_selector(".mv-play", timeout=120_000)
    page.wait_for_selector(".js-plotly-plot", timeout=120_000)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoints", type=Path, default=None, help="MUSICVAE_CHECKPOINTS_DIR (default: repo)")
    parser.add_argument("--moves", type=int, default=40, help="slider moves to time")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    env = dict(os.environ)
    if args.checkpoints:
        env["MUSICVAE_CHECKPOINTS_DIR"] = str(args.checkpoints.resolve())
    port = free_port()
    started = time.perf_counter()
    log = Path("/tmp") / f"bench_app_{port}.log"
    server = start_server(port, env, log)
    health = time.perf_counter() - started
    url = f"http://127.0.0.1:{port}"
    results: dict = {"health_s": round(health, 2)}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            results["first_view_cold_s"] = round(first_view(page, url + "/?mode=sample&seed=1"), 2)
            results["start_to_first_view_s"] = round(time.perf_counter() - started, 2)
            settle(page)
            page2 = browser.new_page(viewport={"width": 1400, "height": 1000})
            results["first_view_warm_s"] = round(first_view(page2, url + "/?mode=sample&seed=2"), 2)
            page2.close()

            seed = int(time.time()) % 100_000
            page.goto(url + f"/?mode=latent&seed={seed}")
            page.wait_for_selector(".mv-play", timeout=120_000)
            settle(page)
            steerers = page.get_by_role("slider", name=re.compile(r"^(PC\d+|z\[)")).all()
            moves: list[float] = []  # arrow keys: one step at a time (the prefetched case)
            for slider in steerers[:2]:
                slider.focus()
                while len(moves) < args.moves * (steerers.index(slider) + 1) // 2:
                    moves.append(timed(page, lambda s=slider: s.press("ArrowRight")))
            results["latent_slider_step"] = summary(moves)
            jumps: list[float] = []  # PageUp/Home: 0.6-3 units at once, never prefetched
            last = steerers[2 if len(steerers) > 2 else -1]
            last.focus()
            for key in ([] if os.environ.get("XP") else ["PageUp"] * 5 + ["Home"] + ["PageUp"] * 4):
                jumps.append(timed(page, lambda k=key: last.press(k)))
            results["latent_slider_jump"] = summary(jumps)

            page.goto(url + f"/?mode=sample&seed={seed}")
            page.wait_for_selector(".mv-play", timeout=120_000)
            settle(page)
            button = page.get_by_role("button", name="New seed")
            results["sample_new_seed_3_grooves"] = summary([timed(page, button.click) for _ in range(10)])

            page.goto(url + f"/?mode=interpolate&steps=7&seed={seed}")
            page.wait_for_selector(".mv-play", timeout=120_000)
            settle(page)
            steps = page.get_by_role("slider", name="Steps (both ends included)")
            steps.focus()
            interp = []
            for _ in range(5):
                interp.append(timed(page, lambda: steps.press("ArrowRight")))
            results["interpolate_add_a_step"] = summary(interp)

            page.goto(url + f"/?mode=grid&grid=5&seed={seed}")
            page.wait_for_selector(".mv-play", timeout=120_000)
            settle(page)
            chart = page.locator(".js-plotly-plot").first
            clicks = []
            for r, c in [(r, c) for r in range(1, 6) for c in range(1, 6) if (r, c) != (1, 1)][:10]:
                hover_cell(page, chart, r, c, 5, 5)  # not timed: a user's pointer is already there

                def click() -> None:
                    page.mouse.down()
                    page.mouse.up()

                clicks.append(timed(page, click))
            results["grid_cell_click"] = summary(clicks)
            browser.close()
    finally:
        server.terminate()
        server.wait(10)
    for key, value in results.items():
        print(f"{key:32s} {value}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
