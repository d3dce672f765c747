"""Named model configs: plain data in a registry, overridable with ``--hparams=k=v,...``.

Values follow Magenta's ``configs.py`` and the spec (§2.7, §3).  A checkpoint stores the
config name and the full hparams dict, so a checkpoint folder alone rebuilds its model.
"""

from __future__ import annotations

import ast
import dataclasses
from dataclasses import dataclass, field


@dataclass(frozen=True)
class HParams:
    # data / representation
    max_seq_len: int = 64
    slice_bars: int = 4
    # model
    decoder: str = "hierarchical"  # "hierarchical" | "flat"
    # what the model reads and writes: "categorical" (512-way tokens, Magenta's DrumsConverter) or
    # "groove" (hits, velocities and offsets, Magenta's GrooVAE; musicvae/model/groove.py)
    output: str = "categorical"
    groove_input: str = "full"  # groove only: "full" or "humanize" (the encoder sees the hits only)
    hits_as_controls: bool = False  # groove only: every decoder step also reads that step's hits (spec §1.3)
    # groove only: what of the previous step the decoder reads back: "full" (hits, velocities, offsets: GrooVAE)
    # or "hits" (velocities and offsets not fed back: teacher forcing then equals free running, no exposure bias)
    groove_feedback: str = "full"
    z_size: int = 256
    enc_rnn_size: tuple[int, ...] = (512,)
    dec_rnn_size: tuple[int, ...] = (256, 256)
    level_lengths: tuple[int, ...] = (4, 16)
    disable_autoregression: bool = True
    dropout_keep_prob: float = 1.0
    token_dropout: float = 0.0  # "word dropout": chance a decoder input token is replaced by zeros
    # objective
    free_bits: float = 48.0
    max_beta: float = 0.2
    beta_rate: float = 0.0
    # optimisation
    batch_size: int = 512
    learning_rate: float = 1e-3
    decay_rate: float = 0.9999
    min_learning_rate: float = 1e-5
    grad_clip: float = 1.0
    grad_norm_clip_to_zero: float = 10000.0
    # scheduled sampling (spec §2.3)
    sampling_schedule: str = "constant"  # constant | inverse_sigmoid | exponential
    sampling_rate: float = 0.0
    # generalisation recipe (all off in Magenta's reference configs; see musicvae/training/augment.py)
    aug_layer_mix: float = 0.0
    aug_timekeeper_swap: float = 0.0
    aug_tom_permute: float = 0.0
    aug_crash_ride_swap: float = 0.0
    aug_bar_recombine: float = 0.0
    denoise_prob: float = 0.0  # share of windows whose encoder input is corrupted
    denoise_drop: float = 0.1
    denoise_add: float = 0.005
    denoise_shift: float = 0.05
    weight_decay: float = 0.0  # decoupled (AdamW); 0 = Adam as Magenta
    lr_schedule: str = "exponential"  # exponential (Magenta) | cosine (to min_learning_rate at lr_total_steps)
    lr_total_steps: int = 0
    warmup_steps: int = 0
    # Deviation from the spec: "glorot" initialises the z -> conductor-state layer with Glorot
    # instead of N(0, 0.001^2), so the hierarchical decoder hears z from the first step.
    conductor_init: str = "spec"  # spec | glorot

    def replace(self, **changes) -> HParams:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict) -> HParams:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown hparams: {', '.join(sorted(unknown))}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

    def validate(self) -> None:
        if self.decoder not in ("hierarchical", "flat"):
            raise ValueError(f"decoder must be 'hierarchical' or 'flat', not {self.decoder!r}")
        if self.output not in ("categorical", "groove"):
            raise ValueError(f"output must be 'categorical' or 'groove', not {self.output!r}")
        if self.groove_feedback not in ("full", "hits"):
            raise ValueError(f"groove_feedback must be 'full' or 'hits', not {self.groove_feedback!r}")
        if self.groove_input not in ("full", "humanize"):
            raise ValueError(f"groove_input must be 'full' or 'humanize', not {self.groove_input!r}")
        if self.output == "groove" and (self.denoise_prob > 0 or self.token_dropout > 0
                                        or self.sampling_schedule != "constant" or self.sampling_rate > 0):
            raise ValueError("groove models train teacher-forced without denoising or token dropout")
        if self.max_seq_len != self.slice_bars * 16:
            raise ValueError("max_seq_len must equal slice_bars * 16")
        if self.decoder == "hierarchical":
            product = 1
            for length in self.level_lengths:
                product *= length
            if product != self.max_seq_len or len(self.level_lengths) != 2:
                raise ValueError("level_lengths must be two numbers whose product is max_seq_len")
        if not 0.0 < self.dropout_keep_prob <= 1.0:
            raise ValueError("dropout_keep_prob must be in (0, 1]")
        if self.lr_schedule not in ("exponential", "cosine"):
            raise ValueError(f"lr_schedule must be 'exponential' or 'cosine', not {self.lr_schedule!r}")
        if self.lr_schedule == "cosine" and self.lr_total_steps <= 0:
            raise ValueError("lr_schedule=cosine needs lr_total_steps > 0")
        if self.conductor_init not in ("spec", "glorot"):
            raise ValueError(f"conductor_init must be 'spec' or 'glorot', not {self.conductor_init!r}")
        probabilities = ("aug_layer_mix", "aug_timekeeper_swap", "aug_tom_permute", "aug_crash_ride_swap",
                         "aug_bar_recombine", "denoise_prob", "denoise_drop", "denoise_add", "denoise_shift")
        for name in probabilities:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} is a probability: it must be in [0, 1]")


@dataclass(frozen=True)
class Config:
    name: str
    hparams: HParams
    description: str = ""
    notes: dict = field(default_factory=dict)


