"""Transformer building blocks on ``F.scaled_dot_product_attention``.

Pre-norm blocks (RMSNorm), QK-norm, 2D rotary positions (RoPE on patch-grid coordinates, half the
head channels for rows, half for columns), SwiGLU feed-forward. On CPU these run the linear layers
in bf16 under autocast; attention goes through SDPA in either dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        xf = x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (y * self.weight).to(x.dtype)


def rope_2d_angles(rows: Tensor, cols: Tensor, head_dim: int, base: float = 100.0) -> tuple[Tensor, Tensor]:
    """Cos/sin tables ``[N, head_dim / 2]`` for tokens at patch-grid positions ``rows, cols [N]``.

    The first half of the rotated pairs encodes the row, the second the column; positions are in
    units of the training-resolution patch grid, so a finer grid interpolates between them.
    """
    quarter = head_dim // 4
    inv = 1.0 / (base ** (torch.arange(quarter, dtype=torch.float32, device=rows.device) / quarter))
    ang = torch.cat([rows.float()[:, None] * inv, cols.float()[:, None] * inv], dim=-1)  # [N, head_dim/2]
    return ang.cos(), ang.sin()


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate channel pairs (2k, 2k+1) of ``x [..., N, head_dim]`` by the angles of ``cos/sin [N, head_dim/2]``."""
    x1, x2 = x[..., 0::2], x[..., 1::2]
    c, s = cos.to(x.dtype), sin.to(x.dtype)
    return torch.stack([x1 * c - x2 * s, x1 * s + x2 * c], dim=-1).flatten(-2)


class Attention(nn.Module):
    """Multi-head self- or cross-attention with QK-norm and optional RoPE on queries and keys."""

    def __init__(self, dim: int, heads: int, kv_dim: int | None = None):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.q = nn.Linear(dim, dim, bias=False)
        self.kv = nn.Linear(kv_dim or dim, 2 * dim, bias=False)
        self.q_norm, self.k_norm = RMSNorm(self.head_dim), RMSNorm(self.head_dim)
        self.proj = nn.Linear(dim, dim, bias=False)

    def forward(self, x: Tensor, context: Tensor | None = None, rope_q=None, rope_k=None) -> Tensor:
        B, N, C = x.shape
        ctx = x if context is None else context
        q = self.q(x).view(B, N, self.heads, self.head_dim).transpose(1, 2)
        k, v = self.kv(ctx).view(B, ctx.shape[1], 2, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k = self.q_norm(q), self.k_norm(k)
        if rope_q is not None:
            q = apply_rope(q, *rope_q)
        if rope_k is not None:
            k = apply_rope(k, *rope_k)
        v = v.to(q.dtype)
        k = k.to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(B, N, C))


class SwiGLU(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.w12 = nn.Linear(dim, 2 * hidden, bias=False)
        self.w3 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        a, b = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(a) * b)


class Block(nn.Module):
    """Pre-norm transformer block: (cross-)attention then SwiGLU, both residual."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 8 / 3, kv_dim: int | None = None):
        super().__init__()
        self.norm1 = RMSNorm(dim)
        self.norm_ctx = RMSNorm(kv_dim or dim) if kv_dim is not None else None
        self.attn = Attention(dim, heads, kv_dim)
        self.norm2 = RMSNorm(dim)
        self.mlp = SwiGLU(dim, round(dim * mlp_ratio / 8) * 8)

    def forward(self, x: Tensor, context: Tensor | None = None, rope_q=None, rope_k=None) -> Tensor:
        ctx = None if context is None else self.norm_ctx(context)
        x = x + self.attn(self.norm1(x), ctx, rope_q, rope_k)
        return x + self.mlp(self.norm2(x))
