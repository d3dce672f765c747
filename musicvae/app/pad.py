"""The Grid's blend pad: a puck you drag anywhere between the four corners, or a path you draw.

A small ``st.components.v2`` component (inline JS, no build).  Dragging the puck reports its
position (x right, y down, both 0..1) every ~120 ms while it moves and once on release; with
``draw=True`` a drag draws a path instead, reported on release as up to 64 points.  The app turns a
position into z (bilinear mix of the corners' codes), decodes it and hands it to the looper; a path
is resampled to one groove per bar and handed to the looper as a queue (see ``player.looper``).

While the puck moves, the pad also tells the looper in the browser (``window.__musicvaeLooper.puck``)
where it is: the looper switches at once to the banked groove of the nearest grid cell (the Grid
sends every cell's groove as the looper's bank), and each position sent to Python is announced
(``expectTag("puck:x,y")``, x and y with 3 decimals as sent) so that the server's exact decode for the
latest position replaces it when it arrives, and answers for older positions are not taken.  A
position equal to the last one sent is moved by 0.001 (the same value would bring no rerun).
"""

from __future__ import annotations

import numpy as np

NAME = "musicvae_pad"
JS = r"""
export default function (component) {
  const { data, parentElement, setStateValue } = component;
  let root = parentElement.querySelector(".mv-pad");
  if (!root) {
    root = document.createElement("div");
    root.className = "mv-pad";
    root.setAttribute("role", "application");
    root.setAttribute("aria-label", "Blend pad: drag the puck between the four corners");
    root.innerHTML = '<svg viewBox="0 0 100 100" preserveAspectRatio="none"><polyline fill="none" ' +
      'stroke="#1f77b4" stroke-width="1.5" vector-effect="non-scaling-stroke"/></svg>' +
      '<span class="mv-c mv-tl"></span><span class="mv-c mv-tr"></span><span class="mv-c mv-bl"></span>' +
      '<span class="mv-c mv-br"></span><div class="mv-puck"></div>';
    parentElement.appendChild(root);
  }
  const puck = root.querySelector(".mv-puck");
  const line = root.querySelector("polyline");
  const labels = (data && data.labels) || [];
  ["tl", "tr", "bl", "br"].forEach((c, i) => { root.querySelector(".mv-" + c).textContent = labels[i] || ""; });
  const place = (x, y) => { puck.style.left = (x * 100) + "%"; puck.style.top = (y * 100) + "%"; };
  const pos = (data && data.pos) || [0.5, 0.5];
  if (!root.__dragging) place(pos[0], pos[1]);
  const drawn = (data && data.path) || [];
  if (!root.__dragging) line.setAttribute("points", drawn.map((p) => (p[0] * 100) + "," + (p[1] * 100)).join(" "));
  root.__draw = Boolean(data && data.draw);
  root.__send = setStateValue;
  if (!root.__wired) {
    root.__wired = true;
    const at = (e) => {
      const r = root.getBoundingClientRect();
      return [Math.min(1, Math.max(0, (e.clientX - r.left) / r.width)),
        Math.min(1, Math.max(0, (e.clientY - r.top) / r.height))];
    };
    let last = 0, points = [];
    const looper = () => window.__musicvaeLooper;
    const follow = (p) => { const l = looper(); if (l && l.puck) l.puck(p[0], p[1]); };  // the nearest banked cell, now
    let sent = null;
    const sendPos = (p) => {
      let x = +p[0].toFixed(3), y = +p[1].toFixed(3);
      // the same value again would bring no rerun, so no answer to the looper's switch: nudge it
      if (sent && sent[0] === x && sent[1] === y) x = +(x + (x < 0.5 ? 0.001 : -0.001)).toFixed(3);
      sent = [x, y];
      const l = looper();
      if (l && l.expectTag) l.expectTag("puck:" + x.toFixed(3) + "," + y.toFixed(3));
      root.__send("pos", [x, y]);
    };
    root.addEventListener("pointerdown", (e) => {
      root.__dragging = true;
      root.setPointerCapture(e.pointerId);
      const p = at(e);
      points = [p];
      if (!root.__draw) { place(p[0], p[1]); follow(p); }
    });
    root.addEventListener("pointermove", (e) => {
      if (!root.__dragging) return;
      const p = at(e);
      if (root.__draw) {
        points.push(p);
        line.setAttribute("points", points.map((q) => (q[0] * 100) + "," + (q[1] * 100)).join(" "));
      } else {
        place(p[0], p[1]);
        follow(p);
        const now = performance.now();
        if (now - last > 120) { last = now; sendPos(p); }
      }
    });
    root.addEventListener("pointerup", (e) => {
      root.__dragging = false;
      const p = at(e);
      if (root.__draw) {
        points.push(p);
        const step = Math.max(1, Math.ceil(points.length / 64));
        const kept = points.filter((_, i) => i % step === 0);
        root.__send("path", kept.map((q) => [+q[0].toFixed(3), +q[1].toFixed(3)]));
      } else {
        place(p[0], p[1]);
        follow(p);
        sendPos(p);
      }
    });
  }
}
"""
CSS = """
.mv-pad { position: relative; width: 100%; aspect-ratio: 1; max-width: 320px; touch-action: none; cursor: crosshair;
  border: 2px solid var(--st-border-color, #ccc); border-radius: 8px;
  background: linear-gradient(135deg, #fde3c8 0%, #ececec 50%, #c8dcfd 100%); user-select: none; }
.mv-pad svg { position: absolute; inset: 0; width: 100%; height: 100%; pointer-events: none; }
.mv-puck { position: absolute; width: 22px; height: 22px; margin: -11px 0 0 -11px; border-radius: 50%;
  background: var(--st-primary-color, #ff4b4b); border: 3px solid #fff; box-shadow: 0 1px 4px rgba(0,0,0,.4);
  pointer-events: none; }
.mv-c { position: absolute; font: 600 11px var(--st-font, sans-serif); padding: 2px 4px; max-width: 48%;
  white-space: nowrap; overflow: hidden; text-overflow: ellipsis; pointer-events: none; }
.mv-tl { top: 0; left: 0; } .mv-tr { top: 0; right: 0; } .mv-bl { bottom: 0; left: 0; } .mv-br { bottom: 0; right: 0; }
"""


def pad(key: str, labels: list[str], pos: tuple[float, float], path: list | None, draw: bool, on_pos, on_path) -> dict:
    """Mount the pad; returns its state ``{"pos": [x, y] | None, "path": [[x, y], ...] | None}``."""
    import streamlit as st

    component = st.components.v2.component(NAME, js=JS, css=CSS)
    result = component(key=key, data={"labels": labels, "pos": list(pos), "path": path or [], "draw": bool(draw)},
                       default={"pos": None, "path": None}, on_pos_change=on_pos, on_path_change=on_path,
                       height="content")
    return {"pos": result.get("pos"), "path": result.get("path")}


def resample(path: list, count: int) -> list[tuple[float, float]]:
    """``count`` points evenly spaced along a drawn polyline (by length)."""
    points = np.asarray(path, dtype=np.float64).reshape(-1, 2)
    if len(points) == 1:
        return [tuple(points[0])] * count
    lengths = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))]
    if lengths[-1] == 0:
        return [tuple(points[0])] * count
    at = np.linspace(0.0, lengths[-1], count)
    return [(float(np.interp(t, lengths, points[:, 0])), float(np.interp(t, lengths, points[:, 1]))) for t in at]
