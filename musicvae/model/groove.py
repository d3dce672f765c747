"""The groove model (GrooVAE, spec §1.3 and §2.5) on our encoder and hierarchical decoder.

It reads and writes groove frames, [B, T, 27] per window: 9 hits, 9 velocities (0-1) and 9
offsets (-1..1), laid out as ``musicvae.pattern.groove_from_grids`` makes them; like the
categorical model it knows tensors only.

- The encoder is the categorical model's BiLSTM on the 27-dim frames.  With
  ``groove_input="humanize"`` it sees the hits only (velocities and offsets zeroed), so the
  decoder has to play a quantized groove the way a drummer would.
- The core decoder reads the previous frame, this step's hits when ``hits_as_controls`` is on
  (the decoder then never has to guess which cells are hit: a humanized groove keeps its notes),
  and its context (z, or the conductor's output per bar).  Its 27 outputs are hit logits,
  velocities through a sigmoid and offsets through a tanh; with controls, velocities and offsets
  are multiplied by the given hits, so a silent cell is exactly 0 (its target) and the loss is
  spent on the hits that sound.
- Autoregressive decoding feeds back the sampled hits and the predicted velocities and offsets,
  zeroed where no hit was sampled: training frames are zero there too, so the decoder never sees
  an input it was not trained on.  Temperature touches the hits only (spec §2.5).
"""

from __future__ import annotations

import torch
from torch import nn

from musicvae.configs import HParams
from musicvae.model.network import MusicVAE, StackedLSTM, _dropout
from musicvae.pattern import GROOVE_DEPTH, NUM_CLASSES

HITS = slice(0, NUM_CLASSES)
VELOCITIES = slice(NUM_CLASSES, 2 * NUM_CLASSES)
OFFSETS = slice(2 * NUM_CLASSES, 3 * NUM_CLASSES)


