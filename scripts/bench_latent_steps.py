"""Server cost of Latent slider steps: AppTest on the shipped models, one direction slider moved step by
step, the run's own timer marks (decode, humanize, neighbours, roll) and the whole run, medians.

Usage: ``OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_latent_steps.py [--steps 12] [--humanize]``
(figures in docs/performance.md, "Latent with Humanize").
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    from streamlit.testing.v1 import AppTest

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--humanize", action="store_true", help="with the sidebar's Humanize on")
    args = parser.parse_args(argv)
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at.query_params.update({"mode": "latent", "humanize": "1" if args.humanize else "0"})
    at.run()
    key = next(s.key for s in at.slider if str(s.key).startswith("lat_"))
    marks: dict[str, list[float]] = {}
    for i in range(args.steps):
        at.slider(key=key).set_value(round(0.1 * (i + 1), 3))
        start = time.perf_counter()
        at.run()
        marks.setdefault("whole run", []).append((time.perf_counter() - start) * 1000)
        caption = next((c.value for c in at.caption if "neighbours" in c.value), "")
        for name, ms in re.findall(r"(\w[\w +]*?) (\d+) ms", caption):
            marks.setdefault(name, []).append(float(ms))
    for name, values in marks.items():
        print(f"{name}: median {statistics.median(values):.0f} ms, max {max(values):.0f} ms (n={len(values)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
