"""Screenshots of every playground mode with the shipped models, for the README.

    .venv/bin/python scripts/screenshots.py   # docs/screenshots/{sample,latent,interpolate,grid}.png (1400x1000,
                                              # playing) and present-{mode}.png (presentation mode at 1280x720)
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]
READY = "() => { const p = window.__musicvaeLooper; return p && p.state().kitLoaded && p.state().patternId; }"


def main() -> int:
    from playwright.sync_api import sync_playwright

    out = ROOT / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "streamlit_app.py"),
                               "--server.port", str(port), "--server.address", "127.0.0.1",
                               "--server.headless", "true"], cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            for present, size in ((False, (1400, 1000)), (True, (1280, 720))):
                page = browser.new_page(viewport={"width": size[0], "height": size[1]})
                page.set_default_timeout(120_000)
                for mode in ("sample", "latent", "interpolate", "grid"):
                    page.goto(f"http://127.0.0.1:{port}/?mode={mode}" + ("&present=1" if present else ""))
                    page.wait_for_function(READY)
                    page.wait_for_selector(".js-plotly-plot")
                    page.wait_for_timeout(2000)
                    page.locator(".mv-play").click()  # playing: the playhead shows on the roll
                    page.wait_for_timeout(1500)
                    name = f"present-{mode}.png" if present else f"{mode}.png"
                    page.screenshot(path=str(out / name), full_page=not present)
                    print(out / name)
                    page.locator(".mv-play").click()
                page.close()
            browser.close()
    finally:
        server.terminate()
        server.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
