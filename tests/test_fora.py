"""fora, dfora, lora_random_mask (adapters/fora.py) and the spectral primitive they use."""
from __future__ import annotations

import math

import pytest
import torch
from peft import LoraConfig, get_peft_model
from torch import nn

import helpers
from adapters import apply_method
from adapters.errors import MethodConfigError
from adapters.base import layer_generator
from adapters.fora import DFoRALinear, FoRALinear, RandomMaskLoRALinear, SparseLoRALinear, scatter_dense
from adapters.spectral import random_locations, spectral_to_dense
from benchmarks.fora_update_size import Recipe, recipes, update_size

OURS = {
    "fora": {"n": 40, "r": 4, "alpha": 8.0},
    "dfora": {"n": 40, "r": 4, "alpha": 8.0},
    "lora_random_mask": {"n": 40, "r": 4, "alpha": 8.0},
}


def _layer(cls=FoRALinear, d_out=12, d_in=10, n=20, r=3, seed=0, dtype=torch.float64, **kw):
    g = torch.Generator().manual_seed(seed)
    base = nn.Linear(d_in, d_out).to(dtype)
    return cls(base, n=n, r=r, alpha=kw.pop("alpha", 2.0 * r), dropout=kw.pop("dropout", 0.0), generator=g, **kw)


# --- the contract every method meets ---------------------------------------------------------
@pytest.mark.parametrize("method", list(OURS))
def test_grads_only_adapter_and_head(method):
    helpers.check_grads("roberta", method, OURS[method])


@pytest.mark.parametrize("method", list(OURS))
def test_base_weights_bitwise_unchanged(method):
    helpers.check_base_unchanged("roberta", method, OURS[method])


@pytest.mark.parametrize("method", list(OURS))
def test_zero_init_output_unchanged(method):
    helpers.check_zero_init("roberta", method, OURS[method])


@pytest.mark.parametrize("method", list(OURS))
def test_merge_unmerge(method):
    helpers.check_merge("roberta", method, OURS[method])


@pytest.mark.parametrize("method", list(OURS))
def test_save_load_roundtrip(method, tmp_path):
    helpers.check_save_load("roberta", method, OURS[method], tmp_path / f"{method}.safetensors")


@pytest.mark.parametrize("method", ["fora", "dfora"])
@pytest.mark.parametrize("arch", ["vit", "llama"])
def test_other_architectures(method, arch):
    helpers.check_grads(arch, method, OURS[method])
    helpers.check_zero_init(arch, method, OURS[method])


def test_dropout_grads_and_eval_determinism():
    helpers.check_grads("roberta", "dfora", {**OURS["dfora"], "dropout": 0.1})
    helpers.check_zero_init("roberta", "fora", {**OURS["fora"], "dropout": 0.1})  # eval: no dropout


# --- the spectral primitive ------------------------------------------------------------------
def _dense_spectrum(coeffs, loc, shape):
    f = torch.zeros(shape, dtype=torch.complex128)
    f[loc[0], loc[1]] = coeffs.to(torch.complex128)
    return f


@pytest.mark.parametrize("complex_coeffs", [False, True])
# (4, 4) with n = 16: every location, so every mirror is a location too (and four are their own)
@pytest.mark.parametrize("shape, n", [((6, 9), 17), ((8, 10), 30), ((4, 4), 16)])
def test_spectral_to_dense_is_real_part_of_ifft2(complex_coeffs, shape, n):
    g = torch.Generator().manual_seed(0)
    loc = random_locations(shape, n, g)
    c = torch.randn(n, dtype=torch.float64, generator=g)
    if complex_coeffs:
        c = torch.complex(c, torch.randn(n, dtype=torch.float64, generator=g))
    out = spectral_to_dense(c, loc, shape)
    assert out.dtype == torch.float64 and out.shape == shape
    torch.testing.assert_close(out, torch.fft.ifft2(_dense_spectrum(c, loc, shape)).real, atol=1e-12, rtol=0)


