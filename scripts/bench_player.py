"""Measure the looping player in real Chromium: input -> new groove held, and the loop's gaps.

The same set-up as ``tests/test_player_browser.py`` (its tiny app, its helpers): ``streamlit run``
on a free port, Debian's chromium through Playwright, press play, then N consecutive changes of
the "Groove" slider while the loop plays (one ArrowRight each, a random 0-300 ms pause after the
player got the groove, so the changes land anywhere in the bar).  For each change:

- latency = (``performance.now()`` when the component received the new groove) - (the slider's
  keydown, timestamped in the page in the capture phase): the player then holds the groove and
  plays it from the next bar line (``switch_at="bar"``);
- from the scheduler's log: the largest distance between two consecutive scheduled 16ths, minus
  one 16th (0 means no gap), and whether the step counter ever restarted.

``--decode`` samples each groove with the shipped model (server decode included).
Usage: ``.venv/bin/python scripts/bench_player.py [--changes 50] [--decode] [--json]``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from test_player_browser import (  # noqa: E402
    TIMEOUT_MS,
    chromium_browser,
    groove,
    largest_gap,
    looper_log,
    open_player,
    press_play,
    start_app,
    stop_app,
)

from musicvae.app.player import pattern_data  # noqa: E402

INPUT_PROBE = """() => {
  window.__inputTimes = [];
  document.addEventListener('keydown', (e) => {
    const t = e.composedPath()[0];
    if (t && (t.type === 'range' || (t.getAttribute && t.getAttribute('role') === 'slider'))) {
      window.__inputTimes.push(performance.now());
    }
  }, true);
}"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--decode", action="store_true", help="sample each groove with the shipped model")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pauses between changes")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.decode:
        os.environ["MUSICVAE_PLAYER_DECODE"] = "1"  # read by groove(), here and in the server
    rng = random.Random(args.seed)

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="bench-player-") as folder:
        started = time.monotonic()
        process, url = start_app(Path(folder), {"MUSICVAE_PLAYER_DECODE": "1"} if args.decode else None)
        server_ready = time.monotonic() - started
        try:
            with sync_playwright() as playwright:
                browser = chromium_browser(playwright)
                page = browser.new_page(viewport={"width": 1280, "height": 720})
                page.set_default_timeout(TIMEOUT_MS)
                loaded = time.monotonic()
                open_player(page, url)
                first_groove = time.monotonic() - loaded
                in_page = page.evaluate("() => window.__musicvaeLooper.state().kitLoadedAt") / 1000
                press_play(page)
                page.evaluate(INPUT_PROBE)
                slider = page.get_by_role("slider", name="Groove")
                slider.focus()
                latencies = []
                for seed in range(1, args.changes + 1):
                    expected = pattern_data(groove(seed))["id"]
                    slider.press("ArrowRight")
                    page.wait_for_function(
                        f"() => window.__musicvaeLooper.arrivals.some(a => a.patternId === '{expected}')",
                        timeout=TIMEOUT_MS)
                    latencies.append(page.evaluate(f"""() => {{
                        const a = window.__musicvaeLooper.arrivals.find(a => a.patternId === '{expected}');
                        return a.perfTime - window.__inputTimes[window.__inputTimes.length - 1]; }}"""))
                    page.wait_for_timeout(rng.uniform(0, 300))
                last = pattern_data(groove(args.changes))["id"]
                page.wait_for_function(f"() => window.__musicvaeLooper.state().patternId === '{last}'",
                                       timeout=TIMEOUT_MS)
                page.wait_for_timeout(500)
                record = looper_log(page)
                browser.close()
        finally:
            stop_app(process)

    log = record["log"]
    excess, widest = largest_gap(log)
    restarts = sum(1 for a, b in zip(log, log[1:], strict=False) if b["pos"] != a["pos"] + 1)
    off_bar = sum(1 for s in record["switches"] if s["pos"] % 16)
    lat = np.array(latencies)
    result = {
        "changes": args.changes,
        "decode": args.decode,
        "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 1), "p95": round(float(np.percentile(lat, 95)), 1),
                       "max": round(float(lat.max()), 1), "min": round(float(lat.min()), 1)},
        "scheduled_steps": len(log),
        "step_ms": round(log[-1]["dur"] * 1000, 3),
        "largest_step_distance_ms": round(widest * 1000, 3),
        "largest_gap_beyond_one_16th_ms": round(max(excess, 0.0) * 1000, 3),
        "restarts": restarts,
        "switches": len(record["switches"]),
        "switches_off_the_bar_line": off_bar,
        "stops": sum(1 for e in record["events"] if e["kind"] != "play"),
        "server_ready_s": round(server_ready, 2),
        "first_groove_with_kit_s": round(first_groove, 2),
        "first_groove_in_page_s": round(in_page, 2),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for name, value in result.items():
            print(f"{name:34s} {value}")
    return 0 if restarts == 0 and excess <= 0.001 and off_bar == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
