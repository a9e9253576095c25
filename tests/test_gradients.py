"""Per-sample gradients against a plain jax.grad loop; the norm-trick path against the vmap path;
every closed form against autodiff in float64; GRODIN's grad = -S G."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from oodjax import gradients, models, scores
from oodjax.gradients import logits_of, per_sample_grad_norms, per_sample_grads, sample_loss


def _model(name, key, **kw):
    m = models.get(name, num_classes=5, in_channels=2, image_size=8, **kw)
    v = m.init(key)
    # Non-trivial batch statistics, so that eval-mode BatchNorm is not the identity.
    v = jax.tree_util.tree_map_with_path(
        lambda p, a: a + 0.3 if "batch_stats" in jax.tree_util.keystr(p) else a, v)
    return m, v, functools.partial(logits_of, m.apply)


def _loop_grads(loss, variables, x):
    """The reference: one jax.grad per sample, in a Python loop."""
    return [jax.grad(loss)(variables, x[i]) for i in range(x.shape[0])]


SMALL = dict(widths=(4, 8), feature_dim=6)


def test_vmap_path_equals_per_sample_loop(key):
    m, v, apply = _model("small_cnn", key, **SMALL)
    x = jax.random.normal(jax.random.key(1), (7, 8, 8, 2))
    loss = sample_loss(apply, scores.predicted_nll)
    got = per_sample_grads(loss, v, x, selector=("params/.*",), chunk_size=3)
    ref = _loop_grads(loss, v, x)
    flat_ref = [gradients.flatten(r) for r in ref]
    for path, g in got.items():
        np.testing.assert_allclose(g, np.stack([r[path] for r in flat_ref]), rtol=1e-5, atol=1e-6, err_msg=path)
    l1 = per_sample_grad_norms(apply, scores.predicted_nll, v, x, ord="l1", method="vmap")
    want = [sum(np.abs(np.asarray(a)).sum() for a in jax.tree_util.tree_leaves(r["params"])) for r in ref]
    np.testing.assert_allclose(l1, want, rtol=1e-5)


SUBSET = ("params/head/kernel", "params/.*Conv_0/.*")
def GN(z):  # GradNorm's loss at T = 2
    return scores.gradnorm_loss(z, {"temperature": jnp.asarray(2.0)})


NLL = scores.predicted_nll
CASES = [  # every model, every selector kind and both losses, without the full product
    ("small_cnn", SMALL, "all", GN), ("small_cnn", SMALL, "head", NLL), ("small_cnn", SMALL, SUBSET, NLL),
    ("resnet8", {}, "all", NLL), ("resnet8", {}, SUBSET, GN), ("resnet8", {}, "head", GN),
    ("wrn40_2", {}, "all", GN), ("wrn40_2", {}, SUBSET, NLL),
]


@pytest.mark.parametrize("name,kw,selector,loss", CASES)
def test_ghost_path_equals_vmap_path(key, name, kw, selector, loss):
    if name == "wrn40_2":  # a 10-layer WRN is enough to cover pre-activation blocks and 1x1 shortcuts
        m = models.from_flax(models.registry.WideResNet(5, depth=10, widen=1), (8, 8, 2))
        v, apply = m.init(key), functools.partial(logits_of, m.apply)
    else:
        m, v, apply = _model(name, key, **kw)
    x = jax.random.normal(jax.random.key(2), (6, 8, 8, 2))
    ghost = per_sample_grad_norms(apply, loss, v, x, selector=selector, ord="sq", method="ghost", chunk_size=4)
    vmap = per_sample_grad_norms(apply, loss, v, x, selector=selector, ord="sq", method="vmap", chunk_size=4)
    np.testing.assert_allclose(ghost, vmap, rtol=2e-4, atol=1e-9)
    assert np.any(np.asarray(vmap) > 0)  # (a uniform softmax at init gives GradNorm's loss a zero gradient)


def test_closed_forms_equal_autodiff_float64(key):
    with jax.enable_x64(True):
        m, v, apply = _model("small_cnn", key, **SMALL)
        v = jax.tree.map(lambda a: a.astype(jnp.float64), v)
        x = jax.random.normal(jax.random.key(3), (5, 8, 8, 2), jnp.float64)
        logits, features = m.apply(v, x)
        head = ("params/head/kernel",)
        for t in (1.0, 3.0):
            auto = per_sample_grad_norms(apply, scores.gradnorm_loss, v, x, shared=({"temperature": t},),
                                         selector=head, ord="l1", method="vmap")
            np.testing.assert_allclose(scores.gradnorm(logits, features, t), auto, rtol=1e-10)
        auto = per_sample_grad_norms(apply, scores.expsum_loss, v, x, selector=head, ord="l1", method="vmap")
        np.testing.assert_allclose(scores.expsum_gradnorm(logits, features), auto, rtol=1e-10)
        # Eq. 4: E_{y~p} ||d log p_y / dW||_1, one autodiff gradient per class y.
        p = np.asarray(jax.nn.softmax(logits))
        expected = np.zeros(x.shape[0])
        for y in range(logits.shape[1]):
            loss_y = _class_log_prob(y)
            expected += p[:, y] * np.asarray(
                per_sample_grad_norms(apply, loss_y, v, x, selector=head, ord="l1", method="vmap"))
        np.testing.assert_allclose(scores.expected_gradnorm(logits, features), expected, rtol=1e-10)


@functools.lru_cache(maxsize=None)
def _class_log_prob(y):
    return lambda z: jax.nn.log_softmax(z)[y]


def test_registered_autodiff_scorers_equal_the_closed_forms(key):
    """The gradient-scorer factory (loss + selector + norm) against the closed forms; the GradNorm
    selector is the head's kernel, not kernel and bias."""
    m = models.get("small_cnn", num_classes=5, in_channels=2, image_size=8, **SMALL)
    v = m.init(key)
    x = jax.random.normal(jax.random.key(7), (6, 8, 8, 2))
    logits, features = m.apply(v, x)
    out = scores.ModelOutputs(inputs=x, model=scores.Predict(m.apply, v))
    pairs = {"gradnorm_autodiff": scores.gradnorm(logits, features),
             "expected_gradnorm_autodiff": scores.expected_gradnorm(logits, features),
             "expsum_gradnorm_autodiff": scores.expsum_gradnorm(logits, features)}
    for name, want in pairs.items():
        s = scores.get(name)
        np.testing.assert_allclose(jax.jit(s.score)(s.fit(scores.FitData()), out), want, rtol=2e-5, err_msg=name)
    s = scores.get("gradnorm_autodiff", temperature=3.0)
    np.testing.assert_allclose(s.score(s.fit(scores.FitData()), out), scores.gradnorm(logits, features, 3.0), rtol=2e-5)
    apply = gradients.logits_fn_of(m.apply)
    with_bias = per_sample_grad_norms(apply, scores.gradnorm_loss, v, x, shared=({"temperature": jnp.asarray(1.0)},),
                                      selector="head", ord="l1", method="vmap")
    assert np.all(np.asarray(with_bias) > np.asarray(pairs["gradnorm_autodiff"]) * 1.01)  # the bias adds to it