_HIER_4BAR = HParams()
# The generalisation recipe (issue 14; docs/models.md): the augmentations that raised validation
# reconstruction in the equal-wall-time ablations, input dropout and decoupled weight decay, and a
# cosine schedule sized for a CPU budget. batch 64 trades batch size for 8x more updates per hour.
_GENERALISE = _HIER_4BAR.replace(
    batch_size=64, aug_layer_mix=0.5, aug_timekeeper_swap=0.2, aug_tom_permute=0.3, aug_crash_ride_swap=0.1,
    aug_bar_recombine=0.25, dropout_keep_prob=0.8, weight_decay=0.01, lr_schedule="cosine",
    learning_rate=5e-4, warmup_steps=100, lr_total_steps=5000,
)
# GrooVAE (spec §2.5, §3) with our hierarchical decoder and the generalisation recipe above, as data:
# velocities and offsets ride along with the hits through every augmentation (training/augment.py).
_GROOVE = _GENERALISE.replace(output="groove", lr_total_steps=6000)
CONFIGS: dict[str, Config] = {
    c.name: c
    for c in [
        Config(
            "hier-drums_4bar_small",
            _HIER_4BAR,
            "Hierarchical 4-bar drum VAE (conductor over 4 bars of 16 steps); low KL, for sampling.",
        ),
        Config(
            "hier-drums_4bar_small_hikl",
            _HIER_4BAR.replace(free_bits=256.0),
            "Same architecture with 256 free bits: uses z more, for encoding and interpolation.",
        ),
        Config(
            "hier-drums_4bar_small_aug",
            _GENERALISE.replace(token_dropout=0.25),
            "hier-drums_4bar_small (free bits 48, beta 0.2) trained with the generalisation recipe: "
            "augmentation, dropout, weight decay, a cosine schedule; for sampling.",
        ),
        Config(
            "hier-drums_4bar_small_hikl_aug",
            _GENERALISE.replace(token_dropout=0.5, free_bits=256.0),
            "hier-drums_4bar_small_hikl (256 free bits) trained with the generalisation recipe; for encoding "
            "and interpolation.",
        ),
        Config(
            "cat-drums_4bar_small",
            _HIER_4BAR.replace(decoder="flat"),
            "Flat 4-bar categorical decoder with the same widths: the baseline the hierarchy must beat.",
        ),
        Config(
            "cat-drums_2bar_small",
            HParams(
                max_seq_len=32,
                slice_bars=2,
                decoder="flat",
                sampling_schedule="inverse_sigmoid",
                sampling_rate=1000.0,
            ),
            "Magenta's 2-bar categorical drum VAE.",
        ),
        Config(
            "groovae-hier_4bar_humanize",
            _GROOVE.replace(groove_input="humanize", hits_as_controls=True),
            "Hierarchical 4-bar groove VAE for humanizing: reads a quantized groove (hits only), plays it back "
            "with velocities and microtiming; the decoder reads each step's hits, so no hit is added or lost.",
        ),
        Config(
            "groovae-hier_4bar_humanize_hitsfb",
            _GROOVE.replace(groove_input="humanize", hits_as_controls=True, groove_feedback="hits"),
            "groovae-hier_4bar_humanize whose decoder reads back only the hits of the previous step, not its own "
            "velocities and offsets (trains exactly what inference does).",
        ),
        Config(
            "groovae-hier_4bar",
            _GROOVE,
            "Hierarchical 4-bar groove VAE: encodes and samples hits, velocities and offsets together.",
        ),
        Config(
            "groovae_4bar_humanize",
            _GROOVE.replace(groove_input="humanize", hits_as_controls=True, decoder="flat"),
            "The flat-decoder twin of groovae-hier_4bar_humanize: the baseline the hierarchy must beat.",
        ),
        Config(
            "tiny-groovae_4bar_humanize",
            _HIER_4BAR.replace(output="groove", groove_input="humanize", hits_as_controls=True, z_size=16,
                               enc_rnn_size=(32,), dec_rnn_size=(32,), batch_size=8, free_bits=0.0),
            "A tiny humanize model for tests and smoke runs.",
        ),
        Config(
            "tiny-hier-drums_4bar",
            _HIER_4BAR.replace(z_size=16, enc_rnn_size=(32,), dec_rnn_size=(32,), batch_size=8, free_bits=0.0),
            "A tiny model for tests and smoke runs.",
        ),
    ]
}


def parse_hparams(text: str) -> dict:
    """'a=1,b=[2,3],c=flat' -> {'a': 1, 'b': [2, 3], 'c': 'flat'} (lists may contain commas)."""
    result: dict = {}
    if not text:
        return result
    parts: list[str] = []
    depth = 0
    current = ""
    for char in text:
        depth += char in "[("
        depth -= char in "])"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    for part in filter(None, (p.strip() for p in parts)):
        if "=" not in part:
            raise ValueError(f"hparam override {part!r} is not key=value")
        key, raw = (s.strip() for s in part.split("=", 1))
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw  # a bare word such as flat or inverse_sigmoid
        result[key] = value
    return result


def get_config(name: str, overrides: str | dict | None = None) -> Config:
    if name not in CONFIGS:
        raise ValueError(f"unknown config {name!r}; choose one of: {', '.join(CONFIGS)}")
    config = CONFIGS[name]
    changes = parse_hparams(overrides) if isinstance(overrides, str) else dict(overrides or {})
    if changes:
        merged = {**config.hparams.to_dict(), **changes}
        if "slice_bars" in changes and "max_seq_len" not in changes:
            merged["max_seq_len"] = merged["slice_bars"] * 16
        config = dataclasses.replace(config, hparams=HParams.from_dict(merged))
    config.hparams.validate()
    return config
