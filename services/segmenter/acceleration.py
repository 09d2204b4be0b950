"""A faster SAM image encoder: fused attention, bf16 weights, int8 linear layers, compilation.

The image encoder is nearly all of SAM's cost (a ViT-B at 1024² is ~970 GFLOP). Each change
is optional and measured by bench/suite.py against the package's fp32 eager encoder:

- attention without the package's explicit softmax(QKᵀ)V and N×N relative-position bias:
  eager, scaled-dot-product attention (one fused kernel) with the decomposed relative-position
  terms as its bias, exact to float rounding; compiled, two matrix products and one softmax
  pass that adds those terms on the fly (`matmul_attention_forward`), in query chunks;
- bf16 weights where the CPU has bf16 units; the prompt encoder and mask decoder stay fp32
  (they are cheap, and the masks are thresholded there);
- int8 linear layers (precision `int8`, opt-in): weights per output channel, activations per
  token, quantised on the fly, multiplied by VNNI instructions (`torch._int_mm`) at about
  twice the bf16 rate — the dynamic int8 scheme segment-anything-fast uses for this encoder;
  the rest stays bf16;
- torch.compile with frozen weights.

The segmenter also keeps freed memory in the process (branet_runtime.allocator): the encoder's
buffers of 50-400 MB were otherwise mapped afresh and page-faulted on every call.

On a 2-core AVX-512 BF16 + VNNI CPU, per 1024² ViT-B embedding: the package's fp32 eager
encoder 10.9-11.2 s; bf16 compiled with the attention above and freed memory kept 3.4 s;
int8 linear layers on that 2.9-3.0 s (bench/suite.py, with the masks' IoU against fp32).
"""

import types
from collections.abc import Callable

import torch
import torch.nn.functional as F  # noqa: N812
from segment_anything.modeling import Sam
from segment_anything.modeling.image_encoder import Attention, get_rel_pos

from branet_runtime.compilation import compile_frozen
from branet_runtime.precision import ResolvedPrecision, float_precision


