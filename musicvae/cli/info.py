"""``musicvae info``: config details and parameter counts."""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="config details and parameter counts")
    p.add_argument("--config", default="hier-drums_4bar_small")
    p.add_argument("--hparams", default="")
    p.add_argument("--list", action="store_true", help="list registered configs")
    p.set_defaults(run=run)


def run(args) -> int:
    from musicvae.configs import CONFIGS, get_config
    from musicvae.model.groove import build_model

    if args.list:
        for name, config in CONFIGS.items():
            print(f"{name}: {config.description}")
        return 0
    config = get_config(args.config, args.hparams)
    model = build_model(config.hparams)
    total = model.num_parameters()
    extra = sum(p.numel() for n, p in model.named_parameters() if "bias_hh" in n)
    print(json.dumps({"config": config.name, "hparams": config.hparams.to_dict()}, indent=1))
    print(f"parameters: {total:,} ({total - extra:,} with TF's single LSTM bias; "
          f"PyTorch's second LSTM bias adds {extra:,})")
    return 0