@pytest.mark.parametrize("shape", [(6, 8), (5, 7)])
def test_spectral_hermitian_is_ifft2_of_conjugate_symmetric_spectrum(shape):
    rows, cols = shape
    g = torch.Generator().manual_seed(1)
    half_cols = cols // 2 + 1
    loc = random_locations((rows, half_cols), 12, g)
    c = torch.complex(*torch.randn(2, 12, dtype=torch.float64, generator=g))
    half = _dense_spectrum(c, loc, (rows, half_cols))
    full = torch.zeros(shape, dtype=torch.complex128)
    for j in range(rows):
        for k in range(half_cols):
            mirror = ((-j) % rows, (-k) % cols)
            if k == (-k) % cols:  # DC / Nyquist column: its own mirror, symmetrise it
                full[j, k] = (half[j, k] + half[mirror].conj()) / 2
            else:
                full[j, k] = half[j, k]
                full[mirror] = half[j, k].conj()
    assert torch.allclose(full, full.flip(0, 1).roll((1, 1), (0, 1)).conj())  # F[j,k] = conj F[-j,-k]
    spatial = torch.fft.ifft2(full)
    assert spatial.imag.abs().max() < 1e-12
    out = spectral_to_dense(c, loc, shape, hermitian=True)
    torch.testing.assert_close(out, spatial.real, atol=1e-12, rtol=0)