def test_grodin_scorers_are_gradient_scorers(key):
    """grodin_g / grodin_sg (built by the factory, perturbed input, tuned T and eps) equal
    grodin_parts at the input ODIN perturbs, at a given (T, eps)."""
    m, v, apply = _model("small_cnn", key, **SMALL)
    x = jax.random.normal(jax.random.key(8), (6, 8, 8, 2))
    predict = scores.Predict(m.apply, v, (0.5,))
    t, eps = 2.0, 0.002
    std = jnp.full((2,), 0.5)
    x_t = x - eps * scores.odin_direction(predict, x, jnp.asarray(t), std)
    s, sq = scores.grodin_parts(gradients.logits_fn_of(m.apply), v, x_t, t)
    out = scores.ModelOutputs(inputs=x, model=predict)
    for name, want in (("grodin_sg", -sq), ("grodin_g", -sq / s**2)):
        scorer = scores.get(name, temperature=t, epsilon=eps)
        np.testing.assert_allclose(jax.jit(scorer.score)(scorer.fit(scores.FitData()), out), want, rtol=1e-4)


@pytest.mark.parametrize("backend", ["cpu", "gpu"])
def test_the_odin_step_of_a_gradient_scorer_on_either_path(key, backend, monkeypatch):
    """On a CPU the ODIN step is always taken (a conditional's branch runs slower there), elsewhere
    it sits in a lax.cond that skips it at eps = 0: both give x - eps * direction, and x at eps = 0."""
    from oodjax.scores._gradient_scorer import _odin_step

    monkeypatch.setattr(jax, "default_backend", lambda: backend)
    x = jax.random.normal(key, (3, 4, 4, 2))
    direction = jnp.sign(jax.random.normal(jax.random.key(2), x.shape)) / 0.5
    step = jax.jit(lambda x, e: _odin_step(x, e, lambda: direction))
    np.testing.assert_array_equal(step(x, jnp.float32(0.0)), x)
    np.testing.assert_allclose(step(x, jnp.float32(0.01)), x - 0.01 * direction, rtol=1e-6)
    hlo = jax.jit(lambda x, e: _odin_step(x, e, lambda: direction)).lower(x, jnp.float32(0.0)).as_text()
    assert ("conditional" in hlo or "case" in hlo) == (backend != "cpu")


