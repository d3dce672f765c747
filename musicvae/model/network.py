"""The MusicVAE network in PyTorch: BiLSTM encoder, flat or hierarchical categorical decoder.

The model knows tensors only: encoder input is the 10-dim roll, decoder tokens are 0..511
(``musicvae/pattern.py`` defines both, and turns tokens into the roll).  Spec references (§2.x)
are to Magenta's MusicVAE (Roberts et al. 2018); what the code does: ``docs/design.md``.  The loss is in
``objective.py``.

Whole sequences (encoder, teacher-forced decoder, conductor) run through ``nn.LSTM``, one
module per layer so that input dropout hits every layer's input as in Magenta.  Autoregressive
decoding steps the same weights by hand: the token input is a row lookup (a one-hot times a
matrix is a gather) and the context part of the input projection is computed once per segment.
PyTorch keeps two LSTM biases, so the parameter count is Magenta's plus 4H per layer/direction.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from musicvae.configs import HParams
from musicvae.pattern import NUM_TOKENS, ROLL_DEPTH

START_TOKEN = NUM_TOKENS  # index of the all-zeros "no previous token" input
State = list[tuple[torch.Tensor, torch.Tensor]]  # per layer (h, c), each [N, H]


class LSTMLayer(nn.Module):
    """One LSTM layer (optionally bidirectional) with TF's initialisation (spec §2.1).

    Whole sequences run through ``nn.LSTM`` (its fused CPU kernel is ~2.6x faster in training
    than a Python loop of cells); single steps for autoregressive decoding use the same weights
    directly.  Gate order is PyTorch's (i, f, g, o); the forget bias +1 lives in ``bias_ih``.
    """

    def __init__(self, input_size: int, hidden_size: int, bidirectional: bool = False) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.lstm = nn.LSTM(input_size, hidden_size, batch_first=True, bidirectional=bidirectional)
        limit = math.sqrt(6.0 / (input_size + hidden_size + 4 * hidden_size))  # glorot on TF's kernel
        for name, param in self.lstm.named_parameters():
            if name.startswith("weight"):
                nn.init.uniform_(param, -limit, limit)
            else:
                nn.init.zeros_(param)
                if name.startswith("bias_ih"):
                    with torch.no_grad():
                        param[hidden_size : 2 * hidden_size] = 1.0  # TF's forget_bias=1.0

    @property
    def weight_ih_t(self) -> torch.Tensor:  # [I, 4H]
        return self.lstm.weight_ih_l0.t()

    @property
    def bias(self) -> torch.Tensor:  # [4H]
        return self.lstm.bias_ih_l0 + self.lstm.bias_hh_l0

    def run(self, x: torch.Tensor, state=None):
        """x [B, T, I] -> outputs [B, T, H (x2)], (h_n, c_n) as nn.LSTM returns them."""
        if state is not None:
            state = (state[0][None].contiguous(), state[1][None].contiguous())
        return self.lstm(x, state)

    def step(self, gates_x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        """One step from a precomputed input projection (incl. both biases) [N, 4H]."""
        h, c = state
        gates = torch.addmm(gates_x, h, self.lstm.weight_hh_l0.t())
        i, f, g, o = gates.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


def _dropout(x: torch.Tensor, keep: float, training: bool) -> torch.Tensor:
    return F.dropout(x, 1.0 - keep, training) if keep < 1.0 and training else x


class Encoder(nn.Module):
    """Stacked bidirectional LSTM; output = [final fw h ; final bw h] -> (mu, sigma) (spec §2.2)."""

    def __init__(self, hp: HParams, input_size: int = ROLL_DEPTH) -> None:
        super().__init__()
        self.keep = hp.dropout_keep_prob
        sizes = [input_size] + [2 * s for s in hp.enc_rnn_size[:-1]]
        self.layers = nn.ModuleList(LSTMLayer(i, s, bidirectional=True) for i, s in zip(sizes, hp.enc_rnn_size))
        self.mu = nn.Linear(2 * hp.enc_rnn_size[-1], hp.z_size)
        self.sigma = nn.Linear(2 * hp.enc_rnn_size[-1], hp.z_size)
        for dense in (self.mu, self.sigma):
            nn.init.normal_(dense.weight, std=0.001)
            nn.init.zeros_(dense.bias)

    def forward(self, roll: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = roll
        for layer in self.layers:  # stacked: layer k+1 reads [fw_k ; bw_k]
            x, (h_n, _) = layer.run(_dropout(x, self.keep, self.training))
        encoding = torch.cat([h_n[0], h_n[1]], dim=-1)  # fw after t=T-1, bw after t=0
        return self.mu(encoding), F.softplus(self.sigma(encoding))


class StackedLSTM(nn.Module):
    """LSTM layers whose initial state comes from ``tanh(Dense(context))`` (spec §2.3)."""

    def __init__(self, input_size: int, sizes: tuple[int, ...], context_size: int) -> None:
        super().__init__()
        inputs = [input_size] + list(sizes[:-1])
        self.layers = nn.ModuleList(LSTMLayer(i, s) for i, s in zip(inputs, sizes))
        self.initial_state = nn.Linear(context_size, 2 * sum(sizes))
        nn.init.normal_(self.initial_state.weight, std=0.001)
        nn.init.zeros_(self.initial_state.bias)

    def init_state(self, context: torch.Tensor) -> State:
        flat = torch.tanh(self.initial_state(context))
        state, offset = [], 0
        for layer in self.layers:  # TF flattens MultiRNNCell state as [c1, h1, c2, h2, ...]
            size = layer.hidden_size
            c, h = flat[:, offset : offset + size], flat[:, offset + size : offset + 2 * size]
            state.append((h, c))
            offset += 2 * size
        return state


class CategoricalDecoder(nn.Module):
    """LSTM over 512-way drum tokens; input at each step = [previous token one-hot ; context]."""

    def __init__(self, hp: HParams, context_size: int) -> None:
        super().__init__()
        self.keep = hp.dropout_keep_prob
        self.token_dropout = hp.token_dropout
        self.rnn = StackedLSTM(NUM_TOKENS + context_size, hp.dec_rnn_size, context_size)
        self.output = nn.Linear(hp.dec_rnn_size[-1], NUM_TOKENS)

    def _token_table(self) -> torch.Tensor:
        """Rows of the first layer's input weights per token (a one-hot times W is a gather)."""
        w = self.rnn.layers[0].weight_ih_t
        return torch.cat([w[:NUM_TOKENS], w.new_zeros(1, w.shape[1])])  # START_TOKEN -> zeros

    def _context_gates(self, context: torch.Tensor) -> torch.Tensor:
        first = self.rnn.layers[0]
        return context @ first.weight_ih_t[NUM_TOKENS:] + first.bias

    def _drop_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.training and self.token_dropout > 0:
            drop = torch.rand(tokens.shape, device=tokens.device) < self.token_dropout
            tokens = torch.where(drop, torch.full_like(tokens, START_TOKEN), tokens)
        return tokens

    def forward(self, context: torch.Tensor, prev_tokens: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: context [N, C], prev_tokens [N, T] -> logits [N, T, 512]."""
        prev_tokens = self._drop_tokens(prev_tokens)
        one_hot = F.one_hot(prev_tokens, NUM_TOKENS + 1)[..., :NUM_TOKENS].to(context.dtype)
        x = torch.cat([one_hot, context[:, None].expand(-1, prev_tokens.shape[1], -1)], dim=-1)
        state = self.rnn.init_state(context)
        for layer, layer_state in zip(self.rnn.layers, state):
            x, _ = layer.run(_dropout(x, self.keep, self.training), layer_state)  # input dropout per layer
        return self.output(x)

    def free_run(
        self,
        context: torch.Tensor,
        steps: int,
        first_token: torch.Tensor,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        teacher_tokens: torch.Tensor | None = None,
        sampling_prob: float = 1.0,
        logit_bias: torch.Tensor | None = None,
        logit_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Step by step, feeding back own samples (or, with probability 1-p, teacher tokens).

        Returns (logits [N, steps, 512], sampled tokens [N, steps]).  temperature 0 = argmax.
        ``logit_bias`` [N, steps, 512] is added to each step's logits before sampling (a groove's
        anchor, ``musicvae.model.anchor``); the logits returned include it.  ``logit_mask`` [512] or
        [N, 512] (0 / -inf) is added after it.
        """
        table = self._token_table()
        context_gates = self._context_gates(context)  # constant over the segment: computed once
        state = self.rnn.init_state(context)
        token = first_token
        all_logits, all_tokens = [], []
        for t in range(steps):
            gates = table[token] + context_gates
            for index, layer in enumerate(self.rnn.layers):
                if index > 0:
                    gates = torch.addmm(layer.bias, state[index - 1][0], layer.weight_ih_t)
                state[index] = layer.step(gates, state[index])
            logits = self.output(state[-1][0])
            if logit_bias is not None:  # the anchor term: kept apart from the network's own logits
                logits = logits + logit_bias[:, t]
            if logit_mask is not None:  # after any other bias on the logits: nothing unplayable is chosen
                logits = logits + logit_mask
            sampled = sample_logits(logits, temperature, generator)
            if teacher_tokens is not None and sampling_prob < 1.0:
                use_sample = torch.rand(sampled.shape, generator=generator, device=sampled.device) < sampling_prob
                token = torch.where(use_sample, sampled, teacher_tokens[:, t])
            else:
                token = sampled
            all_logits.append(logits)
            all_tokens.append(sampled)
        return torch.stack(all_logits, 1), torch.stack(all_tokens, 1)


def sample_logits(logits: torch.Tensor, temperature: float, generator: torch.Generator | None = None) -> torch.Tensor:
    if temperature <= 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits / temperature, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def shift_right(tokens: torch.Tensor) -> torch.Tensor:
    start = torch.full_like(tokens[:, :1], START_TOKEN)
    return torch.cat([start, tokens[:, :-1]], dim=1)


class MusicVAE(nn.Module):
    """Encoder + decoder.  ``hparams.decoder`` picks the flat or hierarchical decoder.

    Subclasses change what is read and written (``input_depth`` and :meth:`make_core`): the groove
    model (``groove.py``) keeps this encoder and conductor and swaps the core decoder."""

    input_depth = ROLL_DEPTH

    def __init__(self, hp: HParams) -> None:
        super().__init__()
        hp.validate()
        self.hp = hp
        self.encoder = Encoder(hp, self.input_depth)
        self.hierarchical = hp.decoder == "hierarchical"
        if self.hierarchical:
            # Conductor: input is a zero scalar per bar (disable_autoregression), state from z.
            self.conductor = StackedLSTM(1, hp.dec_rnn_size, hp.z_size)
            if hp.conductor_init == "glorot":  # documented deviation: z reaches the bars from step 0
                nn.init.xavier_uniform_(self.conductor.initial_state.weight)
            self.core = self.make_core(hp, context_size=hp.dec_rnn_size[-1])
            self.num_segments, self.segment_length = hp.level_lengths
        else:
            self.core = self.make_core(hp, context_size=hp.z_size)
            self.num_segments, self.segment_length = 1, hp.max_seq_len

    def make_core(self, hp: HParams, context_size: int) -> nn.Module:
        return CategoricalDecoder(hp, context_size)

    # -- pieces -----------------------------------------------------------------------
    def encode(self, roll: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(roll)

    def contexts(self, z: torch.Tensor) -> torch.Tensor:
        """The per-segment contexts the core decoder sees: [B, U, C] (z itself when flat)."""
        if not self.hierarchical:
            return z[:, None]
        state = self.conductor.init_state(z)
        x = z.new_zeros(z.shape[0], self.num_segments, 1)  # a zero scalar per bar
        for layer, layer_state in zip(self.conductor.layers, state):
            x, _ = layer.run(_dropout(x, self.hp.dropout_keep_prob, self.training), layer_state)
        return x

    def decode_logits(self, z: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits [B, T, 512] for target tokens [B, T]."""
        batch = z.shape[0]
        ctx = self.contexts(z)
        prev = shift_right(tokens).reshape(batch * self.num_segments, self.segment_length)
        logits = self.core(ctx.reshape(batch * self.num_segments, -1), prev)
        return logits.reshape(batch, -1, NUM_TOKENS)

    def free_run(
        self,
        z: torch.Tensor,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        teacher_tokens: torch.Tensor | None = None,
        sampling_prob: float = 1.0,
        logit_bias: torch.Tensor | None = None,
        logit_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Autoregressive decode: (logits [B, T, 512], tokens [B, T]).

        Segment u starts from the last token of segment u-1: sampled, or the ground truth when
        teacher tokens are given and the coin says so (scheduled sampling, spec §2.3/§2.4).
        ``logit_bias`` [B, T, 512]: added to every step's logits (an anchor's weighted bias).
        ``logit_mask`` [512] or [B, 512], 0 or -inf, is added after it: tokens at -inf are never chosen
        (playable decoding, ``musicvae.evaluation.playability.playable_logit_mask``).
        """
        ctx = self.contexts(z)
        token = torch.full((z.shape[0],), START_TOKEN, dtype=torch.long, device=z.device)
        logits, tokens = [], []
        for u in range(self.num_segments):
            span = slice(u * self.segment_length, (u + 1) * self.segment_length)
            teacher = None if teacher_tokens is None else teacher_tokens[:, span]
            bias = None if logit_bias is None else logit_bias[:, span]
            seg_logits, seg_tokens = self.core.free_run(
                ctx[:, u], self.segment_length, token, temperature, generator, teacher, sampling_prob, bias,
                logit_mask,
            )
            logits.append(seg_logits)
            tokens.append(seg_tokens)
            token = seg_tokens[:, -1] if teacher is None or sampling_prob >= 1.0 else teacher[:, -1]
        return torch.cat(logits, 1), torch.cat(tokens, 1)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
