#!/usr/bin/env python
"""Load test: N browser contexts against one `streamlit run` server for M minutes.

    .venv/bin/python scripts/load_test.py --contexts 8 --minutes 2 [--checkpoints DIR] [--json out.json]

Each context (its own session, like a separate visitor) loops: open the page with a fresh seed,
"New seed" in Sample, switch to Latent sliders and move a slider three times, switch to
Interpolate and upload two GMD files (which become A and B), add a step.  It records every
action's latency (action -> the run it triggered has finished with a roll and the looper on
screen), every error (timeouts, page errors, Streamlit exception boxes), and samples the
server's resident memory every 5 s.  Target from the issue: 8 x 2 min, zero errors, RSS growth
<= 100 MB.  Not a test; numbers depend on the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

from musicvae.data.sources import default_gmd_dir

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

from bench_app import READY, SIGNATURE, WATCH, percentile  # noqa: E402
from test_browser import CHROMIUM, CHROMIUM_ARGS, free_port, start_server  # noqa: E402

TIMEOUT_MS = 120_000
GROOVE = default_gmd_dir()


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


class Visitor:
    def __init__(self, index: int, browser, url: str, files: list[Path], deadline: float, log: dict) -> None:
        self.index, self.browser, self.url = index, browser, url
        self.files, self.deadline, self.log = files, deadline, log
        self.rng = random.Random(index)

    async def timed(self, page, name: str, action) -> None:
        await page.evaluate(WATCH)
        before = [await page.evaluate("() => window.__runs"), await page.evaluate(SIGNATURE)]
        start = time.perf_counter()
        try:
            await action()
            await page.wait_for_function(READY, arg=before, polling="raf", timeout=TIMEOUT_MS)
        except Exception as error:  # a timeout or a broken page counts as an error, then we go on
            self.log["errors"].append(f"visitor {self.index} {name}: {type(error).__name__}: {str(error)[:160]}")
            return
        self.log["latency"][name].append((time.perf_counter() - start) * 1000)
        if await page.locator('[data-testid="stException"]').count():
            self.log["errors"].append(f"visitor {self.index} {name}: Streamlit exception on the page")

    async def mode(self, page, label: str) -> None:
        await page.locator('[data-testid="stSidebar"]').get_by_text(label, exact=True).click()

    async def run(self) -> None:
        context = await self.browser.new_context(viewport={"width": 1300, "height": 900})
        page = await context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda error: self.log["errors"].append(f"visitor {self.index} pageerror: {error}"))
        await asyncio.sleep(self.index * 1.5)  # stagger the arrivals
        while time.monotonic() < self.deadline:
            seed = self.rng.randrange(100_000)
            start = time.perf_counter()
            try:
                await page.goto(f"{self.url}/?mode=sample&seed={seed}")
                await page.wait_for_selector(".mv-play")
                await page.wait_for_selector(".js-plotly-plot")
                self.log["latency"]["page load"].append((time.perf_counter() - start) * 1000)
            except Exception as error:
                self.log["errors"].append(f"visitor {self.index} load: {type(error).__name__}: {str(error)[:160]}")
                continue
            await page.wait_for_timeout(500)
            await self.timed(page, "sample: new seed", lambda: page.get_by_role("button", name="New seed").click())
            await self.timed(page, "switch to latent", lambda: self.mode(page, "Latent sliders"))
            slider = page.get_by_role("slider", name="Temperature")
            for _ in range(3):
                await slider.focus()
                await self.timed(page, "latent: slider", lambda s=slider: s.press("ArrowRight"))
            await self.timed(page, "switch to interpolate", lambda: self.mode(page, "Interpolate"))
            pair = self.rng.sample(self.files, 2)
            await self.timed(page, "upload 2 files + interpolate", lambda p=pair: page.locator(
                '[data-testid="stSidebar"] input[type=file]').set_input_files([str(f) for f in p]))
            steps = page.get_by_role("slider", name="Steps (both ends included)")
            await steps.focus()
            await self.timed(page, "interpolate: add a step", lambda s=steps: s.press("ArrowRight"))
            self.log["cycles"] += 1
            self.log["done"].add(self.index)
            if len(self.log["done"]) == self.log["contexts"] and self.log["warm_rss"] is None:
                self.log["warm_rss"] = (round(time.monotonic() - self.log["t0"], 1), rss_mb(self.log["pid"]))
        await context.close()


async def main_async(args) -> dict:
    from playwright.async_api import async_playwright

    env = dict(os.environ)
    if args.checkpoints:
        env["MUSICVAE_CHECKPOINTS_DIR"] = str(args.checkpoints.resolve())
    port = free_port()
    server = start_server(port, env, Path("/tmp") / f"load_test_{port}.log")
    url = f"http://127.0.0.1:{port}"
    files = sorted(GROOVE.glob("drummer1/session1/*_beat_4-4.mid"))[:12]
    started = time.monotonic()
    log: dict = {"latency": defaultdict(list), "errors": [], "cycles": 0, "rss": [], "done": set(),
                 "contexts": args.contexts, "warm_rss": None, "t0": started, "pid": server.pid}

    async def watch_memory() -> None:
        while True:
            log["rss"].append((round(time.monotonic() - started, 1), round(rss_mb(server.pid), 1)))
            await asyncio.sleep(5)

    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            memory = asyncio.create_task(watch_memory())
            deadline = time.monotonic() + args.minutes * 60
            await asyncio.gather(*(Visitor(i, browser, url, files, deadline, log).run() for i in range(args.contexts)))
            memory.cancel()
            log["rss"].append((round(time.monotonic() - started, 1), round(rss_mb(server.pid), 1)))
            await browser.close()
    finally:
        server.terminate()
        server.wait(10)
    rss = [m for _, m in log["rss"]]
    # warm = every visitor has finished one whole cycle: model, synth and caches are in, sessions exist
    warm_at, warm = log["warm_rss"] or (None, rss[-1])
    return {
        "contexts": args.contexts,
        "minutes": args.minutes,
        "cycles": log["cycles"],
        "errors": len(log["errors"]),
        "error_samples": log["errors"][:10],
        "latency_ms": {name: {"n": len(v), "p50": round(statistics.median(v)), "p95": round(percentile(v, 0.95)),
                              "max": round(max(v))} for name, v in log["latency"].items() if v},
        "rss_mb": {"first": rss[0], "warm": round(warm, 1), "warm_at_s": warm_at, "max": max(rss), "last": rss[-1],
                   "growth_after_warm_up": round(rss[-1] - warm, 1),
                   "max_growth_after_warm_up": round(max(m for t, m in log["rss"] if warm_at is None or t >= warm_at)
                                                     - warm, 1)},
        "rss_timeline": log["rss"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contexts", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--checkpoints", type=Path, default=None, help="MUSICVAE_CHECKPOINTS_DIR (default: repo)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    shown = {k: v for k, v in result.items() if k != "rss_timeline"}
    print(json.dumps(shown, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