def test_grodin_decomposition_float64(key):
    with jax.enable_x64(True):
        m, v, apply = _model("resnet8", key)
        v = jax.tree.map(lambda a: a.astype(jnp.float64), v)
        x = jax.random.normal(jax.random.key(4), (4, 8, 8, 2), jnp.float64)
        t = 2.0
        s, sq = scores.grodin_parts(apply, v, x, t)
        for i in range(x.shape[0]):
            def nll(p, xi=x[i]):
                z = apply({**v, "params": p}, xi[None])[0] / t
                return scores.predicted_nll(z)

            def g_part(p, xi=x[i]):  # G of paper 004: -sum_{c != c^} e^{z_c - z_c^} d(z_c - z_c^)
                z = apply({**v, "params": p}, xi[None])[0] / t
                c = jnp.argmax(z)
                w = jax.lax.stop_gradient(jnp.exp(z - z[c])).at[c].set(0.0)
                return -jnp.sum(w * (z - z[c]))

            grad = jax.grad(nll)(v["params"])
            g = jax.grad(g_part)(v["params"])
            for a, b in zip(jax.tree_util.tree_leaves(grad), jax.tree_util.tree_leaves(g)):
                np.testing.assert_allclose(a, -s[i] * b, rtol=1e-8, atol=1e-12)
            sq_ref = sum(float(jnp.sum(a * a)) for a in jax.tree_util.tree_leaves(grad))
            np.testing.assert_allclose(sq[i], sq_ref, rtol=1e-8)
            g_sq = sum(float(jnp.sum(b * b)) for b in jax.tree_util.tree_leaves(g))
            np.testing.assert_allclose(sq[i] / s[i] ** 2, g_sq, rtol=1e-8)


