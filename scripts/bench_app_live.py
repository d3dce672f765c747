"""Measure the playground's looper in the real app (real Chromium, the shipped models, `streamlit run`).

1. First interactive groove: with Chromium already open (as a presenter's browser is), seconds from
   starting `streamlit run streamlit_app.py` until the page shows the player holding a groove and
   its decoded drum kit (``window.__musicvaeLooper``): on a fresh server that is the preset the
   looper plays while the model loads (musicvae/app/startup.py); then until the model's own first
   groove has arrived (the label no longer says "while the model loads"); then the same in a
   second browser (server warm).
2. Press play, then changes while the loop plays: ``--changes`` on Sample's temperature slider (one
   ArrowRight each: 3 variations re-decoded by the server, the looper plays the first), on Sample's
   similarity slider with "Similar to a groove" on (ArrowLeft from 0.7, then ArrowRight back), on the
   first Latent slider (one ArrowRight each, then ArrowLeft back past the start), on Latent's
   temperature slider (ArrowRight, then ArrowLeft back), the Interpolate strip's arrow keys (4 right,
   4 left), then on Grid
   ``--changes`` each of: arrow keys (the looper's own key commands, moving the cell along a snake
   path through the 5 x 5 grid), clicks on random cells of the grid chart, and presses of the blend
   pad's puck at random points (the looper switches to the nearest cell's groove; the server's exact
   decode for the point follows on release).  Latency = (``performance.now()`` when the player
   received the new groove, from the looper's ``arrivals``, whose ``source`` says "bank" for a switch
   made in the browser and "server" for one from a rerun) - (the input event, timestamped in the
   page in the capture phase: the keydown, the pointerup of a click (plotly's click), the pointerdown
   on the pad).  The player then holds the groove and plays it from the next bar line.  For the
   Grid the time until the server's rerun answered (the tag came back) is reported too, and for the
   puck the time from the release until the exact decode arrived.  A change that gives the same
   groove (nothing to switch) is counted apart.
3. The scheduler's log over the whole run: the largest distance between two consecutive 16ths
   minus one 16th (0 = no gap) and whether the step counter ever skipped.

Usage: ``.venv/bin/python scripts/bench_app_live.py [--changes 20]
[--kinds sample,seed,similarity,latent,latent-temperature,interpolate,grid] [--json]``
(``--changes`` per input kind; ``--kinds`` the inputs measured, all by default; ``seed`` is N)
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
  window.__inputs = {keydown: [], pointerdown: [], pointerup: []};
  for (const kind of Object.keys(window.__inputs)) {
    document.addEventListener(kind, () => { window.__inputs[kind].push(performance.now()); }, true);
  }
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


NEW_GROOVE = "n => window.__musicvaeLooper.arrivals.filter(a => a.kind !== 'cancel').length > n"
COUNT = "() => window.__musicvaeLooper.arrivals.filter(a => a.kind !== 'cancel').length"


def change(page, press, kind: str = "keydown", patience_ms: int = 4000, answer: bool = True) -> dict | None:
    """Press once; {"ms": until the looper received a new groove, "source": "bank" | "server",
    "answer_ms": until the server's rerun answered the browser's switch (Grid)} (None: the same groove)."""
    arrivals = page.evaluate(COUNT)
    answers = page.evaluate("() => window.__musicvaeLooper.answers.length")
    inputs = page.evaluate("k => window.__inputs[k].length", kind)
    press()
    try:
        page.wait_for_function(NEW_GROOVE, arg=arrivals, timeout=patience_ms)
    except Exception:  # noqa: BLE001 - playwright's timeout: nothing new to play
        settle(page)
        return None
    t_input, arrival = page.evaluate(
        """([k, n, a]) => [window.__inputs[k][n],
            window.__musicvaeLooper.arrivals.filter(x => x.kind !== 'cancel')[a]]""", [kind, inputs, arrivals])
    out = {"ms": arrival["perfTime"] - t_input, "source": arrival.get("source", "server")}
    if out["source"] == "bank" and answer:
        try:
            page.wait_for_function("n => window.__musicvaeLooper.answers.length > n && "
                                   "!window.__musicvaeLooper.expect.length", arg=answers, timeout=TIMEOUT_MS)
            out["answer_ms"] = page.evaluate("() => window.__musicvaeLooper.answers.slice(-1)[0].perfTime") - t_input
        except Exception:  # noqa: BLE001 - never answered: reported as missing
            out["answer_ms"] = None
    settle(page)
    return out


def stats(values: list[float]) -> dict:
    return {"n": len(values), "p50_ms": round(float(np.percentile(values, 50))),
            "p95_ms": round(float(np.percentile(values, 95))), "max_ms": round(max(values))}


def chart_cell(page, row: int, col: int, n: int = 5) -> tuple[float, float]:
    # (a hidden twin of the plot may be there a moment)
    box = page.locator(".st-key-grid_chart .js-plotly-plot >> visible=true").first.bounding_box()
    return box["x"] + box["width"] * (col - 0.5) / n, box["y"] + box["height"] * (row - 0.5) / n


def click_cell(page, row: int, col: int) -> None:
    x, y = chart_cell(page, row, col)
    page.mouse.move(x - 5, y - 5)
    page.mouse.move(x, y, steps=5)  # plotly needs the hover before a click
    page.wait_for_timeout(300)
    page.mouse.down()
    page.mouse.up()


def press_puck(page, x: float, y: float) -> dict | None:
    """Press the pad at (x, y) (0..1): the looper's switch to the nearest cell (from the pointerdown),
    then release and wait for the server's exact decode (ms from the release)."""
    box = page.locator(".mv-pad").bounding_box()
    px, py = box["x"] + box["width"] * x, box["y"] + box["height"] * y
    page.mouse.move(px, py)
    out = change(page, page.mouse.down, "pointerdown", patience_ms=1500, answer=False)
    arrivals = page.evaluate(COUNT)
    ups = page.evaluate("() => window.__inputs.pointerup.length")
    page.mouse.up()
    tag = page.evaluate("() => (window.__musicvaeLooper.expect.slice(-1)[0] || {}).tag")
    if out is not None and tag:
        page.wait_for_function("t => window.__musicvaeLooper.tag === t", arg=tag, timeout=TIMEOUT_MS)
        exact = page.evaluate("""([n, u]) => { const got = window.__musicvaeLooper.arrivals.filter(
            x => x.kind !== 'cancel' && x.source === 'server'); const last = got[got.length - 1];
            return last && last.perfTime > window.__inputs.pointerup[u] ? last.perfTime - window.__inputs.pointerup[u]
            : null; }""", [arrivals, ups])
        out["exact_ms"] = exact
    settle(page)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=20, help="changes per input kind")
    parser.add_argument("--kinds", default="sample,seed,similarity,latent,latent-temperature,interpolate,grid",
                        help="inputs measured, comma-separated")
    parser.add_argument("--humanize", action="store_true", help="with the sidebar's Humanize on (?humanize=1)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--dump", type=Path, help="write every measurement and the looper's logs here (JSON)")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    out: dict = {}
    rng = random.Random(0)
    process = None
    try:
        with sync_playwright() as playwright:
            browser = chromium_browser(playwright)
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.goto("about:blank")
            port = free_port()
            process, started = start_server(port)
            url = f"http://127.0.0.1:{port}"
            page.goto(url + "/?mode=sample" + ("&humanize=1" if args.humanize else ""))
            page.wait_for_function(READY, timeout=TIMEOUT_MS, polling=20)
            out["first_groove_s"] = round(time.monotonic() - started, 2)
            deadline = time.monotonic() + TIMEOUT_MS / 1000
            while "while the model loads" in page.locator(".mv-label").inner_text() and time.monotonic() < deadline:
                time.sleep(0.02)
            out["first_model_groove_s"] = round(time.monotonic() - started, 2)
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
            results: dict[str, list[dict]] = {"sample temperature": [], "sample new seed (N)": [],
                                              "sample similarity": [], "latent slider": [],
                                              "latent temperature": [], "interpolate arrow keys": [],
                                              "interpolate step slider": [],
                                              "grid arrow keys": [],
                                              "grid cell clicks": [], "blend pad puck": []}
            kinds = set(args.kinds.split(","))
            same = 0

            def note(name: str, result: dict | None) -> None:
                nonlocal same
                same += result is None
                if result is not None:
                    results[name].append(result)
                page.wait_for_timeout(rng.randint(0, 300))

            slider = page.get_by_role("slider", name="Temperature")
            for _ in range(args.changes if "sample" in kinds else 0):
                slider.focus()
                note("sample temperature", change(page, lambda: slider.press("ArrowRight")))
            for _ in range(args.changes if "seed" in kinds else 0):  # N: the next seed's groove, banked
                page.locator("h2").first.click()  # the focus off the slider: N is the looper's
                note("sample new seed (N)", change(page, lambda: page.keyboard.press("n")))
            there_and_back = (["ArrowRight"] * (args.changes // 2) + ["ArrowLeft"] * (args.changes - args.changes // 2))
            if "similarity" in kinds:
                page.get_by_text("Similar to a groove").click()
                page.wait_for_function("() => window.__musicvaeLooper.banked('similarity:0.65')", timeout=TIMEOUT_MS)
                settle(page)
                page.wait_for_timeout(1000)
                slider = page.get_by_role("slider", name="Similarity")
                for key in ["ArrowLeft" if k == "ArrowRight" else "ArrowRight" for k in there_and_back]:
                    slider.focus()
                    note("sample similarity", change(page, lambda key=key: slider.press(key)))
            if kinds & {"latent", "latent-temperature"}:
                page.locator('[data-testid="stSidebar"]').get_by_text("Latent sliders", exact=True).click()
                page.get_by_role("heading", name="Latent sliders").wait_for()
                settle(page)
                page.wait_for_timeout(1000)
            direction = page.locator("[class*='st-key-lat_']").first.get_by_role("slider")
            for key in there_and_back if "latent" in kinds else []:
                direction.focus()
                note("latent slider", change(page, lambda key=key: direction.press(key)))
            temperature = page.get_by_role("slider", name="Temperature")
            for key in there_and_back if "latent-temperature" in kinds else []:
                temperature.focus()
                note("latent temperature", change(page, lambda key=key: temperature.press(key)))
            if "interpolate" in kinds:
                page.locator('[data-testid="stSidebar"]').get_by_text("Interpolate", exact=True).click()
                page.get_by_role("heading", name="Interpolate").wait_for()
                page.wait_for_function("() => (window.__musicvaeLooper.nav || {}).rows === 1",
                                       timeout=TIMEOUT_MS)  # the strip's groove and bank
                settle(page)
                page.wait_for_timeout(1000)
                moves = (["ArrowRight"] * 4 + ["ArrowLeft"] * 4) * args.changes
                for key in moves[: args.changes]:
                    page.locator("h2").first.click()  # focus out of any control: the arrows are the looper's
                    note("interpolate arrow keys", change(page, lambda key=key: page.keyboard.press(key)))
                step = page.get_by_role("slider", name="Step to hear")
                for key in moves[: args.changes]:
                    step.focus()
                    note("interpolate step slider", change(page, lambda key=key: step.press(key)))
            if "grid" not in kinds:
                page.wait_for_timeout(2500)
                record = looper_log(page) | page.evaluate("() => ({answers: window.__musicvaeLooper.answers.slice()})")
                browser.close()
                return report(args, out, results, record, same)
            page.locator('[data-testid="stSidebar"]').get_by_text("Grid", exact=True).click()
            page.get_by_role("heading", name="Grid").wait_for()
            # the Grid's groove and bank (not Sample's or Latent's slider nav, still there while the Grid loads)
            page.wait_for_function("() => (window.__musicvaeLooper.nav || {}).chart === 'grid_chart'",
                                   timeout=TIMEOUT_MS)
            settle(page)
            page.wait_for_timeout(1000)
            moves = (["ArrowRight"] * 4 + ["ArrowDown"] + ["ArrowLeft"] * 4 + ["ArrowDown"]) * 5
            for key in moves[: args.changes]:
                page.locator("h2").first.click()  # focus out of any control: the arrows are the looper's
                note("grid arrow keys", change(page, lambda key=key: page.keyboard.press(key)))
            for _ in range(args.changes):
                row, col = rng.randint(1, 5), rng.randint(1, 5)
                note("grid cell clicks", change(page, lambda r=row, c=col: click_cell(page, r, c), "pointerup"))
            for _ in range(args.changes):
                note("blend pad puck", press_puck(page, rng.uniform(0.03, 0.97), rng.uniform(0.03, 0.97)))
            page.wait_for_timeout(2500)
            record = looper_log(page) | page.evaluate("() => ({answers: window.__musicvaeLooper.answers.slice()})")
            browser.close()
    finally:
        if process is not None:
            process.terminate()
            process.wait(10)
    return report(args, out, results, record, same)


def report(args, out: dict, results: dict[str, list[dict]], record: dict, same: int) -> int:
    for name, values in results.items():
        if values:
            out[name] = stats([r["ms"] for r in values])
            out[name]["from the bank"] = sum(r["source"] == "bank" for r in values)
            answers = [r["answer_ms"] for r in values if r.get("answer_ms") is not None]
            if answers:
                out[name + ": server answered"] = stats(answers)
            exact = [r["exact_ms"] for r in values if r.get("exact_ms") is not None]
            if exact:
                out[name + ": exact decode after release"] = stats(exact)
    grid = [r["ms"] for name in ("grid arrow keys", "grid cell clicks", "blend pad puck") for r in results[name]]
    if grid:
        out["grid, all inputs"] = stats(grid)
    if args.dump:
        args.dump.write_text(json.dumps({"results": results, "looper": record}))
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
