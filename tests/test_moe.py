"""FourierMoE (003) and FRAME (002): adapters/moe.py and the fractional Fourier transforms of
adapters/fractional.py. Tiny models are built from configs here (no download)."""
from __future__ import annotations

import math

import pytest
import torch
import transformers
from torch import nn

from adapters.fractional import dfrft, frft
from adapters.moe import FourierMoEConfig, FourierMoELinear, FRAMELinear, TopKRouter, half_spectrum_columns
from adapters.registry import MethodConfigError, apply_method, available_methods, get_method
from adapters.spectral import spectral_to_dense

TARGETS = ["query", "value", "intermediate.dense"]  # 32x32 and 64x32 (rectangular) Linears
HP = {
    "fourier_moe": dict(num_experts=4, top_k=2, n=24),
    "frame": dict(num_experts=4, top_k=2, r=4),
}
METHODS = list(HP)


# --- tiny models ----------------------------------------------------------------------------------
def tiny_roberta(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    cfg = transformers.RobertaConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=40, num_labels=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )
    return transformers.RobertaForSequenceClassification(cfg).eval()


def tiny_llama(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    cfg = transformers.LlamaConfig(
        vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=40,
    )
    return transformers.LlamaForCausalLM(cfg).eval()


def batch(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(3, 100, (3, 7), generator=g), torch.tensor([0, 1, 1])


def adapt(method: str, seed: int = 0, model_seed: int = 0, **over):
    model = tiny_roberta(model_seed)
    return model, apply_method(model, method, {**HP[method], **over}, target_modules=TARGETS, seed=seed)


@torch.no_grad()
def perturb(adapted, seed: int = 7) -> None:
    """Move the zero-initialised half of every expert so that all parameters matter."""
    g = torch.Generator().manual_seed(seed)
    for layer in adapted.adapter_layers():
        if isinstance(layer, FourierMoELinear):
            c = layer.coefficients
            re = torch.randn(c.shape, generator=g)
            c.copy_(torch.complex(re, torch.randn(c.shape, generator=g)) if c.is_complex() else re)
        else:
            layer.lora_B.copy_(0.1 * torch.randn(layer.lora_B.shape, generator=g))


def loss_of(adapted, ids, labels):
    out = adapted.model(ids).logits
    return nn.functional.cross_entropy(out, labels) + sum(adapted.extra_losses().values())


def optimizer(adapted):
    groups = adapted.param_groups()
    return torch.optim.AdamW(
        [{"params": v, "lr": 0.1 if k == "orders" else 1e-2, "weight_decay": 0.0 if k == "orders" else 0.01}
         for k, v in groups.items()]
    )


# --- registry, shared behaviour -----------------------------------------------------------------
def test_registered_not_mergeable():
    assert {"fourier_moe", "frame"} <= set(available_methods())
    for m in METHODS:
        assert get_method(m).mergeable is False
        _, ad = adapt(m)
        with pytest.raises(MethodConfigError):
            ad.merge()


@pytest.mark.parametrize("method", METHODS)
def test_zero_init_output_unchanged(method):
    ids, _ = batch()
    with torch.no_grad():
        ref = tiny_roberta()(ids).logits
        _, ad = adapt(method)
        assert torch.equal(ad.model(ids).logits, ref)


@pytest.mark.parametrize("method", METHODS)
def test_forward_backward_only_adapter_and_head_get_grads(method):
    _, ad = adapt(method)
    perturb(ad)
    ids, labels = batch()
    loss_of(ad, ids, labels).backward()
    trainable = {id(p) for _, p in ad.trainable_parameters(include_head=True)}
    for name, p in ad.model.named_parameters():
        if id(p) in trainable:
            assert p.grad is not None and torch.isfinite(torch.view_as_real(p.grad) if p.is_complex() else p.grad).all(), name
            assert p.grad.abs().sum() > 0, name
        else:
            assert p.grad is None, name
    names = {n.rsplit(".", 1)[-1] for n, _ in ad.trainable_parameters()}
    expected = {"fourier_moe": {"weight", "coefficients"}, "frame": {"weight", "lora_A", "lora_B", "orders"}}[method]
    assert names == expected  # gate.weight + the method's own


@pytest.mark.parametrize("method", METHODS)
def test_adamw_step_leaves_base_bitwise_unchanged(method):
    _, ad = adapt(method)
    trainable = {id(p) for _, p in ad.trainable_parameters(include_head=True)}
    frozen = {n: p.detach().clone() for n, p in ad.model.named_parameters() if id(p) not in trainable}
    before = {n: p.detach().clone() for n, p in ad.trainable_parameters()}
    opt = optimizer(ad)
    ids, labels = batch()
    loss_of(ad, ids, labels).backward()
    opt.step()
    for n, p in ad.model.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), n
    assert any(not torch.equal(p, before[n]) for n, p in ad.trainable_parameters())


@pytest.mark.parametrize("method", METHODS)
def test_load_balance_loss(method):
    _, ad = adapt(method, lambda_balance=0.5)
    ids, labels = batch()
    ad.model(ids)
    losses = ad.extra_losses()
    assert set(losses) == {"moe_load_balance"}
    lb = losses["moe_load_balance"]
    assert torch.isfinite(lb) and lb.requires_grad
    per_layer = [layer.router.last_balance_loss for layer in ad.adapter_layers()]
    assert torch.allclose(lb, 0.5 * sum(per_layer))
    lb.backward()
    for layer in ad.adapter_layers():
        assert layer.router.gate.weight.grad.abs().sum() > 0
    _, ad0 = adapt(method, lambda_balance=0.0)
    ad0.model(ids)
    assert ad0.extra_losses() == {}


def test_router_balance_is_one_when_uniform():
    router = TopKRouter(8, 4, 2, features="token", generator=torch.Generator().manual_seed(0), dtype=torch.float32)
    with torch.no_grad():
        router.gate.weight.zero_()
    idx, w = router(torch.randn(10, 8))
    assert idx.shape == w.shape == (10, 2)
    assert torch.allclose(w.sum(-1), torch.ones(10))
    assert torch.isclose(router.last_balance_loss, torch.tensor(1.0))


@pytest.mark.parametrize("method", METHODS)
def test_save_load_roundtrip(method, tmp_path):
    _, ad = adapt(method, seed=0)
    perturb(ad)
    opt = optimizer(ad)
    ids, labels = batch()
    loss_of(ad, ids, labels).backward()
    opt.step()
    path = tmp_path / "adapter.safetensors"
    ad.save(path)
    _, ad2 = adapt(method, seed=123)  # other locations / inits, same base weights
    with torch.no_grad():
        assert not torch.equal(ad2.model(ids).logits, ad.model(ids).logits)
        ad2.load(path)
        assert torch.equal(ad2.model(ids).logits, ad.model(ids).logits)


@pytest.mark.parametrize("method", METHODS)
def test_llama_smoke(method):
    model = tiny_llama()
    ad = apply_method(model, method, HP[method], target_modules=["q_proj", "v_proj", "down_proj"],
                      head_modules=("lm_head",), seed=0)
    perturb(ad)
    ids, _ = batch()
    out = model(ids, labels=ids)
    (out.loss + sum(ad.extra_losses().values())).backward()
    assert all(p.grad is not None for _, p in ad.trainable_parameters())


def test_config_errors():
    with pytest.raises(MethodConfigError, match="top_k"):
        adapt("fourier_moe", top_k=5)
    with pytest.raises(MethodConfigError, match="top_k"):
        adapt("frame", top_k=0)
    with pytest.raises(MethodConfigError, match="admissible"):
        adapt("fourier_moe", n=32 * 15 + 1)  # 32 x 32 query: 32 rows x columns 1..15
    with pytest.raises(MethodConfigError, match="per band"):
        adapt("fourier_moe", n=121, locations="banded")  # 480 / 4 = 120 per band
    odd = nn.Sequential()
    odd.add_module("proj", nn.Linear(31, 30))
    odd.add_module("classifier", nn.Linear(30, 2))
    with pytest.raises(MethodConfigError, match="even"):
        apply_method(odd, "frame", HP["frame"], target_modules=["proj"])
    apply_method(odd, "frame", {**HP["frame"], "transform": "dfrft"}, target_modules=["proj"])


# --- FourierMoE ---------------------------------------------------------------------------------
def fmoe_layer(which: int = 0, **over) -> FourierMoELinear:
    _, ad = adapt("fourier_moe", **over)
    perturb(ad)
    return ad.adapter_layers()[which]


def test_fourier_moe_delta_is_real_by_construction():
    """irfft2 of the half spectrum == ifft2 of the explicitly conjugate-symmetrised full spectrum,
    whose imaginary part is rounding only: real by construction, not by dropping Im."""
    for layer in (fmoe_layer(), fmoe_layer(which=1, n=100), fmoe_layer(which=2)):  # 32x32, 32x32, 64x32
        d_out, d_in = layer.out_features, layer.in_features
        cols = half_spectrum_columns(d_in)
        for e in range(layer.coefficients.shape[0]):
            c, (u, v) = layer.coefficients[e].detach(), layer.locations[e]
            assert ((v >= cols[0]) & (v <= cols[-1])).all()
            assert len(set(zip(u.tolist(), v.tolist()))) == c.numel()
            full = torch.zeros(d_out, d_in, dtype=torch.complex128)
            full[u, v] = c.to(torch.complex128)
            full[(-u) % d_out, (-v) % d_in] = c.conj().to(torch.complex128)
            ref = torch.fft.ifft2(full)
            dw = layer.expert_delta(e).detach()
            assert dw.dtype == torch.float32
            scale = ref.real.abs().max()
            assert ref.imag.abs().max() <= 1e-12 * scale  # float64: ~1e-17
            assert (dw.double() - ref.real).abs().max() <= 1e-6 * scale  # float32 rounding
            # phase matters (Prop. 3.1): the imaginary parts alone give a non-zero update
            im_only = spectral_to_dense(1j * c.imag, layer.locations[e], (d_out, d_in), hermitian=True)
            assert im_only.abs().max() > 1e-3 * scale


def test_fourier_moe_matches_dense_formula():
    layer = fmoe_layer()
    x = torch.randn(2, 5, layer.in_features)
    with torch.no_grad():
        out = layer(x)
        flat = x.reshape(-1, layer.in_features)
        idx, w = layer.router(flat)
        per_expert = torch.stack([flat @ layer.expert_delta(e).T for e in range(4)])  # Z, T, d_out
        t = torch.arange(flat.shape[0])
        upd = sum(w[:, j, None] * per_expert[idx[:, j], t] for j in range(idx.shape[1]))
        ref = layer.base_layer(x) + layer.scaling * upd.reshape(2, 5, -1)
    assert torch.allclose(out, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("coefficients", ["complex", "real"])
@pytest.mark.parametrize("shape", [(32, 32), (30, 31), (48, 20)])
def test_fourier_moe_spectral_mixture_equals_dense_products_with_gradients(shape, coefficients):
    """The layer applies dW_e through token spectra (never building it); outputs and the gradients
    of the input, the coefficients and the router equal the products with the irfft2-built dW_e
    (float64; odd and non-square shapes)."""
    d_out, d_in = shape
    base = nn.Linear(d_in, d_out, dtype=torch.float64).requires_grad_(False)
    cfg = FourierMoEConfig(num_experts=4, top_k=2, n=12, coefficients=coefficients)
    layer = FourierMoELinear(base, cfg, torch.Generator().manual_seed(3), "proj")
    with torch.no_grad():
        layer.coefficients.copy_(torch.randn(layer.coefficients.shape, dtype=layer.coefficients.dtype))
    x = torch.randn(3, 7, d_in, dtype=torch.float64, requires_grad=True)
    g = torch.randn(3, 7, d_out, dtype=torch.float64)
    params = (x, layer.coefficients, layer.router.gate.weight)

    def dense():
        flat = x.reshape(-1, d_in)
        idx, w = layer.router(flat)
        per_expert = torch.stack([flat @ layer.expert_delta(e).T for e in range(4)])
        t = torch.arange(flat.shape[0])
        upd = sum(w[:, j, None] * per_expert[idx[:, j], t] for j in range(2))
        return base(x) + layer.scaling * upd.reshape(3, 7, d_out)

    results = []
    for forward in (lambda: layer(x), dense):
        out = forward()
        results.append((out.detach(), *torch.autograd.grad(out, params, g)))
    for ours, ref in zip(*results):
        assert torch.allclose(ours, ref, atol=1e-10 * ref.abs().max().item(), rtol=0)


@pytest.mark.parametrize("router_input", ["spectrum", "token"])
def test_fourier_moe_trainable_count(router_input):
    _, ad = adapt("fourier_moe", router_input=router_input)
    z, n = HP["fourier_moe"]["num_experts"], HP["fourier_moe"]["n"]
    feat = 32 // 2 + 1 if router_input == "spectrum" else 32  # every target has d_in = 32
    assert ad.num_trainable() == len(ad.adapter_layers()) * (z * feat + z * n)
    assert len(ad.adapter_layers()) == 6


def test_fourier_moe_location_modes():
    """Default 'banded' (003: experts "specialized in distinct frequency bands"): expert e's locations
    all lie at radial frequencies no higher than expert e+1's; 'per_expert' (random) and 'shared' stay
    as ablations."""
    assert FourierMoEConfig().locations == "banded"
    assert torch.equal(fmoe_layer().locations, fmoe_layer(locations="banded").locations)
    per = fmoe_layer(locations="per_expert").locations
    assert per.shape == (4, 2, 24)
    assert not torch.equal(per[0], per[1])
    assert torch.equal(per, fmoe_layer(locations="per_expert").locations)  # same seed, same adapter
    assert not torch.equal(per, fmoe_layer(locations="per_expert", seed=1).locations)
    shared = fmoe_layer(locations="shared").locations
    assert all(torch.equal(shared[0], shared[e]) for e in range(4))
    band = fmoe_layer().locations
    assert not torch.equal(band, fmoe_layer(seed=1).locations)  # seeded draws inside each band
    u, v = band[:, 0].double(), band[:, 1].double()
    radius = torch.hypot(torch.minimum(u, 32 - u) / 32, v / 32)
    for e in range(3):
        assert radius[e].max() <= radius[e + 1].min()


def test_fourier_moe_real_coefficients_ablation(tmp_path):
    """coefficients='real' (Prop. 3.1's b = 0): real parameters, half the real numbers, zero update
    at init, gradients reach them, and dW_e is the (even) irfft2 of the real values placed by hand."""
    _, cplx = adapt("fourier_moe")
    _, real = adapt("fourier_moe", coefficients="real")

    def reals(ad):  # real numbers held by the coefficients (a complex number is two)
        return sum(torch.view_as_real(p).numel() if p.is_complex() else p.numel()
                   for n, p in ad.trainable_parameters() if n.endswith("coefficients"))

    assert all(l.coefficients.dtype == torch.float32 for l in real.adapter_layers())
    assert reals(real) * 2 == reals(cplx) > 0
    assert real.num_trainable() == cplx.num_trainable()  # numel: one per coefficient either way
    ids, labels = batch()
    with torch.no_grad():
        assert torch.equal(real.model(ids).logits, tiny_roberta()(ids).logits)
    loss_of(real, ids, labels).backward()
    for layer in real.adapter_layers():
        g = layer.coefficients.grad
        assert g is not None and not g.is_complex() and g.abs().sum() > 0
    perturb(real)
    for layer in real.adapter_layers():
        d_out, d_in = layer.out_features, layer.in_features
        for e in range(layer.coefficients.shape[0]):
            (u, v), c = layer.locations[e], layer.coefficients[e].detach().double()
            half = torch.zeros(d_out, d_in // 2 + 1, dtype=torch.complex128)
            half[u, v] = c.to(torch.complex128)
            ref = torch.fft.irfft2(half, s=(d_out, d_in))
            dw = layer.expert_delta(e).detach()
            assert dw.dtype == torch.float32
            assert torch.allclose(dw.double(), ref, atol=1e-6 * ref.abs().max().item())
            mirrored = ref.roll((-1, -1), (0, 1)).flip(0, 1)  # dW[-j, -k]: no phase, an even function
            assert torch.allclose(mirrored, ref, atol=1e-12)
    path = tmp_path / "adapter.safetensors"
    real.save(path)
    _, again = adapt("fourier_moe", seed=123, coefficients="real")
    again.load(path)
    with torch.no_grad():
        assert torch.equal(again.model(ids).logits, real.model(ids).logits)


def test_fourier_moe_bad_coefficients_value():
    with pytest.raises(MethodConfigError, match="'coefficients' must be one of 'complex', 'real'"):
        adapt("fourier_moe", coefficients="imaginary")


# --- FRAME ----------------------------------------------------------------------------------------
def frame_layer(orders=None, **over) -> FRAMELinear:
    _, ad = adapt("frame", **over)
    perturb(ad)
    layer = next(l for l in ad.adapter_layers() if l.out_features != l.in_features)  # 64 x 32
    if orders is not None:
        with torch.no_grad():
            layer.orders.fill_(orders)
    return layer


def moe_reference(layer: FRAMELinear, x: torch.Tensor, expert) -> torch.Tensor:
    """base(x) + scaling * sum_j w_j expert(idx_j, x), every expert evaluated densely."""
    idx, w = layer.router(x)
    per_expert = torch.stack([expert(e, x) for e in range(layer.lora_A.shape[0])])
    t = torch.arange(x.shape[0])
    upd = sum(w[:, j, None] * per_expert[idx[:, j], t] for j in range(idx.shape[1]))
    return layer.base_layer(x) + layer.scaling * upd


@pytest.mark.parametrize("transform", ["chirp", "dfrft"])
def test_frame_order0_is_lora_and_order1_is_fourier(transform):
    x = torch.randn(9, 32)
    with torch.no_grad():
        layer = frame_layer(orders=0.0, transform=transform)
        lora = moe_reference(layer, x, lambda e, xe: xe @ layer.lora_A[e].T @ layer.lora_B[e].T)
        assert torch.allclose(layer(x), lora, atol=1e-6, rtol=1e-5)
        layer.orders.fill_(1.0)

        def fourier(e, xe):
            z = torch.fft.fft(xe, norm="ortho") @ layer.lora_A[e].T.to(torch.complex64)
            return torch.fft.ifft(z @ layer.lora_B[e].T.to(torch.complex64), norm="ortho").real

        assert torch.allclose(layer(x), moe_reference(layer, x, fourier), atol=1e-6, rtol=1e-5)
        assert not torch.allclose(layer(x), lora, atol=1e-3)


@pytest.mark.parametrize("transform", ["chirp", "dfrft"])
def test_frame_factor_form_equals_token_form(transform):
    """The layer transforms the factors (A F_a, F_-a B); the literal per-token formula
    Re(F_-a B A F_a x) gives the same output (F_a is symmetric)."""
    f = {"chirp": frft, "dfrft": dfrft}[transform]
    layer = frame_layer(transform=transform)
    with torch.no_grad():
        layer.orders.copy_(torch.tensor([0.3, -0.45, 0.8, 1.7]))
        x = torch.randn(9, 32)

        def literal(e, xe):
            a = layer.orders[e]
            z = f(xe, a) @ layer.lora_A[e].T.to(torch.complex64)
            return f(z @ layer.lora_B[e].T.to(torch.complex64), -a).real

        assert torch.allclose(layer(x), moe_reference(layer, x, literal), atol=1e-5, rtol=1e-4)


def test_frame_orders_group_and_gradient():
    _, ad = adapt("frame", top_k=4)  # every expert sees every token
    perturb(ad)
    groups = ad.param_groups()
    orders = [l.orders for l in ad.adapter_layers()]
    assert [id(p) for p in groups["orders"]] == [id(p) for p in orders]
    assert not {id(p) for p in groups["adapter"]} & {id(p) for p in orders}
    assert sum(p.numel() for p in groups["orders"]) == 4 * len(orders)
    assert torch.equal(orders[0].detach(), torch.tensor([0.125, 0.375, 0.625, 0.875]))  # (e + 1/2) / Z
    ids, labels = batch()
    loss_of(ad, ids, labels).backward()
    for p in orders:
        assert torch.isfinite(p.grad).all() and (p.grad != 0).all()


def _order_grads(ad) -> list[torch.Tensor]:
    for p in ad.model.parameters():
        p.grad = None
    ids, labels = batch()
    loss_of(ad, ids, labels).backward()
    return [layer.orders.grad.detach().clone() for layer in ad.adapter_layers()]


@pytest.mark.parametrize("transform", ["chirp", "dfrft"])
def test_frame_even_integer_orders_are_stationary(transform):
    """Why the orders never start at 0: Re(F_-a B A F_a x) is even in a and F_a is 4-periodic, so the
    gradient of every order vanishes at 0 and 2 (not at the odd integers), whatever B and A are."""
    _, ad = adapt("frame", top_k=4, transform=transform)
    perturb(ad)
    typical = torch.cat(_order_grads(ad)).abs().median()
    assert typical > 1e-6
    for order, stationary in [(0.0, True), (2.0, True), (-2.0, True), (1.0, False), (-1.0, False)]:
        with torch.no_grad():
            for layer in ad.adapter_layers():
                layer.orders.fill_(order)
        largest = torch.cat(_order_grads(ad)).abs().max()
        assert (largest < 1e-5 * typical) if stationary else (largest > 1e-2 * typical), (order, largest, typical)


@pytest.mark.parametrize("transform", ["chirp", "dfrft"])
def test_frame_every_order_gets_a_gradient_once_b_moves(transform):
    _, ad = adapt("frame", top_k=4, transform=transform)  # every expert sees every token
    assert all(torch.equal(g, torch.zeros(4)) for g in _order_grads(ad))  # B = 0: no signal yet
    perturb(ad)
    for g in _order_grads(ad):  # per layer: no expert's order is (near) stationary
        assert (g.abs() > 1e-3 * g.abs().max()).all(), g


def test_frame_orders_move_in_training():
    """AdamW from the default init (B = 0): the first step moves B, then every order moves."""
    _, ad = adapt("frame", top_k=4)
    start = [layer.orders.detach().clone() for layer in ad.adapter_layers()]
    opt = optimizer(ad)  # orders: lr 0.1
    ids, labels = batch()
    for _ in range(5):
        opt.zero_grad()
        loss_of(ad, ids, labels).backward()
        opt.step()
    for layer, a0 in zip(ad.adapter_layers(), start):
        assert ((layer.orders.detach() - a0).abs() > 1e-4).all(), (a0, layer.orders)  # float32 ulp here: ~6e-8


@pytest.mark.parametrize("init_order", [0.0, 2.0, -4.0, 0])
def test_frame_rejects_a_stationary_init_order(init_order):
    with pytest.raises(MethodConfigError, match="init_order.*even integer"):
        adapt("frame", init_order=init_order)


def test_frame_init_order_float_starts_every_order_there():
    _, ad = adapt("frame", init_order=0.3)
    for layer in ad.adapter_layers():
        assert torch.equal(layer.orders.detach(), torch.full((4,), 0.3))
    _, one = adapt("frame", num_experts=1, top_k=1)
    assert torch.equal(one.adapter_layers()[0].orders.detach(), torch.tensor([0.5]))


@pytest.mark.parametrize("transform", ["chirp", "dfrft"])
def test_frame_resolved_config_names_the_transform(transform):
    hp = {} if transform == "chirp" else {"transform": transform}
    _, ad = adapt("frame", **hp)
    assert ad.resolved_hparams()["transform"] == transform  # the default is recorded too
    assert {layer.transform_name for layer in ad.adapter_layers()} == {transform}


def test_frame_trainable_count():
    _, ad = adapt("frame")
    z, r = 4, 4
    per = {(32, 32): z * 32 + z * r * 64 + z, (64, 32): z * 32 + z * r * 96 + z}
    assert ad.num_trainable() == sum(per[(l.out_features, l.in_features)] for l in ad.adapter_layers())


# --- fractional Fourier transforms (float64 unless stated) ---------------------------------------
ORDERS = [0.1, 0.3, 0.5, 0.77, -0.6, 1.4, 2.5]
PAIRS = [(0.3, 0.4), (0.5, 0.5), (0.25, 0.9), (-0.7, 0.2), (1.3, 0.6)]


def white(d, batch_size=16, dtype=torch.float64):
    return torch.randn(batch_size, d, generator=torch.Generator().manual_seed(d), dtype=dtype)


def disc_limited(d, batch_size=16):
    """Gaussian-enveloped low-order polynomials on u = n / sqrt(d): time-frequency support well inside
    the disc inscribed in the sqrt(d) x sqrt(d) grid (the chirp method's validity domain)."""
    u = torch.fft.fftfreq(d, d=1.0 / d, dtype=torch.float64) / math.sqrt(d)
    basis = torch.stack([u**k for k in range(6)]) * torch.exp(-math.pi * u**2)
    return torch.randn(batch_size, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64) @ basis


def rel(a, b, x):
    return ((a - b).norm(dim=-1) / x.norm(dim=-1)).max().item()


@pytest.mark.parametrize("f", [frft, dfrft])
@pytest.mark.parametrize("d", [32, 64])
def test_frft_special_orders(f, d):
    x = white(d).to(torch.complex128)
    dft, idft = torch.fft.fft(x, norm="ortho"), torch.fft.ifft(x, norm="ortho")
    parity = torch.roll(torch.flip(x, [-1]), 1, -1)
    for order, ref in [(0.0, x), (1.0, dft), (2.0, parity), (3.0, idft), (-1.0, idft), (4.0, x), (-4.0, x)]:
        assert rel(f(x, order), ref, x) < 1e-12, order


@pytest.mark.parametrize("f", [frft, dfrft])
def test_frft_unitary_on_any_input(f):
    for dtype, tol in [(torch.float64, 1e-12), (torch.float32, 1e-5)]:
        x = white(64, dtype=dtype)
        for a in ORDERS:
            assert (f(x, a).norm(dim=-1) / x.norm(dim=-1) - 1).abs().max() < tol, (dtype, a)


def test_dfrft_additive_on_any_input():
    x = white(64)
    for a, b in PAIRS:
        assert rel(dfrft(dfrft(x, a), b), dfrft(x, a + b), x) < 1e-12


def test_frft_chirp_additive_on_disc_limited_inputs():
    x = disc_limited(64)
    for a, b in PAIRS:
        assert rel(frft(frft(x, a), b), frft(x, a + b), x) < 1e-10
    x32 = disc_limited(32)  # the disc barely fits at d = 32
    for a, b in PAIRS:
        assert rel(frft(frft(x32, a), b), frft(x32, a + b), x32) < 1e-4


def test_frft_chirp_inverse_symmetric_and_not_additive_on_white_noise():
    """What holds for every input (F_-a F_a = I, F_a^T = F_a) and the documented limitation:
    on white-noise vectors the chirp method is NOT additive (relative error O(1))."""
    x = white(64)
    eye = torch.eye(64, dtype=torch.float64)
    for a in ORDERS:
        assert rel(frft(frft(x, a), -a), x.to(torch.complex128), x) < 1e-12
        m = frft(eye, a)
        assert (m - m.T).abs().max() < 1e-12
    errors = [rel(frft(frft(x, a), b), frft(x, a + b), x) for a, b in PAIRS]
    assert 0.3 < max(errors) < 1.5  # the range stated in frft's docstring


def test_frft_chirp_close_to_dfrft_on_disc_limited_inputs():
    x = disc_limited(64)
    for a in ORDERS:
        assert rel(frft(x, a), dfrft(x, a), x) < 0.05  # measured 0.5-3 % at d = 64


@pytest.mark.parametrize("f", [frft, dfrft])
def test_frft_order_gradient(f):
    x, w = white(32), white(32, batch_size=32).reshape(2, 16, 32)
    for a0 in [0.0, 0.5, 1.0, 1.7, -1.0]:
        a = torch.tensor(a0, dtype=torch.float64, requires_grad=True)
        y = f(x, a)
        (g,) = torch.autograd.grad((y.real * w[0]).sum() + (y.imag * w[1]).sum(), a)
        assert torch.isfinite(g) and g.abs() > 1e-6, a0