def test_bad_input(key):
    m, v, apply = _model("small_cnn", key, **SMALL)
    x = jnp.ones((2, 8, 8, 2))
    with pytest.raises(ValueError, match="matches no parameter; the parameters are: .*head/kernel"):
        per_sample_grad_norms(apply, scores.predicted_nll, v, x, selector=("params/nothing",))
    with pytest.raises(ValueError, match="ord"):
        per_sample_grad_norms(apply, scores.predicted_nll, v, x, ord="l3")
    with pytest.raises(ValueError, match="l2 norms only"):
        per_sample_grad_norms(apply, scores.predicted_nll, v, x, ord="l1", method="ghost")
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        scores.gradnorm(jnp.ones((2, 3)), jnp.ones((2, 4)), 0.0)
    with pytest.raises(ValueError, match="epsilon must be a finite number >= 0"):
        scores.get("grodin_g", epsilons=(-0.1,))
    with pytest.raises(ValueError, match="criterion"):
        scores.get("grodin_sg", criterion="accuracy")
    with pytest.raises(ValueError, match="logits of shape"):
        per_sample_grad_norms(lambda vv, xx: apply(vv, xx)[:, 0], scores.predicted_nll, v, x)
    with pytest.raises(ValueError, match="gradient score needs ModelOutputs.model"):
        g = scores.get("grodin_g")
        g.score(g.fit(scores.FitData()), scores.ModelOutputs(inputs=x))
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        scores.gradient_scorer(scores.gradnorm_loss, grid={"temperature": (0.0, 1.0)})
    with pytest.raises(ValueError, match="selector string must be one of"):
        scores.gradient_scorer(scores.gradnorm_loss, selector="head_kernal")
    with pytest.raises(ValueError, match="not hyper-parameters"):
        scores.gradient_scorer(scores.gradnorm_loss, grid={"temprature": (1.0,)})
    with pytest.raises(ValueError, match="norm must be one of"):
        scores.gradient_scorer(scores.gradnorm_loss, norm="l3")
    with pytest.raises(ValueError, match="scalar per sample"):
        per_sample_grad_norms(apply, lambda z: z, v, x)  # a vector-valued loss is not summed silently


class _GroupNormNet(__import__("flax").linen.Module):
    """Conv -> GroupNorm -> ReLU -> strided SAME conv -> GroupNorm -> mean -> Dense (BiT-like norms)."""

    @__import__("flax").linen.compact
    def __call__(self, x, train=False):
        nn = __import__("flax").linen
        x = nn.relu(nn.GroupNorm(num_groups=2)(nn.Conv(4, (3, 3), padding="SAME")(x)))
        x = nn.relu(nn.GroupNorm(num_groups=2)(nn.Conv(6, (3, 3), strides=2, padding="SAME", kernel_dilation=1)(x)))
        h = jnp.mean(x, axis=(1, 2))
        return nn.Dense(3, name="head")(h), h


def test_ghost_path_group_norm_and_same_padding(key):
    m = models.from_flax(_GroupNormNet(), (7, 7, 2))  # odd size: SAME padding is asymmetric at stride 2
    v, apply = m.init(key), functools.partial(logits_of, m.apply)
    x = jax.random.normal(jax.random.key(5), (5, 7, 7, 2))
    ghost = per_sample_grad_norms(apply, scores.predicted_nll, v, x, ord="sq", method="ghost")
    vmap = per_sample_grad_norms(apply, scores.predicted_nll, v, x, ord="sq", method="vmap")
    np.testing.assert_allclose(ghost, vmap, rtol=2e-4)


def test_ghost_path_covers_every_layer_with_shared_arguments(key, monkeypatch):
    """GRODIN's temperature reaches the loss as a non-differentiated shared argument: the taps
    cover every layer (no silent fallback to per-sample gradients) and agree with the vmap path."""
    from oodjax.gradients import _ghost

    m, v, apply = _model("resnet8", key)
    h = ({"temperature": jnp.asarray(2.0)},)
    x = jax.random.normal(jax.random.key(6), (4, 8, 8, 2))
    calls = []
    original = _ghost._reduce
    monkeypatch.setattr(_ghost, "_reduce", lambda g, ord: calls.append(sorted(g)) or original(g, ord))
    ghost = per_sample_grad_norms(apply, scores.grodin_loss, v, x, shared=h, ord="sq", method="ghost")
    assert calls == []  # every parameter of ResNet-8 is in a tapped Conv/BatchNorm/Dense layer
    vmap = per_sample_grad_norms(apply, scores.grodin_loss, v, x, shared=h, ord="sq", method="vmap")
    np.testing.assert_allclose(ghost, vmap, rtol=2e-4)


