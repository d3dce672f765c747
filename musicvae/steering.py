"""Attribute vectors (MusicVAE paper §5.3) and a measurement of what every latent direction does.

- An attribute vector is mean(mu of the top quartile) - mean(mu of the bottom quartile) of the
  training windows ranked by that attribute (``attributes.py``).  One slider unit adds the whole
  vector (alpha = 1), as in the paper.
- ``measure``: move the mu of held-out grooves by alpha in [-2, 2] along a direction, decode
  greedily (temperature 0), recompute every attribute, and summarise:
  * ``rho``: Spearman rank correlation between alpha and the mean target attribute (the curve);
  * ``rho_median_groove``: the median over grooves of the same correlation per groove;
  * ``change_per_unit``: slope of the mean target attribute per unit alpha;
  * ``entanglement``: mean over the other attributes of |slope| / their std on the data, divided by
    the target's |slope| / std (0 = moves only its target; 1 = moves others as much).
  A direction is shipped as a named slider when ``rho >= 0.9`` and the target rises with alpha.
"""

from __future__ import annotations

import numpy as np
import torch

from musicvae.attributes import ATTRIBUTES, compute_all
from musicvae.pattern import hits_from_tokens

ALPHAS = np.linspace(-2.0, 2.0, 9)
SHIP_RHO = 0.9


def attribute_vectors(mu: np.ndarray, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """{attribute: top-quartile mean mu - bottom-quartile mean mu} (skips constant attributes)."""
    vectors = {}
    for name, value in values.items():
        low, high = np.quantile(value, [0.25, 0.75])
        top, bottom = value >= high, value <= low
        if low == high or not top.any() or not bottom.any() or top.all():
            continue  # no spread: no direction to learn (e.g. an instrument nobody plays)
        vectors[name] = (mu[top].mean(axis=0) - mu[bottom].mean(axis=0)).astype(np.float32)
    return vectors


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho with average ranks for ties (0 when either side is constant)."""
    def ranks(a: np.ndarray) -> np.ndarray:
        order = np.argsort(a, kind="mergesort")
        r = np.empty(len(a))
        r[order] = np.arange(len(a), dtype=float)
        for value in np.unique(a):  # average the ranks of ties
            tie = a == value
            r[tie] = r[tie].mean()
        return r

    rx, ry = ranks(np.asarray(x, float)), ranks(np.asarray(y, float))
    if rx.std() == 0 or ry.std() == 0:
        return 0.0
    return float(np.corrcoef(rx, ry)[0, 1])


@torch.inference_mode()
def decoded_attributes(model, mu: np.ndarray, offset: np.ndarray, alphas: np.ndarray = ALPHAS) -> dict:
    """{attribute: [len(alphas), N]} for mu moved by alpha * offset and decoded greedily."""
    per_alpha: dict[str, list[np.ndarray]] = {name: [] for name in ATTRIBUTES}
    for alpha in alphas:
        z = torch.from_numpy((mu + alpha * offset[None]).astype(np.float32))
        tokens = np.stack([p.to_tokens() for p in model.decode(z, temperature=0.0)])
        for name, value in compute_all(hits_from_tokens(tokens)).items():
            per_alpha[name].append(value)
    return {name: np.stack(v) for name, v in per_alpha.items()}


def summarise(target: str, curves: dict[str, np.ndarray], data_std: dict[str, float],
              alphas: np.ndarray = ALPHAS) -> dict:
    means = {name: c.mean(axis=1) for name, c in curves.items()}
    slopes = {name: float(np.polyfit(alphas, m, 1)[0]) for name, m in means.items()}
    per_groove = [spearman(alphas, curves[target][:, i]) for i in range(curves[target].shape[1])]
    target_effect = abs(slopes[target]) / max(data_std[target], 1e-9)
    others = [abs(slopes[n]) / max(data_std[n], 1e-9) for n in curves if n != target]
    rho = spearman(alphas, means[target])
    return {
        "target": target,
        "rho": round(rho, 3),
        "rho_median_groove": round(float(np.median(per_groove)), 3),
        "change_per_unit": round(slopes[target], 4),
        "entanglement": round(float(np.mean(others)) / max(target_effect, 1e-9), 3),
        "mean_curve": [round(float(v), 4) for v in means[target]],
        "ship": bool(rho >= SHIP_RHO and slopes[target] > 0),
    }


def measure(model, mu: np.ndarray, offset: np.ndarray, target: str, data_std: dict[str, float]) -> dict:
    return summarise(target, decoded_attributes(model, mu, offset), data_std)
