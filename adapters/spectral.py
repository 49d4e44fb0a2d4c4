"""The shared spectral primitive: sparse coefficients at spectral locations -> real dense matrix.

FoRA (004 eq. 3-4), LFMA (001 eq. 2) and FourierMoE (003 Thm. 3.2) all build a weight (or a
factor of one) as the inverse 2-D DFT of a spectrum that is zero except at a few locations.
They call :func:`spectral_to_dense`; nothing else in ``adapters/`` calls ``torch.fft`` on a
weight spectrum (FourierMoE's forward applies the same matrices to tokens through their spectra,
``FourierMoELinear.mixture``, and its tests check it against this function).
"""
from __future__ import annotations

import torch


def complex_dtype(dtype: torch.dtype) -> torch.dtype:
    """The complex dtype a real ``dtype`` computes in (complex128 for float64, else complex64);
    a complex dtype is returned as it is."""
    if dtype.is_complex:
        return dtype
    return torch.complex128 if dtype == torch.float64 else torch.complex64


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

    Batched: ``coeffs`` (b x n) with ``locations`` (b x 2 x n, or 2 x n shared) gives b matrices
    (b x rows x cols) from one batched inverse transform, each equal to its unbatched result.

    ``hermitian=False``: Re(ifft2(F)), the definition of FoRA eq. (3)-(4) and LFMA eq. (2)
    (``torch.fft`` 'backward' norm, i.e. the 1/(d1 d2) factor of eq. 3). Computed as the inverse
    DFT of the conjugate-symmetric part (F + F~) / 2, F~[j, k] = conj(F[-j, -k]), which is exactly
    Re(ifft2(F)) and real: ``irfft2`` of its half spectrum (columns 0 .. d2 // 2, c / 2 at (j, k)
    and conj(c) / 2 at (-j, -k) where they fall in it) does about half the work of ``ifft2``.
    ``hermitian=True``: the coefficients fill the half-spectrum of ``torch.fft.irfft2``; the
    implied full spectrum is conjugate-symmetric, so the inverse DFT is real by construction, not
    by discarding an imaginary part (FourierMoE, 003 Thm. 3.2). Callers place locations in
    columns 1 .. ceil(d2/2)-1: column 0 and the Nyquist column are their own mirror, where
    ``irfft2`` keeps only the symmetric part (a coefficient there is halved, or loses its
    imaginary part), so the one-to-one map from coefficients to weights holds only off them.
    """
    rows, cols = shape
    width = cols // 2 + 1
    values = coeffs.to(complex_dtype(coeffs.dtype))
    u, v = locations[..., 0, :], locations[..., 1, :]
    if not hermitian:  # c / 2 at (u, v) and conj(c) / 2 at (-u, -v), each where it lies in the half spectrum
        mu, mv = (-u) % rows, (-v) % cols
        direct, mirror = v < width, mv < width
        u, v = torch.cat([u, mu], -1), torch.cat([torch.where(direct, v, 0), torch.where(mirror, mv, 0)], -1)
        values = torch.cat([torch.where(direct, values, 0), torch.where(mirror, values.conj(), 0)], -1) / 2
    index = (u, v)
    if coeffs.dim() == 2:  # a batch: the matrix index broadcasts against the locations
        index = (torch.arange(coeffs.shape[0], device=coeffs.device)[:, None], *index)
    spectrum = torch.zeros(*coeffs.shape[:-1], rows, width, dtype=values.dtype, device=coeffs.device)
    spectrum.index_put_(index, values, accumulate=True)  # in place into a fresh zero tensor; a mirror may coincide
    return torch.fft.irfft2(spectrum, s=(rows, cols))