def test_throughput_bench_runs_both_dtypes(capsys):
    """The GPU throughput script (issue 13), on a tiny network: a table row per dtype; bad --dtypes refused."""
    from experiments.benchmarks import throughput_bench

    assert throughput_bench.main(["--model", "resnet8", "--image-size", "16", "--batch", "4", "--repeats", "1",
                                  "--chunk", "2"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("| float32", "| bfloat16"))]
    assert len(rows) == 2 and all(float(r.split("|")[2]) > 0 and float(r.split("|")[3]) > 0 for r in rows)
    with pytest.raises(SystemExit):
        throughput_bench.main(["--dtypes", "float16"])


# --- the per-layer plan (issue 19) ----------------------------------------------------------------


def test_plan_bench_memory_only_shows_the_norms_hold_less_than_the_vmap_path(capsys):
    """ghost_plan_bench --memory-only compiles each variant and prints its temporaries: at the same
    chunk the one backward pass holds less than the vmap path (issue 19's memory goal; on ResNet-20
    it held more, 18 vs 15 MiB, until each passed-on gradient waited for the later layers' norms)."""
    from experiments.benchmarks import ghost_plan_bench

    ghost_plan_bench.main(["--model", "resnet20", "--batch", "16", "--chunk", "8",
                           "--memory-only", "--only", "eager,vmap"])
    rows = {r.split("|")[1].split(",")[0].strip(): r.split("|") for r in capsys.readouterr().out.splitlines()
            if r.startswith(("| eager", "| vmap"))}
    assert set(rows) == {"eager", "vmap"} and rows["eager"][2].strip() == "-"  # not timed
    assert 0 < float(rows["eager"][5]) < float(rows["vmap"][5]), rows


@pytest.mark.parametrize("method", ["ghost", "unfold", "filter", "vmap"])
def test_every_conv_method_equals_the_per_sample_loop_float64(key, method):
    """Each method forced on every conv layer of ResNet-8 (strided, padded, 1x1 and 3x3 convs, BN)
    gives the squared norm of the per-sample jax.grad loop over all parameters, float64."""
    with jax.enable_x64(True), jax.numpy_dtype_promotion("standard"):
        m, v, apply = _model("resnet8", key)
        v = jax.tree.map(lambda a: a.astype(jnp.float64), v)
        x = jax.random.normal(jax.random.key(4), (5, 8, 8, 2), jnp.float64)
        plan, _, _ = gradients.ghost_plan(apply, v, x)
        convs = {q.layer: method for q in plan if q.kind == "conv" and q.p > 1}
        assert len(convs) >= 7
        got = per_sample_grad_norms(apply, scores.grodin_loss, v, x, selector="all", ord="sq", method="ghost",
                                    shared=({"temperature": jnp.asarray(2.0)},), methods=convs, chunk_size=2)
        loss = sample_loss(apply, scores.grodin_loss)
        want = [sum(float(jnp.sum(g ** 2)) for g in jax.tree_util.tree_leaves(grads["params"]))
                for grads in (jax.grad(loss)(v, x[i], {"temperature": jnp.asarray(2.0)}) for i in range(5))]
        np.testing.assert_allclose(got, want, rtol=1e-10)


