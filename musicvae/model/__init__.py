"""The model: the network (``network``), its training objective (``objective``), the fast decode engine (``fast``)."""

from musicvae.model.network import NUM_TOKENS, MusicVAE

__all__ = ["NUM_TOKENS", "MusicVAE"]
