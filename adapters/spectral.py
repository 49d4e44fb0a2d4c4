"""The shared spectral primitive: sparse coefficients at spectral locations -> real dense matrix.

FoRA (004 eq. 3-4), LFMA (001 eq. 2) and FourierMoE (003 Thm. 3.2) all build a weight (or a
factor of one) as the inverse 2-D DFT of a spectrum that is zero except at a few locations.
They call :func:`spectral_to_dense`; nothing else in ``adapters/`` calls ``torch.fft`` on a
weight spectrum.
"""
from __future__ import annotations

import torch


def random_locations(shape: tuple[int, int], n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` distinct (row, col) locations drawn uniformly from a ``shape`` spectrum, as a 2 x n
    long tensor. ``n`` larger than the spectrum is clipped to its size (every location)."""
    rows, cols = shape
    n = min(n, rows * cols)
    flat = torch.randperm(rows * cols, generator=generator)[:n]
    return torch.stack([flat // cols, flat % cols])


def spectral_to_dense(
    coeffs: torch.Tensor,
    locations: torch.Tensor,
    shape: tuple[int, int],
    *,
    hermitian: bool = False,
) -> torch.Tensor:
    """Scatter ``coeffs`` (real or complex, length n) at ``locations`` (2 x n) into a zero
    spectrum of ``shape`` and return the real spatial matrix.

    ``hermitian=False``: Re(ifft2(F)), the definition of FoRA eq. (3)-(4) and LFMA eq. (2)
    (``torch.fft`` 'backward' norm, i.e. the 1/(d1 d2) factor of eq. 3).
    ``hermitian=True``: the coefficients fill the half-spectrum of ``torch.fft.irfft2``; the
    implied full spectrum is conjugate-symmetric, so the inverse DFT is real by construction, not
    by discarding an imaginary part (FourierMoE, 003 Thm. 3.2). Callers place locations in
    columns 1 .. ceil(d2/2)-1: column 0 and the Nyquist column are their own mirror, where
    ``irfft2`` keeps only the symmetric part (a coefficient there is halved, or loses its
    imaginary part), so the one-to-one map from coefficients to weights holds only off them.
    """
    rows, cols = shape
    dtype = coeffs.dtype if coeffs.is_complex() else torch.complex64 if coeffs.dtype != torch.float64 else torch.complex128
    if hermitian:
        half = torch.zeros(rows, cols // 2 + 1, dtype=dtype, device=coeffs.device)
        half.index_put_((locations[0], locations[1]), coeffs.to(dtype))  # in place: no second spectrum
        return torch.fft.irfft2(half, s=(rows, cols))
    spectrum = torch.zeros(rows, cols, dtype=dtype, device=coeffs.device)
    spectrum.index_put_((locations[0], locations[1]), coeffs.to(dtype))
    return torch.fft.ifft2(spectrum).real


# --- fractional Fourier transform (FRAME, 002) ---------------------------------------------------
# Appended for FRAME; the functions above are untouched. Both transforms below act on one axis of a
# tensor, have F_0 = identity, F_1 = torch.fft.fft(norm="ortho") (the unitary DFT, exp(-2 pi i k n / d)),
# F_2 = parity x[-n mod d], F_3 = F_-1 = the unitary inverse DFT, period 4, and are differentiable with
# respect to the order. They differ in cost and in which group laws hold exactly.
import functools as _functools
import math as _math


def _complex_dtype(x: torch.Tensor) -> torch.dtype:
    if x.is_complex():
        return x.dtype
    return torch.complex128 if x.dtype == torch.float64 else torch.complex64


def _order64(order, device) -> torch.Tensor:
    """The order as a float64 0-dim tensor (a Python float is not rounded to float32 first)."""
    if isinstance(order, torch.Tensor):
        return order.to(device=device, dtype=torch.float64)
    return torch.tensor(float(order), dtype=torch.float64, device=device)


def _parity(x: torch.Tensor) -> torch.Tensor:
    """x[-n mod d] along the last axis (= F_2)."""
    return torch.roll(torch.flip(x, [-1]), 1, -1)


def frft(x: torch.Tensor, order, dim: int = -1) -> torch.Tensor:
    """Fractional Fourier transform ``F_a x`` of order ``a = order`` along ``dim``, O(d log d).

    Chirp-FFT algorithm in the spirit of Ozaktas, Arikan, Kutay & Bozdagi (IEEE TSP 1996): the
    continuous kernel factorises as chirp multiplication, chirp convolution, chirp multiplication,

        F_a = exp(i phi / 2) * M_t  C_s  M_t,   phi = a pi / 2,  t = tan(phi / 2),  s = sin(phi),
        M_t = diag(exp(-i pi t n^2 / d)),       C_s = IDFT diag(exp(-i pi s k^2 / d)) DFT,

    on the sample grid u_n = n / sqrt(d) with the signed (circularly centred) index
    n, k in {0, .., d/2-1, -d/2, .., -1}. ``a`` is first reduced to [-1, 1] with the exact
    F_{a} = F_{a - 2q} F_2^q, so |t| <= 1 and nothing is singular (Ozaktas' spatial chirp
    exp(i pi csc(phi) u^2) is singular at integer orders; its Fourier-side form exp(-i pi s k^2 / d)
    used here is not).

    Our departures from Ozaktas et al., and why: the chirp convolution is circular, done by two
    FFTs of length d with the chirp's analytic spectrum, instead of a linear convolution on a
    2x sinc-interpolated grid followed by decimation. Consequences (measured with orders in
    [-0.7, 2.5], d = 32..1024; tests/test_moe.py asserts them):
      * every factor is unitary, so F_a is unitary for EVERY input: | ||F_a x|| / ||x|| - 1 | <= 1.3e-15
        in float64, <= 8e-7 in float32 (our prototype of Ozaktas' decimated version, not in the
        repo: 3-20 % norm error on white-noise inputs);
      * F_0 = I, F_{+-1} = (inverse) DFT, F_2 = parity hold to rounding (~1e-14) for even d, and
        F_{-a} = F_a^{-1} = conj(F_a), F_a^T = F_a, for every input.
        For odd d the chirp exp(-i pi n^2 / d) is not d-periodic and F_{+-1} is NOT the DFT
        (O(1) error at d = 31); use even d (every hidden size of the benchmark) or :func:`dfrft`;
      * additivity F_a F_b = F_{a+b} holds (relative error <= 3e-12 for d >= 64, <= 1e-15 for
        d >= 256, 2e-6 at d = 32; float32: 4e-7) for inputs whose time-frequency support lies in
        the disc inscribed in the sqrt(d) x sqrt(d) grid (Gaussian-enveloped, band-limited
        vectors), but NOT for arbitrary vectors: on white noise ||F_a F_b x - F_{a+b} x|| / ||x||
        is 0.9-1.0 at every d (Ozaktas' version: 0.3-0.8). No chirp method can do much better on a
        d-point grid (the rotated grid square does not fit in itself); the exact group on C^d is
        :func:`dfrft`, O(d^2). On disc-limited inputs ||frft - dfrft|| / ||x|| is 4.6 % (d = 32),
        2.1 % (64), 0.5 % (256), 0.16 % (768); on white noise the two are unrelated (~1.4).

    ``order``: float or a 0-dim real tensor (gradients flow to it). ``x``: real or complex; the
    result is complex (complex64 for float32 inputs, complex128 for float64). The chirp phases are
    computed in float64 (they reach ~pi d / 4 rad).
    """
    ctype = _complex_dtype(x)
    x = x.to(ctype).movedim(dim, -1)
    d = x.shape[-1]
    a = _order64(order, x.device)
    q = torch.round(a / 2)
    x = torch.where(torch.remainder(q, 2) != 0, _parity(x), x)  # no host sync
    phi = (a - 2 * q) * (_math.pi / 2)  # in [-pi/2, pi/2]
    n2 = torch.fft.fftfreq(d, d=1.0 / d, dtype=torch.float64, device=x.device) ** 2 / d
    chirp = torch.exp(-1j * _math.pi * torch.tan(phi / 2) * n2).to(ctype)
    kernel = torch.exp(-1j * _math.pi * torch.sin(phi) * n2).to(ctype)
    y = chirp * torch.fft.ifft(kernel * torch.fft.fft(chirp * x, norm="ortho"), norm="ortho")
    y = y * torch.exp(0.5j * phi).to(ctype)
    return y.movedim(-1, dim)


@_functools.lru_cache(maxsize=16)
def _dfrft_basis(d: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Candan-Kutay-Ozaktas (IEEE TSP 2000) discrete Hermite-Gaussians: eigenvectors (columns,
    float64, d x d) of the Dickinson-Steiglitz matrix S that commutes with the unitary DFT, and
    their Hermite indices k (0..d-2 and d for even d; 0..d-1 for odd d), ordered by decreasing
    eigenvalue inside the even and the odd subspace (the even/odd split keeps eigh robust)."""
    idx = torch.arange(d)
    S = torch.diag(2 * torch.cos(2 * _math.pi * idx.double() / d) - 4)
    S[idx, (idx + 1) % d] += 1
    S[idx, (idx - 1) % d] += 1
    r, even = d // 2, d % 2 == 0
    P = torch.zeros(d, d, dtype=torch.float64)  # orthogonal: rows 0..r even part, rest odd part
    P[0, 0] = 1.0
    h = 1 / _math.sqrt(2)
    for j in range(1, r + 1 - even):
        P[j, j] = P[j, d - j] = h
    if even:
        P[r, r] = 1.0
    for j in range(r + 1, d):
        P[j, j], P[j, d - j] = -h, h
    CS = P @ S @ P.T
    ne = r + 1
    ev, vv = torch.linalg.eigh(CS[:ne, :ne])
    ov, ow = torch.linalg.eigh(CS[ne:, ne:])
    vv = vv[:, torch.argsort(ev, descending=True)]
    ow = ow[:, torch.argsort(ov, descending=True)]
    even_vecs = P.T[:, :ne] @ vv
    odd_vecs = P.T[:, ne:] @ ow
    V = torch.cat([even_vecs, odd_vecs], 1)
    k = torch.cat([2 * torch.arange(ne), 2 * torch.arange(d - ne) + 1]).double()
    return V, k


def dfrft(x: torch.Tensor, order, dim: int = -1) -> torch.Tensor:
    """Exact discrete fractional Fourier transform (Candan, Kutay & Ozaktas 2000; Pei & Yeh 1997):
    ``F_a = V diag(exp(-i pi a k / 2)) V^T`` with the discrete Hermite-Gaussians V of
    :func:`_dfrft_basis`. Unitary and additive (F_a F_b = F_{a+b}) to rounding for every input
    and every d, F_1 = unitary DFT; O(d^2) per vector plus a cached O(d^3) eigendecomposition.
    The reference :func:`frft` is measured against; differentiable w.r.t. ``order``."""
    ctype = _complex_dtype(x)
    x = x.to(ctype).movedim(dim, -1)
    V, k = _dfrft_basis(x.shape[-1])
    V = V.to(device=x.device, dtype=ctype)
    a = _order64(order, x.device)
    phase = torch.exp(-0.5j * _math.pi * a * k.to(x.device)).to(ctype)
    y = (phase * (x @ V)) @ V.T  # rows: (V diag V^T x)^T, V real
    return y.movedim(-1, dim)