def split_heads(attention: Attention, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """q, k and v of a B×H×W×C input, each (B·heads)×(H·W)×head_dim, as the package splits them."""
    batch, height, width, _ = x.shape
    qkv = attention.qkv(x).reshape(batch, height * width, 3, attention.num_heads, -1)
    qkv = qkv.permute(2, 0, 3, 1, 4)
    return tuple(qkv.reshape(3, batch * attention.num_heads, height * width, -1).unbind(0))


def merge_heads(attention: Attention, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The heads' outputs back to the input's B×H×W layout, through the output projection."""
    batch, height, width, _ = x.shape
    out = out.view(batch, attention.num_heads, height, width, -1).permute(0, 2, 3, 1, 4)
    projected: torch.Tensor = attention.proj(out.reshape(batch, height, width, -1))
    return projected


def relative_position_terms(
    q_grid: torch.Tensor, rel_h: torch.Tensor, rel_w: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The package's decomposed relative-position terms for queries laid out as a grid
    (N×rows×W×C), against every key row and column: N×rows×W×H and N×rows×W×W."""
    bias_h = torch.einsum("bhwc,hkc->bhwk", q_grid, rel_h)
    bias_w = torch.einsum("bhwc,wkc->bhwk", q_grid, rel_w)
    return bias_h, bias_w


def fused_attention_forward(self: Attention, x: torch.Tensor) -> torch.Tensor:
    """segment-anything 1.0's `Attention.forward`, computed by scaled_dot_product_attention."""
    _, height, width, _ = x.shape
    q, k, v = split_heads(self, x)
    bias = None
    if self.use_rel_pos:
        rel_h = get_rel_pos(height, height, self.rel_pos_h)
        rel_w = get_rel_pos(width, width, self.rel_pos_w)
        q_grid = q.reshape(-1, height, width, q.shape[-1])
        bias_h, bias_w = relative_position_terms(q_grid, rel_h, rel_w)
        bias = (bias_h[:, :, :, :, None] + bias_w[:, :, :, None, :]).reshape(
            -1, height * width, height * width
        )
    return merge_heads(self, F.scaled_dot_product_attention(q, k, v, attn_mask=bias), x)


# Queries per step of `matmul_attention_forward`: a step's scores, 12 heads × 1024 × 4096 in
# bf16, are 100 MB instead of 400 MB for the whole of a global block (256-2048 measured alike).
QUERY_CHUNK = 1024


def matmul_attention_forward(self: Attention, x: torch.Tensor) -> torch.Tensor:
    """The same attention as two matrix products and a softmax, for Inductor to compile.

    Inductor fuses the scaling, the decomposed relative-position terms and the softmax into
    one pass over the scores (in fp32), so the bias is never materialised; queries go in
    chunks of whole token rows. Compiled, a global-attention block (4096 tokens) takes 0.25 s
    against 0.38 s for the bias plus the CPU flash-attention kernel, and is closer to fp32
    (max error 0.010 against 0.015); eager, it would be slower than `fused_attention_forward`.
    """
    _, height, width, _ = x.shape
    q, k, v = split_heads(self, x)
    if self.use_rel_pos:
        rel_h = get_rel_pos(height, height, self.rel_pos_h)
        rel_w = get_rel_pos(width, width, self.rel_pos_w)
    rows = max(1, QUERY_CHUNK // width)
    chunks = []
    for top in range(0, height, rows):
        q_rows = q[:, top * width : (top + rows) * width]
        count = q_rows.shape[1] // width
        scores = (q_rows @ k.transpose(1, 2)).view(-1, count, width, height, width) * self.scale
        if self.use_rel_pos:
            q_grid = q_rows.reshape(-1, count, width, q.shape[-1])
            bias_h, bias_w = relative_position_terms(q_grid, rel_h[top : top + count], rel_w)
            scores = scores + bias_h[:, :, :, :, None] + bias_w[:, :, :, None, :]
        probs = scores.view(-1, count * width, height * width).softmax(dim=-1)
        chunks.append(probs @ v)
    return merge_heads(self, torch.cat(chunks, dim=1), x)


class Int8DynamicLinear(torch.nn.Module):
    """A linear layer in int8: weights per output channel at load, activations per token at
    each call, the int32 product rescaled to the input's dtype.

    The scales and the bias are plain attributes, not buffers, so that casting the encoder to
    bf16 leaves them fp32: they set the precision of every output. CPU only, like the service.
    """

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        weight = linear.weight.detach().float()
        scale = weight.abs().amax(dim=1, keepdim=True).clamp(min=1e-8) / 127
        quantised = (weight / scale).round().clamp(-127, 127).to(torch.int8)
        self.weight_t = quantised.t().contiguous()
        self.weight_scale = scale.t().contiguous()
        self.bias = None if linear.bias is None else linear.bias.detach().float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, x.shape[-1]).float()
        scale = rows.abs().amax(dim=1, keepdim=True).clamp(min=1e-8) / 127
        quantised = (rows / scale).round().clamp(-127, 127).to(torch.int8)
        product = torch._int_mm(quantised, self.weight_t).float() * scale * self.weight_scale
        if self.bias is not None:
            product = product + self.bias
        return product.to(x.dtype).reshape(*x.shape[:-1], -1)


def quantize_linears(encoder: torch.nn.Module) -> None:
    """Every linear layer of the ViT blocks (attention and MLP) to `Int8DynamicLinear`."""
    for module in list(encoder.modules()):
        for name, child in module.named_children():
            if isinstance(child, torch.nn.Linear):
                setattr(module, name, Int8DynamicLinear(child))


class FastImageEncoder(torch.nn.Module):
    """The encoder in `dtype`, taking and giving fp32 as SamPredictor expects."""

    def __init__(self, encoder: torch.nn.Module, dtype: torch.dtype, compiled: bool) -> None:
        super().__init__()
        self.img_size: int = encoder.img_size  # type: ignore[assignment]  # SamPredictor reads it
        self.dtype = dtype
        self.encoder = encoder.to(dtype)
        # Set to None when compilation fails: the encoder then runs eager.
        self.compiled: Callable[[torch.Tensor], torch.Tensor] | None = (
            compile_frozen(self.encoder) if compiled else None
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        run = self.compiled if self.compiled is not None else self.encoder
        features: torch.Tensor = run(images.to(self.dtype))
        return features.float()


def accelerate(sam: Sam, precision: ResolvedPrecision, compiled: bool) -> Sam:
    """`sam` with the fused attention, and its image encoder in `precision`, maybe compiled.

    int8 is the linear layers; the rest of the encoder is then bf16 where the CPU has bf16
    units, else fp32."""
    forward = matmul_attention_forward if compiled else fused_attention_forward
    for module in sam.image_encoder.modules():
        if isinstance(module, Attention):
            module.forward = types.MethodType(forward, module)
    if precision == "int8":
        quantize_linears(sam.image_encoder)
    rest = float_precision() if precision == "int8" else precision
    dtype = torch.bfloat16 if rest == "bf16" else torch.float32
    if dtype != torch.float32 or compiled:
        sam.image_encoder = FastImageEncoder(sam.image_encoder, dtype, compiled)
    return sam
