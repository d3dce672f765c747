"""Attribute vectors (MusicVAE paper §5.3) and a measurement of what every latent direction does.

- An attribute vector is mean(mu of the top quartile) - mean(mu of the bottom quartile) of the
  training windows ranked by that attribute (``latent/attributes.py``).  One slider unit adds the whole
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

from musicvae.latent.attributes import ATTRIBUTES, compute_all
from musicvae.latent.directions import Directions, encode_mu
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
        # undefined (None) when the target does not move at all
        "entanglement": round(float(np.mean(others)) / target_effect, 3) if target_effect > 1e-6 else None,
        "mean_curve": [round(float(v), 4) for v in means[target]],
        "ship": bool(rho >= SHIP_RHO and slopes[target] > 0),
    }


def measure(model, mu: np.ndarray, offset: np.ndarray, target: str, data_std: dict[str, float]) -> dict:
    return summarise(target, decoded_attributes(model, mu, offset), data_std)


def add_attribute_directions(directions: Directions, model, train_tokens: np.ndarray, train_mu: np.ndarray,
                             val_tokens: np.ndarray, num_grooves: int = 256, measure_pcs: int = 4,
                             rng: np.random.Generator | None = None, log=print) -> list[dict]:
    """Append the attribute vectors that pass the test to ``directions``; return every measurement.

    ``directions`` holds the principal directions of
    ``train_mu`` (the posterior means of ``train_tokens``); attribute entries are added with
    ``kind="attribute"``, a slider ``label`` and their measured figures, so the app shows them as
    named sliders.  One slider unit = the whole attribute vector.
    """
    rng = rng or np.random.default_rng(0)
    train_hits = hits_from_tokens(train_tokens.astype(np.int64))
    values = compute_all(train_hits)
    vectors = attribute_vectors(train_mu, values)
    data_std = {name: float(v.std()) for name, v in values.items()}
    val = val_tokens[np.sort(rng.choice(len(val_tokens), min(num_grooves, len(val_tokens)), replace=False))]
    val_mu = encode_mu(model, val)
    results = []
    for name, vector in vectors.items():
        result = {"direction": name, "kind": "attribute", "label": ATTRIBUTES[name][0],
                  **measure(model, val_mu, vector, name, data_std)}
        results.append(result)
        log(f"{name}: rho={result['rho']} change/unit={result['change_per_unit']} "
            f"entanglement={result['entanglement']} ship={result['ship']}")
    for index in range(min(measure_pcs, len(directions.entries))):
        offset = directions.scales[index] * directions.vectors[index]
        result = {"direction": directions.entries[index]["name"], "kind": "pca",
                  **measure(model, val_mu, offset, "density", data_std)}
        results.append(result)
        log(f"{result['direction']} vs density: rho={result['rho']} change/unit={result['change_per_unit']}")
    shipped = [r for r in results if r["kind"] == "attribute" and r["ship"]]
    if shipped:
        extra = np.stack([vectors[r["direction"]] for r in shipped])
        norms = np.linalg.norm(extra, axis=1)
        directions.vectors = np.concatenate([directions.vectors, (extra / norms[:, None]).astype(np.float32)])
        directions.scales = np.concatenate([directions.scales, norms.astype(np.float32)])
        for r in shipped:
            directions.entries.append({"name": r["label"], "kind": "attribute", "attribute": r["direction"],
                                       "rho": r["rho"], "change_per_unit": r["change_per_unit"],
                                       "entanglement": r["entanglement"]})
    directions.info["measurements"] = results
    directions.info["measured_on"] = {"split": "validation", "grooves": int(len(val)), "alphas": ALPHAS.tolist(),
                                      "temperature": 0.0}
    return results
