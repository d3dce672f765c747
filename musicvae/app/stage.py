"""One looping player per screen: every groove on screen can be chosen, the loop never stops.

Each mode makes a :class:`Stage` right under its header (an empty slot, so the player sits above
the fold), draws its grooves through :meth:`Stage.show` (a piano roll with a small "▶ Play" toggle,
the MIDI/WAV downloads) and calls :meth:`Stage.mount` as soon as its grooves are known (offered with
:meth:`Stage.offer`, before the rolls are drawn: the browser gets the groove first); the looper
(:mod:`musicvae.app.player`) then gets the chosen groove and takes it over at the next bar (or
beat).  What plays is a key per mode (``playsel_<mode>`` in the session state): a roll's play toggle
sets it, a mode's main control (a grid click, a strip click, a slider) sets it back to its main
groove.  Keys from the browser (N, arrows) reach the mode's ``on_command`` as a callback, before
the rerun they cause, so the new groove is drawn and sent in that same run.  A mode whose grooves
are all decoded (the Grid) hands the looper a ``bank`` of them, so the browser switches on the input
event and the rerun only confirms (see :mod:`musicvae.app.player`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

import numpy as np
import streamlit as st

from musicvae.app import ui
from musicvae.pattern import DrumPattern

log = logging.getLogger(__name__)
LOOPER_KEY = "looper"
NEXT = "next"  # the bank's key of the next seed's groove (N, "New seed")


def _select(mode: str, key: str) -> None:
    st.session_state[f"playsel_{mode}"] = key


def follow(mode: str, key: str) -> None:
    """The mode's main control moved: the looper goes back to the mode's main groove."""
    _select(mode, key)


class Stage:
    """The screen's player slot and the grooves it can play."""

    def __init__(self, ctx: ui.Context, mode: str, main: str) -> None:
        self.ctx, self.mode, self.main = ctx, mode, main
        self.slot = st.container()
        self.grooves: dict[str, tuple[str, DrumPattern]] = {}

    @property
    def chosen(self) -> str:
        return str(st.session_state.get(f"playsel_{self.mode}") or self.main)

    def offer(self, key: str, title: str, pattern: DrumPattern) -> None:
        self.grooves[key] = (title, pattern)

    def play_toggle(self, key: str, where=None) -> None:
        """A small button that switches the looper to this groove (at the next bar)."""
        where = where or st
        playing = self.chosen == key
        where.button("🔊 Playing" if playing else "▶ Play", key=f"play_{key}", on_click=_select,
                     args=(self.mode, key), type="primary" if playing else "secondary", width="stretch",
                     help="The looper switches to this groove at the next bar (or beat).")

    def show(self, pattern: DrumPattern, key: str, title: str = "", **kwargs) -> None:
        """A groove's roll, its play toggle and downloads (see :func:`ui.show_groove`)."""
        self.offer(key, title, pattern)
        ui.show_groove(self.ctx, pattern, key, title, play=lambda where: self.play_toggle(key, where), **kwargs)

    def mount(self, on_command: Callable[[str], None] | None = None, queue: list[DrumPattern] | None = None,
              bank: dict[str, DrumPattern] | None = None, nav: dict | None = None, tag: str | None = None,
              banked: str | None = None) -> None:
        """The looper in the slot, playing the chosen groove (the main one when that is gone).

        ``bank``/``nav``/``tag``: see :func:`musicvae.app.player.looper`; ``tag`` names the groove the
        bank's grooves stand in for: ``banked`` (the main one by default; Sample banks the variation it
        plays); any other groove is tagged ``"play:<key>"``."""
        state = st.session_state
        key = self.chosen if self.chosen in self.grooves else self.main
        if key not in self.grooves:
            key = next(iter(self.grooves), None)
        if key is None:
            return
        state[f"playsel_{self.mode}"] = key
        title, pattern = self.grooves[key]
        with self.slot:
            target = banked or self.main
            if bank and nav is not None:  # a groove switched to in the browser is the banked one: its roll
                nav = {"roll": f"roll_{target}", **nav}
            mount_looper(self.ctx, pattern, title, f"roll_{key}", on_command, queue if key == self.main else None,
                         bank=bank, nav=nav, tag=(tag if key == target else f"play:{key}") if bank else None)


