"""Head variants of the training-time detectors of paper 001 on any registered backbone.

`models.get(name, ..., head="binc" | "vib" | "viby")` puts one of these on the backbone's
penultimate features (the backbone's own final dense layer is left unused). Each returns
(logits, features) like every model and sows the extra outputs its objective and scorers read.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp


def gaussian_kl(mean: jax.Array, std: jax.Array, prior_mean: jax.Array, prior_std: jax.Array) -> jax.Array:
    """KL(N(mean, diag std^2) || N(prior_mean, diag prior_std^2)) for every input and prior.

    mean, std: (N, Z); prior_mean, prior_std: (K, Z). Returns (N, K):
    sum_d log(s_d / sigma_d) + (sigma_d^2 + (mu_d - m_d)^2) / (2 s_d^2) - 1/2.
    """
    mu, sigma = mean[:, None, :], std[:, None, :]
    m, s = prior_mean[None, :, :], prior_std[None, :, :]
    return jnp.sum(jnp.log(s) - jnp.log(sigma) + (sigma**2 + (mu - m) ** 2) / (2.0 * s**2) - 0.5, axis=-1)


class WithHead(nn.Module):
    """backbone(x) -> its penultimate features -> head(features) -> (logits, features)."""

    backbone: nn.Module
    head: nn.Module

    def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
        _, features = self.backbone(x, train)
        return self.head(features, train)


class TwoHeads(nn.Module):
    """BINC (paper 001, eq. 4): a z-dim linear output space and two independent linear heads from
    it, softmax logits (returned) and binary (sigmoid) logits (sown as extra "binary_logits").
    The features are the z-dim output."""

    num_classes: int
    z: int = 64

    @nn.compact
    def __call__(self, features: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
        out = nn.Dense(self.z, name="output")(features)
        self.sow("extras", "binary_logits", nn.Dense(self.num_classes, name="binary")(out))
        return nn.Dense(self.num_classes, name="classifier")(out), out


class VIBHead(nn.Module):
    """Variational information bottleneck (Alemi et al. 2016; paper 001 eq. 5-7).

    encoder: features -> N(mu, diag sigma^2) over R^z, sigma = softplus(. - 5) (Alemi et al.);
    classifier: a draw z ~ N(mu, sigma^2) in training ("sample" rng), z = mu in evaluation.
    A learned diagonal Gaussian prior (one; or one per class with class_priors: VIBY).
    Sows the (N, K) KL(N(mu, sigma^2) || prior_k) for each of the K priors: "kl" (K = 1) or
    "class_kl" (K = C, class_priors). Features: mu.
    """

    num_classes: int
    z: int = 64
    class_priors: bool = False

    @nn.compact
    def __call__(self, features: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
        stats = nn.Dense(2 * self.z, name="encoder")(features)
        mu, sigma = stats[:, : self.z], nn.softplus(stats[:, self.z :] - 5.0)
        code = mu + sigma * jax.random.normal(self.make_rng("sample"), mu.shape) if train else mu
        k = self.num_classes if self.class_priors else 1
        prior_mean = self.param("prior_mean", nn.initializers.zeros, (k, self.z))
        prior_log_std = self.param("prior_log_std", nn.initializers.zeros, (k, self.z))
        self.sow("extras", "class_kl" if self.class_priors else "kl", gaussian_kl(mu, sigma, prior_mean, jnp.exp(prior_log_std)))
        return nn.Dense(self.num_classes, name="classifier")(code), mu


# head name -> (num_classes, **kwargs) -> module; the classifier layer is params["head"]["classifier"].
HEADS: dict[str, Callable[..., nn.Module]] = {
    "binc": lambda num_classes, z=64: TwoHeads(num_classes, z),
    "vib": lambda num_classes, z=64: VIBHead(num_classes, z),
    "viby": lambda num_classes, z=64: VIBHead(num_classes, z, class_priors=True),
}
# head name -> the extra named outputs it sows (what the model provides as extras:<name>).
HEAD_EXTRAS: dict[str, tuple[str, ...]] = {"binc": ("binary_logits",), "vib": ("kl",), "viby": ("class_kl",)}