def test_the_plan_is_inspectable_and_follows_the_costs(key):
    m, v, apply = _model("resnet8", key)
    x = jnp.zeros((64, 8, 8, 2))
    plan, chunk, rest = gradients.ghost_plan(apply, v, x)
    assert chunk is None and rest == ()
    for q in plan:
        costs = gradients.layer_costs(q.kind, q.p, q.k, q.c, q.taps)
        assert (q.flops, q.bytes) == costs[q.method]
        assert q.flops == min(f for f, _ in costs.values())  # the fewest flops
    head = next(q for q in plan if q.layer == "head")
    assert (head.kind, head.method, head.p, head.k, head.c) == ("dense", "outer", 1, 64, 5)
    # A small budget: the chunk shrinks, and no conv holds its patches.
    tight, chunk, _ = gradients.ghost_plan(apply, v, x, memory_budget=2**17)
    assert 1 <= chunk < 16 and all(q.method != "unfold" for q in tight)
    roomy, chunk, _ = gradients.ghost_plan(apply, v, x, memory_budget=2**30)
    assert chunk == 64 and [q.method for q in roomy] == [q.method for q in plan]
    forced, _, _ = gradients.ghost_plan(apply, v, x, methods={"head": "vmap"})
    assert "head" not in {q.layer for q in forced}
    assert set(gradients.ghost_plan(apply, v, x, methods={"head": "vmap"})[2]) == {"params/head/bias", "params/head/kernel"}
    with pytest.raises(ValueError, match="methods= names layers that are not tapped: \\['nope'\\]"):
        gradients.ghost_plan(apply, v, x, methods={"nope": "ghost"})
    with pytest.raises(ValueError, match="method 'filter' does not fit a dense layer"):
        gradients.ghost_plan(apply, v, x, methods={"head": "filter"})
    with pytest.raises(ValueError, match="methods must map layers to one of"):
        per_sample_grad_norms(apply, scores.grodin_loss, v, x[:2], selector="all", ord="sq", method="ghost",
                              shared=({"temperature": jnp.asarray(1.0)},), methods={"head": "fast"})


def test_a_memory_budget_gives_the_same_norms(key):
    m, v, apply = _model("resnet8", key)
    x = jax.random.normal(jax.random.key(5), (12, 8, 8, 2))
    kw = dict(selector="all", ord="sq", method="ghost", shared=({"temperature": jnp.asarray(1.0)},))
    base = per_sample_grad_norms(apply, scores.grodin_loss, v, x, chunk_size=12, **kw)
    small = per_sample_grad_norms(apply, scores.grodin_loss, v, x, memory_budget=2**17, **kw)
    np.testing.assert_allclose(small, base, rtol=2e-5)


def test_a_memory_budget_is_met_by_the_compiled_chunk(key):
    """The chunk a budget gives is checked against XLA's memory analysis of the compiled chunk
    (the shapes-only estimate is a first guess, shrunk or grown): its temporaries fit the budget,
    and the chunks are evened out over the batch."""
    from oodjax.gradients import _ghost

    m, v, apply = _model("small_cnn", key, widths=(8, 16), feature_dim=16)
    x = jax.random.normal(jax.random.key(5), (40, 8, 8, 2))
    t = ({"temperature": jnp.asarray(1.0)},)
    paths = gradients.selected_paths(v, ("params/.*",))

    def temp(chunk, forced=()):
        xc = jax.ShapeDtypeStruct((chunk, *x.shape[1:]), x.dtype)
        return _ghost._ghost_sq_norms.lower(apply, scores.grodin_loss, v, xc, paths, chunk, t, forced).compile() \
            .memory_analysis().temp_size_in_bytes

    per_sample = temp(8) / 8
    for budget in (int(per_sample * 12), int(per_sample * 25)):
        _, estimate, _ = gradients.ghost_plan(apply, v, x, memory_budget=budget)
        chunk, forced = _ghost._budget(apply, scores.grodin_loss, v, x, budget, ("params/.*",), None, t)
        assert gradients.budget_chunk(apply, scores.grodin_loss, v, x, budget, shared=t) == chunk
        assert temp(chunk, forced) <= budget, (budget, estimate, chunk)
        assert temp(estimate, forced) > budget, "the estimate alone would have been enough: the test checks nothing"
        assert chunk == -(-40 // -(-40 // chunk))  # even: 40 in chunks of 10 or 20, never 12 + 12 + 12 + 4
        assert chunk >= 0.5 * budget / per_sample, (chunk, budget / per_sample)
    budget = int(per_sample * 25)  # an estimate that errs low is grown to the largest chunk seen to fit,
    compiled = []  # compiling no chunk twice

    class Counting:
        def lower(self, *args):
            compiled.append(args[5])
            return _ghost_sq_norms.lower(*args)

    _ghost_sq_norms = _ghost._ghost_sq_norms
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_ghost, "_ghost_sq_norms", Counting())
        grown = _ghost._fitted(v, t, x, apply, scores.grodin_loss, paths, 2, (), budget)
    assert grown >= 8 and temp(grown) <= budget, grown
    assert 2 <= len(compiled) <= 4 and len(set(compiled)) == len(compiled), compiled
    got = per_sample_grad_norms(apply, scores.grodin_loss, v, x, selector="all", ord="sq", method="ghost", shared=t,
                                memory_budget=int(per_sample * 12))
    want = per_sample_grad_norms(apply, scores.grodin_loss, v, x, selector="all", ord="sq", method="vmap", shared=t)
    np.testing.assert_allclose(got, want, rtol=2e-5)


