"""Vision Transformer (Dosovitskiy et al. 2021) as big_vision defines it, so its checkpoints load by name
(posemb_cls: vit_jax's variant, whose position embedding also covers the class token):
patches by a strided convolution ("embedding"), learned position embeddings added to the patch
tokens only ("pos_embedding", (1, h * w, D)), then the class token ("cls") prepended; pre-LayerNorm
encoder blocks (LayerNorm eps 1e-6, tanh-approximated GELU as flax's nn.gelu); the final
"encoder_norm"; the class token's output ("tok") or the mean of the patch tokens ("gap") is the
feature vector fed to the "head". ViT-B/16: patch 16, width 768, depth 12, 12 heads, MLP 3072.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from oodjax.models._types import tap


class EncoderBlock(nn.Module):
    heads: int
    mlp_dim: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        y = nn.LayerNorm(epsilon=1e-6)(x)
        y = nn.MultiHeadDotProductAttention(num_heads=self.heads, deterministic=True)(y, y)
        x = x + y
        y = nn.LayerNorm(epsilon=1e-6)(x)
        y = MlpBlock(self.mlp_dim, name="MlpBlock_0")(y)
        return x + y


class MlpBlock(nn.Module):
    mlp_dim: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        y = nn.gelu(nn.Dense(self.mlp_dim)(x), approximate=True)
        return nn.Dense(x.shape[-1])(y)


class Encoder(nn.Module):
    depth: int
    heads: int
    mlp_dim: int

    @nn.compact
    def __call__(self, x: jax.Array, grid: tuple[int, int], prefix: int) -> jax.Array:
        for i in range(self.depth):
            x = EncoderBlock(self.heads, self.mlp_dim, name=f"encoderblock_{i}")(x)
            if (i + 1) % max(self.depth // 4, 1) == 0:  # four maps: the patch tokens as (N, h, w, D)
                tokens = x[:, prefix:].reshape(x.shape[0], *grid, x.shape[-1])
                tapped = tap(self, tokens, (i + 1) // max(self.depth // 4, 1) - 1)
                if tapped is not tokens:  # perturbed (map gradients): the patch tokens carry it on
                    x = x.at[:, prefix:].set(tapped.reshape(x.shape[0], -1, x.shape[-1]))
        return nn.LayerNorm(epsilon=1e-6, name="encoder_norm")(x)


class VisionTransformer(nn.Module):
    num_classes: int
    patch: int = 16
    width: int = 768
    depth: int = 12
    heads: int = 12
    mlp_dim: int = 3072
    pool: str = "tok"  # "tok": the class token's output; "gap": the mean of the patch tokens
    posemb_cls: bool = False  # the position embedding covers the class token too (vit_jax / augreg)

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
        del train  # no dropout, no batch statistics
        if self.pool not in ("tok", "gap"):
            raise ValueError(f"pool must be 'tok' or 'gap', got {self.pool!r}")
        x = nn.Conv(self.width, (self.patch, self.patch), strides=self.patch, padding="VALID", name="embedding")(x)
        n, h, w, d = x.shape
        x = x.reshape(n, h * w, d)
        tokens = h * w + (self.pool == "tok" and self.posemb_cls)
        posemb = self.param("pos_embedding", nn.initializers.normal(0.02), (1, tokens, d), x.dtype)
        if not self.posemb_cls:
            x = x + posemb
        prefix = 0
        if self.pool == "tok":
            cls = self.param("cls", nn.initializers.zeros, (1, 1, d), x.dtype)
            x = jnp.concatenate([jnp.broadcast_to(cls, (n, 1, d)), x], axis=1)
            prefix = 1
        if self.posemb_cls:
            x = x + posemb
        x = Encoder(self.depth, self.heads, self.mlp_dim, name="Transformer")(x, (h, w), prefix)
        features = x[:, 0] if self.pool == "tok" else jnp.mean(x, axis=1)
        return nn.Dense(self.num_classes, name="head", kernel_init=nn.initializers.zeros)(features), features
