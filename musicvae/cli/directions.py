"""``musicvae directions``: latent directions (PCA + measured attribute vectors) for a checkpoint
(``musicvae.latent``)."""

from __future__ import annotations

from pathlib import Path

from musicvae.cli.common import positive_int


def add_parser(sub) -> None:
    p = sub.add_parser("directions", help="latent directions (PCA + measured attribute vectors) for a checkpoint")
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--examples_path", type=Path, default=Path("data/gmd"), help="a `musicvae prepare` output folder")
    p.add_argument("--num_directions", type=positive_int, default=16, help="principal directions kept")
    p.add_argument("--max_windows", type=positive_int, default=8192, help="train windows encoded")
    p.add_argument("--num_grooves", type=positive_int, default=256, help="validation grooves for the measurement")
    p.add_argument("--no_attributes", action="store_true", help="principal directions only, no measurement")
    p.set_defaults(run=run)


def run(args) -> int:
    """``musicvae directions --checkpoint DIR [--examples_path data/gmd] [--num_directions 16]``."""
    import numpy as np

    from musicvae.api import TrainedModel
    from musicvae.data.storage import fingerprint, load_split
    from musicvae.latent.directions import VECTORS_FILE, directions_from_mu, encode_mu, save_directions, training_subset
    from musicvae.latent.steering import add_attribute_directions
    from musicvae.training.checkpoint import resolve_model_dir

    folder = resolve_model_dir(args.checkpoint)
    model = TrainedModel.load(folder)
    rng = np.random.default_rng(0)  # one stream: the train subset, then the measured validation grooves
    tokens = training_subset(load_split(args.examples_path, "train").tokens, args.max_windows, rng)
    mu = encode_mu(model, tokens)  # encoded once: the PCA and the attribute vectors share it
    directions = directions_from_mu(mu, tokens, args.num_directions)
    directions.info.update({"config": model.name, "step": model.meta.get("step"),
                            "data_fingerprint": fingerprint(args.examples_path), "split": "train"})
    if not getattr(args, "no_attributes", False):  # named attribute sliders, measured (latent/steering.py)
        validation = load_split(args.examples_path, "validation").tokens
        add_attribute_directions(directions, model, tokens, mu, validation, args.num_grooves, rng=rng)
    save_directions(folder, directions)
    shares = ", ".join(f"{e['name']} {100 * e['explained_variance']:.1f}%" for e in directions.entries[:5])
    print(f"{folder / VECTORS_FILE}: {len(directions.entries)} directions from {directions.info['windows']} "
          f"train windows ({shares}, ...)")
    return 0