@pytest.mark.parametrize("hermitian", [False, True])
@pytest.mark.parametrize("shared", [False, True])
def test_spectral_to_dense_batched_equals_one_by_one(hermitian, shared):
    g = torch.Generator().manual_seed(2)
    shape = (6, 10)
    grid = (6, 10 // 2 + 1) if hermitian else shape
    locs = torch.stack([random_locations(grid, 9, g) for _ in range(3)])
    if shared:
        locs = locs[0]
    c = torch.complex(*torch.randn(2, 3, 9, dtype=torch.float64, generator=g))
    out = spectral_to_dense(c, locs, shape, hermitian=hermitian)
    assert out.shape == (3, *shape)
    for i in range(3):
        one = spectral_to_dense(c[i], locs if shared else locs[i], shape, hermitian=hermitian)
        torch.testing.assert_close(out[i], one, atol=1e-14, rtol=0)
    assert not torch.allclose(out[0], out[1])


def test_scatter_dense_places_values():
    loc = torch.tensor([[0, 2, 1], [1, 0, 3]])
    out = scatter_dense(torch.tensor([1.0, 2.0, 3.0]), loc, (3, 4))
    expected = torch.zeros(3, 4)
    expected[0, 1], expected[2, 0], expected[1, 3] = 1.0, 2.0, 3.0
    assert torch.equal(out, expected)


# --- FoRA: eq. (3)-(4), rank, budget, init ----------------------------------------------------
def _eq3_real(coeffs, loc, rows, cols):
    """Eq. (3)-(4) written out: S_pq = 1/(r d) sum_j sum_k F_jk exp(i 2 pi (j p / r + k q / d)), A~ = Re S."""
    F = {(int(j), int(k)): complex(s) for j, k, s in zip(loc[0], loc[1], coeffs)}
    out = torch.zeros(rows, cols, dtype=torch.float64)
    for p in range(rows):
        for q in range(cols):
            total = 0j
            for j in range(rows):
                for k in range(cols):
                    total += F.get((j, k), 0j) * complex(math.cos(2 * math.pi * (j * p / rows + k * q / cols)),
                                                        math.sin(2 * math.pi * (j * p / rows + k * q / cols)))
            out[p, q] = (total / (rows * cols)).real
    return out


def test_fora_matches_handwritten_eq3_eq4():
    layer = _layer(d_out=5, d_in=6, n=7, r=3)
    with torch.no_grad():
        layer.coef_B.copy_(torch.randn(layer.coef_B.shape, dtype=torch.float64))
    a_tilde, b_tilde = layer.factors()
    a_ref = _eq3_real(layer.coef_A.detach(), layer.loc_A, 3, 6)
    b_ref = _eq3_real(layer.coef_B.detach(), layer.loc_B, 5, 3)
    torch.testing.assert_close(a_tilde, a_ref, atol=1e-12, rtol=0)
    torch.testing.assert_close(b_tilde, b_ref, atol=1e-12, rtol=0)
    # eq. (2): the layer's output is W0 x + b + scaling * B~ A~ x
    x = torch.randn(4, 6, dtype=torch.float64)
    expected = x @ (layer.base_layer.weight + layer.scaling * b_ref @ a_ref).T + layer.base_layer.bias
    torch.testing.assert_close(layer(x), expected, atol=1e-12, rtol=0)
    torch.testing.assert_close(layer.delta_weight(), layer.scaling * b_ref @ a_ref, atol=1e-12, rtol=0)


def test_fora_full_rank_with_fewer_coefficients():
    layer = _layer(d_out=64, d_in=64, n=100, r=8, dtype=torch.float32)
    a_tilde, _ = layer.factors()
    assert layer.coef_A.numel() == 100 < 8 * 64
    assert torch.linalg.matrix_rank(a_tilde.detach()) == 8
    with torch.no_grad():
        layer.coef_B.normal_()
    _, b_tilde = layer.factors()
    assert torch.linalg.matrix_rank(b_tilde.detach()) == 8
    assert torch.linalg.matrix_rank(layer.delta_weight().detach()) == 8  # LoRA with 200 params would be rank 1


def test_budget_fixed_by_n_and_clipped():
    for r in (8, 16, 64):
        layer = _layer(d_out=768, d_in=768, n=8000, r=r, dtype=torch.float32)
        expected = min(8000, r * 768)  # FoRA Table 10, ViT-base: 6,144 at r=8, then 8000
        assert layer.coef_A.numel() == layer.coef_B.numel() == expected
        assert layer.loc_A.shape == layer.loc_B.shape == (2, expected)
    # distinct locations
    layer = _layer(d_out=10, d_in=10, n=30, r=4)
    assert len({tuple(x) for x in layer.loc_A.T.tolist()}) == 30


@pytest.mark.parametrize("init, target", [("kaiming", lambda r, d: 1 / (3 * d)), ("xavier", lambda r, d: 2 / (r + d))])
def test_fora_std_ratio_init_variance_matches_spatial_init(init, target):
    r, d = 16, 256
    layer = _layer(d_out=128, d_in=d, n=500, r=r, init=init, init_scale="std_ratio", dtype=torch.float32)
    a_tilde, b_tilde = layer.factors()
    assert torch.count_nonzero(b_tilde) == 0
    # Var(A~) equals the empirical Var(A') of the layer's own draw, which is close to the analytic one
    assert abs(a_tilde.var().item() / target(r, d) - 1) < 0.1


@pytest.mark.parametrize("init", ["kaiming", "xavier"])
def test_fora_default_init_scales_s_by_the_variance_ratio_as_written(init):
    """004 §3.3: "we scale s by Var(A')/Var(A~)"; the layer's draws repeated by hand in its order
    (A's locations, B's locations, s as a 1 x n tensor, then A')."""
    r, d_in, d_out, n, seed = 16, 256, 128, 500, 5
    layer = _layer(d_out=d_out, d_in=d_in, n=n, r=r, init=init, seed=seed)
    assert layer.init_scale == "variance_ratio"
    g = torch.Generator().manual_seed(seed)
    draw = {"kaiming": lambda t: nn.init.kaiming_uniform_(t, a=math.sqrt(5), generator=g),
            "xavier": lambda t: nn.init.xavier_uniform_(t, generator=g)}[init]
    loc_a = random_locations((r, d_in), n, g)
    random_locations((d_out, r), n, g)
    s = draw(torch.empty(1, n))[0]
    a_aux = draw(torch.empty(r, d_in))
    a_tilde_0 = torch.fft.ifft2(_dense_spectrum(s, loc_a, (r, d_in))).real
    expected = s.double() * (a_aux.double().var() / a_tilde_0.var())
    torch.testing.assert_close(layer.coef_A.detach(), expected, rtol=1e-5, atol=0)
    # the two readings differ by sqrt(Var(A')/Var(A~)): ~sqrt(r^2 d_in / 2) here, not a rounding
    std = _layer(d_out=d_out, d_in=d_in, n=n, r=r, init=init, seed=seed, init_scale="std_ratio")
    ratio = (layer.coef_A / std.coef_A).detach()
    torch.testing.assert_close(ratio, torch.full_like(ratio, ratio[0].item()), rtol=1e-6, atol=0)  # drawn in float32
    assert ratio[0] ** 2 == pytest.approx((a_aux.double().var() / a_tilde_0.var()).item(), rel=1e-5)
    assert ratio[0] > 50


def test_fora_and_dfora_default_to_the_text_reading():
    for method in ("fora", "dfora"):
        ad = apply_method(helpers.tiny_roberta(), method, OURS[method], target_modules=["query", "value"])
        assert {layer.init_scale for layer in ad.adapter_layers()} == {"variance_ratio"}
        ad = apply_method(helpers.tiny_roberta(), method, {**OURS[method], "init_scale": "std_ratio"},
                          target_modules=["query", "value"])
        assert {layer.init_scale for layer in ad.adapter_layers()} == {"std_ratio"}
    with pytest.raises(MethodConfigError, match="init_scale.*variance_ratio.*std_ratio"):
        apply_method(helpers.tiny_roberta(), "fora", {**OURS["fora"], "init_scale": "sqrt"}, target_modules=["query"])


@pytest.mark.parametrize("objective", ["regression", "classification"])
def test_fora_update_not_negligible_at_table6_sst2(objective):
    """Issue 18 §1: B~ starts at zero, so A~'s scale sets the update. At FoRA Table 6's SST-2 setting
    (RoBERTa-base width, r 32, n 500, lr 2e-2; config/glue_base.yaml) the text's reading moves W at
    least 0.2x as far as LoRA at its recipe (r 8, alpha 16, lr 5e-4) in 20 AdamW steps; the square
    root stays below (benchmarks/fora_update_size.py prints every paper setting)."""
    (tasks, width, fora, lora), *_ = recipes("glue_base", "fora", "lora")
    assert tasks.startswith("sst2") and width == 768
    assert (fora.hparams["r"], fora.hparams["n"], fora.lr, lora.hparams["r"], lora.lr) == (32, 500, 2e-2, 8, 5e-4)
    ref = update_size(width, lora, objective)
    size = {reading: update_size(width, Recipe(fora.method, {**fora.hparams, "init_scale": reading}, fora.lr,
                                                fora.weight_decay), objective) / ref
            for reading in ("variance_ratio", "std_ratio")}
    assert size["variance_ratio"] >= 0.2, size
    assert size["std_ratio"] < 0.2, size


def test_fora_init_reproducible_from_generator():
    a, b = _layer(seed=3), _layer(seed=3)
    c = _layer(seed=4)
    assert torch.equal(a.coef_A, b.coef_A) and torch.equal(a.loc_A, b.loc_A) and torch.equal(a.loc_B, b.loc_B)
    assert not torch.equal(a.loc_A, c.loc_A)


def test_per_layer_seeds_distinct_and_seeded():
    def locs(seed):
        ad = apply_method(helpers.tiny_roberta(), "fora", OURS["fora"], target_modules=["query", "value"], seed=seed)
        return [layer.loc_A.clone() for layer in ad.adapter_layers()]

    a, b, c = locs(0), locs(0), locs(1)
    assert len(a) == 4
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not any(torch.equal(a[i], a[j]) for i in range(4) for j in range(i + 1, 4))
    assert not any(torch.equal(x, y) for x, y in zip(a, c))
    draw = lambda seed, name: torch.randint(1 << 30, (4,), generator=layer_generator(seed, name))  # noqa: E731
    assert torch.equal(draw(0, "x"), draw(0, "x"))
    assert not torch.equal(draw(0, "x"), draw(0, "y")) and not torch.equal(draw(0, "x"), draw(1, "x"))


def test_global_rng_untouched():
    state = torch.random.get_rng_state()
    apply_method(helpers.tiny_roberta(), "dfora", OURS["dfora"], target_modules=["query", "value"], seed=0)
    assert torch.equal(torch.random.get_rng_state(), state)


# --- spectral locations: Algorithm 1 (per matrix) or §3.2 (one L for all matrices) ------------
def _locations(arch, method, shared, seed=0):
    factory, _, targets, head = helpers.ARCHS[arch]
    hp = {**OURS[method], "shared_locations": shared}
    ad = apply_method(factory(), method, hp, target_modules=targets, head_modules=head, seed=seed)
    return [(layer.loc_A, layer.loc_B, layer.shape_a, layer.shape_b) for layer in ad.adapter_layers()]


@pytest.mark.parametrize("method", list(OURS))
def test_algorithm1_draws_locations_per_matrix(method):
    locs = _locations("roberta", method, shared=False)
    every = [loc_a for loc_a, *_ in locs] + [loc_b.flip(0) for _, loc_b, *_ in locs]  # all on the r x 32 grid
    assert len(every) == 8
    assert not any(torch.equal(every[i], every[j]) for i in range(8) for j in range(i + 1, 8))


@pytest.mark.parametrize("method", list(OURS))
def test_shared_locations_one_index_matrix_for_all(method):
    locs = _locations("roberta", method, shared=True)
    first = locs[0][0]
    assert first.shape == (2, 40)
    for loc_a, loc_b, *_ in locs:  # every A, and every B at the transposed positions (B^T is r x d)
        assert torch.equal(loc_a, first) and torch.equal(loc_b, first.flip(0))
    assert torch.equal(first, _locations("roberta", method, shared=True)[0][0])  # seeded
    assert not torch.equal(first, _locations("roberta", method, shared=True, seed=1)[0][0])


def test_shared_locations_one_per_grid_size():
    """LLaMA's v_proj is 16 x 32 (2 KV heads): B of v lives on an r x 16 grid, everything else on r x 32."""
    by_grid: dict[tuple[int, int], list[torch.Tensor]] = {}
    for loc_a, loc_b, shape_a, shape_b in _locations("llama", "fora", shared=True):
        by_grid.setdefault(shape_a, []).append(loc_a)
        by_grid.setdefault(shape_b[::-1], []).append(loc_b.flip(0))
    assert set(by_grid) == {(4, 32), (4, 16)}
    for grid, locs in by_grid.items():
        assert all(torch.equal(loc, locs[0]) for loc in locs), grid
        assert int(locs[0][1].max()) < grid[1]


@pytest.mark.parametrize("method", list(OURS))
def test_shared_locations_contract(method, tmp_path):
    hp = {**OURS[method], "shared_locations": True}
    helpers.check_grads("roberta", method, hp)
    helpers.check_merge("roberta", method, hp)
    helpers.check_save_load("roberta", method, hp, tmp_path / "shared.safetensors")


# --- one batched inverse FFT for both factors ---------------------------------------------------
@pytest.mark.parametrize("cls", [FoRALinear, DFoRALinear])
def test_batched_factors_equal_two_transforms(cls):
    layer = _layer(cls, d_out=16, d_in=16, n=30, r=4)
    with torch.no_grad():
        layer.coef_B.normal_()
    batched = layer.factors()
    separate = SparseLoRALinear.factors(layer)  # one ifft2 per factor
    for ours, ref in zip(batched, separate):
        torch.testing.assert_close(ours, ref, atol=1e-14, rtol=0)
    grads = [torch.autograd.grad((f[0] @ torch.ones(16, 1, dtype=torch.float64)).sum() + f[1].pow(2).sum(),
                                 [layer.coef_A, layer.coef_B]) for f in (batched, separate)]
    for ours, ref in zip(*grads):
        torch.testing.assert_close(ours, ref, atol=1e-14, rtol=0)


# --- random masking ---------------------------------------------------------------------------
def test_random_mask_exactly_n_entries():
    layer = _layer(RandomMaskLoRALinear, d_out=16, d_in=20, n=25, r=4)
    with torch.no_grad():
        layer.coef_B.uniform_(0.5, 1.0)
    a, b = layer.factors()
    assert torch.count_nonzero(a) == 25 and torch.count_nonzero(b) == 25
    assert torch.equal(a[layer.loc_A[0], layer.loc_A[1]], layer.coef_A)
    assert abs(a.abs().max().item()) <= 1 / math.sqrt(20)  # LoRA's Kaiming-uniform bound
    assert RandomMaskLoRALinear.to_dense is not FoRALinear.to_dense


def test_random_mask_with_full_budget_is_lora():
    layer = _layer(RandomMaskLoRALinear, d_out=6, d_in=5, n=1000, r=2)
    assert layer.coef_A.numel() == 10 and layer.coef_B.numel() == 12  # every entry: plain LoRA


# --- DFoRA -------------------------------------------------------------------------------------
def test_dfora_initial_magnitude_and_count():
    layer = _layer(DFoRALinear, d_out=12, d_in=10, n=20, r=3)
    torch.testing.assert_close(layer.magnitude.detach(), layer.base_layer.weight.norm(dim=1))
    assert layer.magnitude.numel() == 12


class _OneLinear(nn.Module):
    def __init__(self, lin):
        super().__init__()
        self.proj = lin

    def forward(self, x):
        return self.proj(x)


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_dfora_with_lora_update_equals_peft_dora(dropout):
    """DFoRA's decomposition with the FoRA factors swapped for LoRA's ones is peft's DoRA."""
    torch.manual_seed(0)
    base = nn.Linear(10, 12).double()
    peft_model = get_peft_model(
        _OneLinear(nn.Linear(10, 12).double()),
        LoraConfig(r=3, lora_alpha=5.0, lora_dropout=dropout, target_modules=["proj"], use_dora=True),
    )
    peft_layer = peft_model.base_model.model.proj
    with torch.no_grad():
        peft_layer.base_layer.weight.copy_(base.weight)
        peft_layer.base_layer.bias.copy_(base.bias)
        peft_layer.lora_B["default"].weight.normal_()
        peft_layer.lora_magnitude_vector["default"].weight.mul_(1.3)
    layer = DFoRALinear(base, n=7, r=3, alpha=5.0, dropout=dropout, generator=torch.Generator().manual_seed(0))
    lora_a, lora_b = peft_layer.lora_A["default"].weight, peft_layer.lora_B["default"].weight
    layer.factors = lambda: (lora_a, lora_b)  # the LoRA update in place of FoRA's
    with torch.no_grad():
        layer.magnitude.copy_(peft_layer.lora_magnitude_vector["default"].weight)
    x = torch.randn(4, 10, dtype=torch.float64)
    for training in (False, True):
        layer.train(training), peft_model.train(training)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(7)
            ours = layer(x)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(7)
            theirs = peft_model(x)
        torch.testing.assert_close(ours, theirs, atol=1e-12, rtol=0)
        g_ours = torch.autograd.grad(ours.sum(), [layer.magnitude, lora_a, lora_b])
        g_theirs = torch.autograd.grad(
            theirs.sum(), [peft_layer.lora_magnitude_vector["default"].weight, lora_a, lora_b]
        )
        for go, gt in zip(g_ours, g_theirs):
            torch.testing.assert_close(go, gt, atol=1e-12, rtol=0)
    # merged weights agree too
    layer.eval(), peft_model.eval()
    with torch.no_grad():
        layer.merge()
        peft_model.merge_adapter()
        torch.testing.assert_close(layer.base_layer.weight, peft_layer.base_layer.weight, atol=1e-12, rtol=0)


# --- counts at the papers' shapes, without weights ---------------------------------------------
@pytest.mark.parametrize(
    "size, method, hparams, count",
    [
        ("base", "fora", {"n": 500, "r": 32}, 24_000),  # FoRA Table 1: 0.024M
        ("base", "fora", {"n": 250, "r": 256}, 12_000),  # FoRA†: 0.012M
        ("large", "fora", {"n": 500, "r": 32}, 48_000),  # 0.048M
        ("large", "fora", {"n": 250, "r": 32}, 24_000),  # 0.024M
        ("base", "lora_random_mask", {"n": 500, "r": 8}, 24_000),  # Table 10: Mask = FoRA's budget
        ("base", "dfora", {"n": 500, "r": 8}, 24_000 + 24 * 768),
    ],
)
def test_paper_counts_roberta(size, method, hparams, count):
    adapted = apply_method(helpers.meta_roberta(size), method, hparams, target_modules=["query", "value"])
    assert adapted.num_trainable() == count


@pytest.mark.parametrize(
    "variant, method, count",
    [
        ("llama2-7b", "fora", 2_560_000),  # FoRA Table 2: 2.56M
        ("llama2-7b", "dfora", 2_560_000 + 32 * (4096 + 4096)),  # 2.82M
        ("llama3-8b", "dfora", 2_560_000 + 32 * (4096 + 1024)),  # 2.72M (v_proj: 8 KV heads)
    ],
)
def test_paper_counts_llama_meta(variant, method, count):
    model = helpers.meta_llama(variant)
    adapted = apply_method(model, method, {"n": 20000, "r": 256}, target_modules=["q_proj", "v_proj"], head_modules=())
    assert adapted.num_trainable() == count