@pytest.mark.parametrize("method", ["ghost", "vmap"])
def test_the_bf16_path_tracks_float32(key, method):
    """compute_dtype="bfloat16" runs the passes in bf16 (the norms differ from float32's) and
    returns float32 norms within bf16's error (measured in experiments/benchmarks/bf16_norms_bench.py)."""
    m, v, apply = _model("resnet8", key)
    x = jax.random.normal(jax.random.key(6), (32, 8, 8, 2))
    kw = dict(selector="all", ord="sq", method=method, shared=({"temperature": jnp.asarray(1.0)},))
    f32 = np.asarray(per_sample_grad_norms(apply, scores.grodin_loss, v, x, **kw))
    bf16 = per_sample_grad_norms(apply, scores.grodin_loss, v, x, compute_dtype="bfloat16", **kw)
    assert bf16.dtype == jnp.float32
    rel = np.abs(np.asarray(bf16) - f32) / f32
    assert 0 < np.median(rel) < 0.05, np.median(rel)  # bf16 has 8 significant bits: about 0.4% per rounding
    assert np.percentile(rel, 90) < 0.2, np.percentile(rel, 90)
    with pytest.raises(ValueError, match="compute_dtype must be one of"):
        per_sample_grad_norms(apply, scores.grodin_loss, v, x, compute_dtype="float16", **kw)
    with pytest.raises(ValueError, match="compute_dtype must be one of"):
        scores.get("grodin_g", compute_dtype="half")


def test_a_sample_whose_norm_overflows_leaves_the_others_alone(key):
    """The taps order the layers' norms through each sample's own values (0 times them): a
    non-finite norm of one sample must not reach the other samples' norms."""
    m, v, apply = _model("resnet8", key)
    x = jax.random.normal(jax.random.key(3), (4, 8, 8, 2)).at[0].multiply(1e30).at[2].multiply(1e30)
    kw = dict(selector="all", ord="sq", shared=({"temperature": jnp.asarray(1.0)},))
    ghost = np.asarray(per_sample_grad_norms(apply, scores.grodin_loss, v, x, method="ghost", **kw))
    ref = np.asarray(per_sample_grad_norms(apply, scores.grodin_loss, v, x, method="vmap", **kw))
    assert not np.isfinite(ghost[0]) and not np.isfinite(ghost[2])  # ||a||^2 overflows (the vmap path's
    # gradient underflows to 0 there)
    assert np.all(np.isfinite(ref[[1, 3]]))
    np.testing.assert_allclose(ghost[[1, 3]], ref[[1, 3]], rtol=1e-4)