def slider_bank(key: str, value: float, step: float, low: float, high: float,
                groove_at: Callable[[float], DrumPattern | None], salt: str = "",
                tag_at: Callable[[float], str] | None = None) -> tuple[dict, dict, str]:
    """(bank, nav, tag) for :meth:`Stage.mount` so that the slider ``key`` switches in the browser.

    ``groove_at(v)`` is the groove the mode would play with the slider at ``v`` (decoded as the mode
    decodes it, humanized when the mode humanizes, so the rerun sends the very same groove); it is
    called for ``value`` and its neighbours one ``step`` left and right (inside ``low``..``high``);
    ``None``: that value is not banked (its move goes through the server).  Cached decodes make this
    cheap: after a step, the new value was a neighbour already.  ``salt`` names everything else the
    grooves depend on (seed, model...), so a tag is never reused for another groove; ``tag_at(v)``
    replaces the tag altogether (several sliders of one groove: the rerun names the whole state).
    The tag of the current value is returned for ``tag=``.  Banks of several sliders merge:
    ``{**bank_a, **bank_b}``, ``{"sliders": nav_a["sliders"] + nav_b["sliders"]}``.
    """
    def tag_of(v: float) -> str:
        if tag_at is not None:
            return tag_at(v)
        return f"{key}={v:g}" + (f"|{salt}" if salt else "")

    decimals = max(0, -int(np.floor(np.log10(step)))) + 2 if step > 0 else 6
    values = [round(value + k * step, decimals) for k in (-1, 0, 1)]
    values = [v for v in values if low - 1e-9 <= v <= high + 1e-9]
    grooves = {v: groove_at(v) for v in values}
    bank = {f"{key}:{v:g}": groove for v, groove in grooves.items() if groove is not None}
    points = [[v, f"{key}:{v:g}", tag_of(v)] for v, groove in grooves.items() if groove is not None]
    return bank, {"sliders": [{"key": key_class(key), "points": points}]}, tag_of(round(value, decimals))


def key_class(key: str) -> str:
    """The widget ``key`` as Streamlit's ``.st-key-<key>`` CSS class names it (what the looper looks up)."""
    return re.sub(r"[^a-zA-Z0-9_-]", "-", key.strip())


def with_next(banked: dict, groove: DrumPattern | None, tag: str, button: str = "new_seed_btn") -> dict:
    """``banked`` (a mode's ``bank``/``nav``/``tag``, see :meth:`Stage.mount`) plus the groove that N or
    the ``button`` ("New seed") brings: the one at :func:`ui.upcoming_seed`, decoded ahead, so the
    browser switches on the key press (or click) itself; ``tag`` is the one the rerun after the new
    seed will carry.  Unchanged when there is no bank to add it to, or no groove."""
    if not banked or groove is None:
        return banked
    return {**banked, "bank": {**banked["bank"], NEXT: groove},
            "nav": {**banked["nav"], "next": [NEXT, tag, key_class(button)]}}


def mount_looper(ctx: ui.Context, pattern: DrumPattern, title: str, roll: str,
                 on_command: Callable[[str], None] | None, queue: list[DrumPattern] | None = None,
                 bank: dict[str, DrumPattern] | None = None, nav: dict | None = None, tag: str | None = None) -> None:
    from musicvae.app.player import looper
    from musicvae.media.audio import AudioError
    from musicvae.media.drumkit import KitError

    synth, error = ui.get_synth()
    if synth is None:
        st.error(f"No audio: {error}")
        return
    try:
        kit = ui.get_kit()
    except (AudioError, KitError) as problem:  # e.g. a soundfont whose kit renders silence
        st.error(f"No audio: {problem}")
        return
    state = st.session_state
    looper(pattern, float(state.get("qpm", ctx.qpm)), key=LOOPER_KEY, switch_at=state.get("switch_at", "bar"),
           label=f"♪ {title}" if title else "", kit=kit, on_command=on_command, roll="" if queue else roll,
           queue=queue, bank=bank, nav=nav, tag=tag)
