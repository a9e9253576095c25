"""The scorer contract: every registered scorer runs with only its declared needs present, and each
data need it declares is really read (without it, fit / tune / score fail). So `needs` cannot lie."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from oodjax import models, scores
from oodjax import types as T
from oodjax.evaluate import ALWAYS
from oodjax.models import from_flax
from oodjax.models._types import tap
from oodjax.types import FitData, ModelOutputs, Predict, restrict

C, N = 4, 48
SMALL = {"temperatures": (1.0, 2.0), "epsilons": (0.0, 0.001), "tune_size": 24}
HYPER = {"knn": {"k": 5}, "nnguide": {"k": 5}, "odin": SMALL, "grodin_g": SMALL, "grodin_sg": SMALL,
         "flow": {"steps": 5, "hidden": 8, "num_layers": 2}}
FLAGS = {T.WEIGHTS}  # capabilities of the model, not data: nothing to remove
# Every registered scorer with its test hyper-parameters, and variants that declare other needs.
CASES = [(name, HYPER.get(name, {})) for name in scores.names()] + [
    ("nac_ue", {"layers": [scores.NacLayer(None, 1.0, 10, 2.0), scores.NacLayer(0, 0.1, 10, 2.0)], "build_size": N}),
]
IDS = [name + ("-variant" if i >= len(scores.names()) else "") for i, (name, _) in enumerate(CASES)]


class TinyNet(nn.Module):
    @nn.compact
    def __call__(self, x, train=False):
        h = nn.relu(nn.Conv(3, (3, 3), name="conv")(x))
        h = tap(self, h, 0)
        features = nn.relu(nn.Dense(8, name="hidden")(h.reshape(h.shape[0], -1)))
        return nn.Dense(C, name="head")(features), features


@pytest.fixture(scope="module")
def everything():
    """Full outputs (every field) and full fit data, consistent with one real Flax model."""
    key = jax.random.key(0)
    model = from_flax(TinyNet(), (4, 4, 1))
    variables = model.init(key)
    predict = Predict(model.apply, variables, (0.5,))
    x = jax.random.normal(jax.random.key(1), (N, 4, 4, 1))
    logits, features, maps = model.maps(variables, x)
    kl = jax.random.uniform(key, (N, C)) * 10
    out = ModelOutputs(logits, features, x, maps, jax.random.normal(key, (N, 3, C)),
                       {"binary_logits": logits, "kl": kl[:, :1], "class_kl": kl}, predict)
    data = FitData(out, jnp.arange(N) % C, model.head(variables), out, jax.random.key(2), predict, out,
                   jnp.arange(N)[::-1] % C)
    return out, data, (model, variables, x)


def _data_for(scorer, out: ModelOutputs, data: FitData, net, drop: str | None = None):
    """The outputs and fit data holding only the scorer's needs (minus `drop`); maps reduced by
    the scorer's map_reduce, with their gradients (Model.map_grads) if it has a map_loss."""
    needs = scorer.needs - {drop}
    view = restrict(out, needs)
    if view.maps is not None and scorer.map_loss is not None:
        model, variables, x = net
        maps_grads = model.map_grads(variables, x, scorer.map_loss)[2:]
        view = view._replace(maps=scorer.map_reduce(maps_grads) if T.MAP_GRADS in needs else None)
    elif view.maps is not None:
        view = view._replace(maps=scorer.map_reduce(view.maps) if scorer.map_reduce else None)
    has = needs.__contains__
    fit = FitData(train=view if has(T.TRAIN) else None, labels=data.labels if has(T.LABELS) else None,
                  head=data.head if has(T.HEAD) else None, val=view if has(T.ID_VAL) else None,
                  key=data.key if has(T.KEY) else None, model=view.model, outliers=view if has(T.OUTLIERS) else None,
                  val_labels=data.val_labels if has(T.VAL_LABELS) else None)
    return view, fit


def _run(scorer, view, fit):
    state = scorer.fit(fit)
    if scorer.tune is not None:
        state = scorer.tune(state, view, {"set": view})["set"]
    return jax.jit(scorer.score)(state, view)


@pytest.mark.parametrize("name,hyper", CASES, ids=IDS)
def test_runs_with_only_its_declared_needs(name, hyper, everything):
    scorer = scores.get(name, **hyper)
    view, fit = _data_for(scorer, *everything)
    got = _run(scorer, view, fit)
    assert got.shape == (N,) and np.isfinite(np.asarray(got)).all(), name


@pytest.mark.parametrize("name,hyper", CASES, ids=IDS)
def test_every_declared_need_is_read(name, hyper, everything):
    scorer = scores.get(name, **hyper)
    for need in sorted(scorer.needs - FLAGS):
        if need.startswith(T.OBJECTIVE_PREFIX):
            continue
        view, fit = _data_for(scorer, *everything, drop=need)
        with pytest.raises(Exception):  # noqa: B017  (any failure: the need is read)
            np.asarray(_run(scorer, view, fit))


def test_fitting_is_derived_from_needs_and_provides():
    plain = models.small_cnn(10).provides | ALWAYS
    fitting = set(scores.fitting(plain))
    assert {"msp", "odin", "gram", "grodin_g", "mahalanobis", "vim"} <= fitting
    assert not fitting & {"amp", "ens_confidence", "bin", "binc", "vib", "viby_i"}  # samples, objectives, heads
    ensemble = models.ensemble(models.small_cnn(10)).provides | ALWAYS
    assert {"ens_confidence", "msp", "odin", "knn"} <= set(scores.fitting(ensemble))
    assert not set(scores.fitting(ensemble)) & {"grodin_g", "gram", "react", "vim", "gradnorm_autodiff"}
    viby = models.get("small_cnn", num_classes=10, in_channels=1, image_size=28, head="viby").provides | ALWAYS
    assert {"viby_i", "viby_ii"} <= set(scores.fitting(viby)) and "vib" not in scores.fitting(viby)
    assert "bin" in scores.fitting(plain | {"objective:bin"})


def test_unknown_need_is_refused():
    @scores.register("test_only_bad_needs")
    def _factory():
        return scores.stateless(lambda out: out.logits[:, 0], needs={"logits", "logitz"})

    try:
        with pytest.raises(ValueError, match="unknown names \\['logitz'\\]"):
            scores.get("test_only_bad_needs")
    finally:
        scores._registry._REGISTRY.remove("test_only_bad_needs")  # the other tests derive lists from the registry