def split_outputs(outputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Raw decoder outputs [..., 27] -> (hit logits, velocities 0..1, offsets -1..1)."""
    return outputs[..., HITS], torch.sigmoid(outputs[..., VELOCITIES]), torch.tanh(outputs[..., OFFSETS])


class GrooveDecoder(nn.Module):
    """LSTM over groove frames; input per step = [previous frame ; this step's hits (controls) ; context]."""

    def __init__(self, hp: HParams, context_size: int) -> None:
        super().__init__()
        self.keep = hp.dropout_keep_prob
        self.control_size = NUM_CLASSES if hp.hits_as_controls else 0
        self.hits_feedback = hp.groove_feedback == "hits"
        self.rnn = StackedLSTM(GROOVE_DEPTH + self.control_size + context_size, hp.dec_rnn_size, context_size)
        self.output = nn.Linear(hp.dec_rnn_size[-1], GROOVE_DEPTH)

    def _inputs(self, context: torch.Tensor, frames: torch.Tensor, controls: torch.Tensor | None,
                keep: float = 1.0) -> torch.Tensor:
        """[frame ; controls ; context], input dropout on the frame and the context only: the controls are
        the groove to play, not a feature to be robust to (dropping them taught the model to hedge on
        whether a cell is hit, measured: 2.3% of cells wrong and velocities shrunk toward 0)."""
        if self.hits_feedback:  # the previous step's velocities and offsets are not read back
            frames = torch.cat([frames[..., :NUM_CLASSES], torch.zeros_like(frames[..., NUM_CLASSES:])], dim=-1)
        steps = frames.shape[1] if frames.dim() == 3 else None
        ctx = context if steps is None else context[:, None].expand(-1, steps, -1)
        dropped = _dropout(torch.cat([frames, ctx.to(frames.dtype)], dim=-1), keep, self.training)
        if not self.control_size:
            return dropped
        return torch.cat([dropped[..., :GROOVE_DEPTH], controls.to(frames.dtype), dropped[..., GROOVE_DEPTH:]], -1)

    def forward(self, context: torch.Tensor, prev_frames: torch.Tensor,
                controls: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher forcing: context [N, C], previous frames [N, T, 27] (+ hits [N, T, 9]) -> outputs [N, T, 27]."""
        x = self._inputs(context, prev_frames, controls, self.keep)
        state = self.rnn.init_state(context)
        for index, (layer, layer_state) in enumerate(zip(self.rnn.layers, state)):
            x, _ = layer.run(x if index == 0 else _dropout(x, self.keep, self.training), layer_state)
        return self.output(x)

    def free_run(self, context: torch.Tensor, steps: int, first_frame: torch.Tensor, temperature: float = 1.0,
                 generator: torch.Generator | None = None,
                 controls: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Step by step: (outputs [N, steps, 27], frames [N, steps, 27]).

        The hits are this step's controls when given, else sampled (temperature 0 = the likelier side).
        """
        state = self.rnn.init_state(context)
        frame = first_frame
        outputs, frames = [], []
        for t in range(steps):
            x = self._inputs(context, frame, None if controls is None else controls[:, t])
            for index, layer in enumerate(self.rnn.layers):
                gates = torch.addmm(layer.bias, x, layer.weight_ih_t)
                state[index] = layer.step(gates, state[index])
                x = state[index][0]
            out = self.output(x)
            logits, velocities, offsets = split_outputs(out)
            if controls is not None:
                hits = controls[:, t]
            elif temperature <= 0:
                hits = (logits > 0).to(out.dtype)
            else:
                probs = torch.sigmoid(logits / temperature)
                hits = (torch.rand(probs.shape, generator=generator, device=probs.device) < probs).to(out.dtype)
            frame = torch.cat([hits, velocities * hits, offsets * hits], dim=-1)
            outputs.append(out)
            frames.append(frame)
        return torch.stack(outputs, 1), torch.stack(frames, 1)


class GrooveVAE(MusicVAE):
    """MusicVAE's encoder and conductor with the groove core decoder (see the module doc)."""

    input_depth = GROOVE_DEPTH

    def make_core(self, hp: HParams, context_size: int) -> nn.Module:
        return GrooveDecoder(hp, context_size)

    def encoder_input(self, frames: torch.Tensor) -> torch.Tensor:
        """What the encoder reads of a groove: all of it, or (humanize) its hits alone."""
        if self.hp.groove_input == "humanize":
            return torch.cat([frames[..., HITS], torch.zeros_like(frames[..., NUM_CLASSES:])], dim=-1)
        return frames

    def controls(self, frames: torch.Tensor) -> torch.Tensor | None:
        return frames[..., HITS] if self.hp.hits_as_controls else None

    def encode_frames(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encode(self.encoder_input(frames))

    def decode_outputs(self, z: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """Teacher-forced raw outputs [B, T, 27] for target frames [B, T, 27]."""
        batch, u, length = z.shape[0], self.num_segments, self.segment_length
        ctx = self.contexts(z).reshape(batch * u, -1)
        prev = torch.cat([torch.zeros_like(frames[:, :1]), frames[:, :-1]], dim=1)  # bar u starts from bar u-1's end
        controls = self.controls(frames)
        if controls is not None:
            controls = controls.reshape(batch * u, length, NUM_CLASSES)
        out = self.core(ctx, prev.reshape(batch * u, length, GROOVE_DEPTH), controls)
        return out.reshape(batch, -1, GROOVE_DEPTH)

    def free_run_frames(self, z: torch.Tensor, temperature: float = 1.0, generator: torch.Generator | None = None,
                        hits: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Autoregressive decode: (outputs [B, T, 27], frames [B, T, 27]); ``hits`` [B, T, 9] are the
        controls of a ``hits_as_controls`` model (required there)."""
        if self.hp.hits_as_controls and hits is None:
            raise ValueError("this groove model plays given hits: pass hits [B, T, 9]")
        ctx = self.contexts(z)
        frame = z.new_zeros(z.shape[0], GROOVE_DEPTH)
        outputs, frames = [], []
        for u in range(self.num_segments):
            span = slice(u * self.segment_length, (u + 1) * self.segment_length)
            controls = hits[:, span] if self.hp.hits_as_controls else None
            out, seg = self.core.free_run(ctx[:, u], self.segment_length, frame, temperature, generator, controls)
            outputs.append(out)
            frames.append(seg)
            frame = seg[:, -1]
        return torch.cat(outputs, 1), torch.cat(frames, 1)


def build_model(hp: HParams) -> MusicVAE:
    """The network a config describes: the categorical MusicVAE or the groove model."""
    return GrooveVAE(hp) if hp.output == "groove" else MusicVAE(hp)
