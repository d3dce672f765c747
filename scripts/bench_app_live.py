"""Measure the playground's looper in the real app (real Chromium, the shipped models, `streamlit run`).

1. First interactive groove: seconds from starting `streamlit run streamlit_app.py` until the page
   shows the player holding a groove and its decoded drum kit (``window.__musicvaeLooper``), in a
   fresh browser; then the same in a second browser (server warm).
2. Press play, then N changes while the loop plays: half on Sample's temperature slider (one
   ArrowRight each: 3 variations re-decoded, the looper plays the first), half on Grid (arrow keys
   move the cell along a snake path through the 5 x 5 grid: the looper's own key commands).
   Latency = (``performance.now()`` when the component received the new groove, from the looper's
   ``arrivals``) - (the keydown, timestamped in the page in the capture phase).  The player then
   holds the groove and plays it from the next bar line.  A change that gives the same groove
   (nothing to switch) is counted apart.
3. The scheduler's log over the whole run: the largest distance between two consecutive 16ths
   minus one 16th (0 = no gap) and whether the step counter ever skipped.

Usage: ``.venv/bin/python scripts/bench_app_live.py [--changes 50] [--json]``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from test_player_browser import chromium_browser, free_port, largest_gap, looper_log  # noqa: E402

TIMEOUT_MS = 90_000
INPUT_PROBE = """() => {
  window.__inputTimes = [];
  document.addEventListener('keydown', (e) => { window.__inputTimes.push(performance.now()); }, true);
}"""
READY = "() => { const p = window.__musicvaeLooper; return p && p.state().kitLoaded && p.state().patternId; }"


def start_server(port: int) -> tuple[subprocess.Popen, float]:
    command = [str(ROOT / ".venv" / "bin" / "streamlit"), "run", str(ROOT / "streamlit_app.py"),
               "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
               "--browser.gatherUsageStats", "false"]
    env = {**os.environ, "MALLOC_ARENA_MAX": "2", "OMP_NUM_THREADS": "1"}
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = started + 60
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).read() == b"ok":
                return process, started
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("streamlit did not start")


def settle(page) -> None:
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=TIMEOUT_MS)


def change(page, press, patience_ms: int = 4000) -> float | None:
    """Press once; the ms until the looper received a new groove (None: the same groove came back)."""
    arrivals = page.evaluate("() => window.__musicvaeLooper.arrivals.length")
    inputs = page.evaluate("() => window.__inputTimes.length")
    press()
    try:
        page.wait_for_function("n => window.__musicvaeLooper.arrivals.length > n", arg=arrivals, timeout=patience_ms)
    except Exception:  # noqa: BLE001 - playwright's timeout: nothing new to play
        settle(page)
        return None
    t_input, t_arrival = page.evaluate(
        "([n, a]) => [window.__inputTimes[n], window.__musicvaeLooper.arrivals[a].perfTime]", [inputs, arrivals])
    settle(page)
    return t_arrival - t_input


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    port = free_port()
    process, started = start_server(port)
    url = f"http://127.0.0.1:{port}"
    out: dict = {}
    rng = random.Random(0)
    try:
        with sync_playwright() as playwright:
            browser = chromium_browser(playwright)
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.goto(url + "/?mode=sample")
            page.wait_for_function(READY, timeout=TIMEOUT_MS)
            out["first_groove_s"] = round(time.monotonic() - started, 2)
            second = browser.new_page(viewport={"width": 1280, "height": 720})
            t0 = time.monotonic()
            second.goto(url + "/?mode=sample")
            second.wait_for_function(READY, timeout=TIMEOUT_MS)
            out["first_groove_second_browser_s"] = round(time.monotonic() - t0, 2)
            second.close()

            page.evaluate(INPUT_PROBE)
            settle(page)
            page.locator(".mv-play").click()
            page.wait_for_function("() => window.__musicvaeLooper.state().playing", timeout=TIMEOUT_MS)
            latencies: dict[str, list[float]] = {"sample temperature": [], "grid arrow keys": []}
            same = 0
            slider = page.get_by_role("slider", name="Temperature")
            for _ in range(args.changes // 2):
                slider.focus()
                ms = change(page, lambda: slider.press("ArrowRight"))
                same += ms is None
                if ms is not None:
                    latencies["sample temperature"].append(ms)
                page.wait_for_timeout(rng.randint(0, 300))
            page.locator('[data-testid="stSidebar"]').get_by_text("Grid", exact=True).click()
            page.get_by_role("heading", name="Grid").wait_for()
            settle(page)
            page.wait_for_timeout(1000)
            moves = (["ArrowRight"] * 4 + ["ArrowDown"] + ["ArrowLeft"] * 4 + ["ArrowDown"]) * 3
            for key in moves[: args.changes - args.changes // 2]:
                page.locator("h2").first.click()  # focus out of any control: the arrows are the looper's
                ms = change(page, lambda key=key: page.keyboard.press(key))
                same += ms is None
                if ms is not None:
                    latencies["grid arrow keys"].append(ms)
                page.wait_for_timeout(rng.randint(0, 300))
            page.wait_for_timeout(2500)
            record = looper_log(page)
            browser.close()
    finally:
        process.terminate()
        process.wait(10)
    everything = [ms for values in latencies.values() for ms in values]
    for name, values in [*latencies.items(), ("all", everything)]:
        if values:
            out[name] = {"n": len(values), "p50_ms": round(float(np.percentile(values, 50))),
                         "p95_ms": round(float(np.percentile(values, 95))), "max_ms": round(max(values))}
    excess, worst = largest_gap(record["log"])
    out["same_groove_changes"] = same
    out["largest_gap_beyond_a_16th_ms"] = round(excess * 1000, 2)
    out["step_counter_continuous"] = all(b["pos"] == a["pos"] + 1 for a, b in zip(record["log"], record["log"][1:]))
    out["switches"] = len(record["switches"])
    out["resyncs"] = sum(e["kind"] == "resync" for e in record["events"])
    if args.json:
        print(json.dumps(out))
    else:
        for key, value in out.items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
