"""StyleGAN2 generator and discriminator: the one GAN prior of the suite (rosinality-style math).

Pure PyTorch (no custom CUDA ops); layer list, operators and discriminator as in
rosinality/stylegan2-pytorch ``model.py`` (Karras et al., CVPR 2020).

Images are float NCHW in [-1, 1] (the generator output is not clamped). Shapes below use
B = batch, C(r) = channels at resolution r (``Generator.channels``), D = ``style_dim``.

Operators (methods.md §1.3):
- equalised learning rate: parameters stored N(0,1) (/lr_mul for linears), scaled at run time by
  ``1/sqrt(fan_in)`` (x lr_mul for linears; the bias is multiplied by lr_mul);
- fused leaky ReLU: ``lrelu(x + b, 0.2) * sqrt(2)`` with a learned per-channel bias ``b``;
- modulated conv: ``s = A(w)`` (EqualLinear, bias init 1), ``W' = scale W s``, demodulation
  ``W'' = W' / sqrt(sum_{in,kh,kw} W'^2 + 1e-8)``. Implemented in the equivalent non-fused form
  ``conv(x * s, scale W) * d`` with ``d = rsqrt(sum (scale W s)^2 + 1e-8)`` (StyleGAN2-ADA's
  ``fused_modconv=False``): no per-sample grouped conv, channels_last friendly; same numbers up to
  float rounding (tested against the grouped form in tests/test_stylegan2.py);
- upsampling: stride-2 transposed conv then [1,3,3,1] blur (x4, pad (1,1)); downsampling: blur
  pad (2,2) then stride-2 conv; the ToRGB skip is upsampled with upfirdn2d(up=2, pad (2,1)).
- noise injection: ``x + weight * noise`` (scalar weight, init 0), or, with
  ``noise_mode="concat"`` (GPEN, methods.md §3.2), ``cat([x, weight * noise])`` which doubles the
  channels seen by the activation and the next layer; ``noise`` is then any (B, C(r), H, W) map.

``clean=True`` (a switch on every layer below; ``Generator(clean=True)`` sets it throughout) gives
the maths of GFP-GAN's "clean" StyleGAN2 (GFPGANv1Clean, the v1.2/v1.3/v1.4 releases;
TencentARC/GFPGAN gfpgan/archs/stylegan2_clean_arch.py and gfpganv1_clean_arch.py) on the SAME
parameters (same names and shapes as the default layers):
- no equalised-lr scaling: convs/linears use their weights as stored (``scale = 1``, no lr_mul);
  a fresh clean layer is initialised with the equalised layer's effective weights
  (N(0,1)/sqrt(fan_in)), so both start from the same function;
- activations are plain ``leaky_relu(x + b, 0.2)`` (no sqrt 2 gain), and a StyledConv multiplies
  its modulated conv output by sqrt 2 before the noise and the bias (stylegan2_clean_arch.py
  StyleConv.forward);
- resampling is bilinear (``F.interpolate``, align_corners False): x2 before the 3x3 conv of an
  up-StyledConv (ModulatedConv2d.forward, sample_mode 'upsample') and for the ToRGB skip
  (ToRGB.forward), /2 before a downsampling conv (gfpganv1_clean_arch.py ResBlock); no FIR blur,
  no transposed or strided conv;
- a ResBlock adds its skip without the 1/sqrt 2 (gfpganv1_clean_arch.py ResBlock.forward).
With ``clean=False`` (the default) nothing changes: same parameters, same RNG draws, same maths.

Generator hook points (``hook(point, res, x) -> x``; the returned tensor replaces ``x``):
- ``"conv1"``    res 4: after the 4x4 StyledConv ``conv1``, before ``to_rgb1``;
- ``"up"``       res r >= 8: after the up-sampling StyledConv, before the second StyledConv
  (GFP-GAN's CS-SFT);
- ``"block"``    res r >= 8: after the second StyledConv, before that resolution's ToRGB
  (Panini's DAFI by default);
- ``"post_rgb"`` res r >= 4: the feature after ToRGB was computed from it, before the next
  up-conv (the reference Panini's exact fusion point: its ToRGB sees the unfused feature);
- ``"rgb"``      res r >= 4: ``x`` is the accumulated RGB skip (B, 3, r, r) (GFP-GAN's pyramid
  loss reads it; returning it unchanged is a no-op).
"""
from __future__ import annotations

import math
import random
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

Hook = Callable[[str, int, torch.Tensor], torch.Tensor]
SQRT2 = math.sqrt(2.0)

# methods.md §1.1: channel table (cm = channel multiplier).
_BASE = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16, 2048: 8}


def channel_table(size: int, channel_multiplier: int = 2, max_channels: int = 512,
                  narrow: float = 1.0) -> dict[int, int]:
    """C(r) for r = 4..size: ``min(int(base(r) * cm_or_1 * narrow), max_channels)``.

    base(r) = 512 for r <= 32, else (2^14 / r) * cm (methods.md §1.1); ``narrow`` is GPEN's width
    factor, ``max_channels`` the suite's width cap (the built-in tier uses a small cap).
    """
    out = {}
    r = 4
    while r <= size:
        base = _BASE[r] if r <= 32 else _BASE[r] * channel_multiplier
        out[r] = max(1, min(int(base * narrow), int(max_channels)))
        r *= 2
    return out


# ------------------------------------------------------------------------------------------
# Low-level ops

def make_kernel(k: Sequence[float]) -> torch.Tensor:
    """[1,3,3,1] -> normalised 2-D outer product (sums to 1)."""
    t = torch.tensor(k, dtype=torch.float32)
    if t.ndim == 1:
        t = t[None, :] * t[:, None]
    return t / t.sum()


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1,
              pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Upsample (zero insertion), pad, FIR-filter (depthwise, flipped kernel), downsample.

    x: (B, C, H, W); kernel: (kh, kw); ``pad = (p0, p1)`` on both axes (negative crops).
    Output side: ``(H * up + p0 + p1 - kh) // down + 1``.
    """
    b, c, h, w = x.shape
    if up > 1:
        x = x.reshape(b, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(b, c, h * up, w * up)
    p0, p1 = pad
    x = F.pad(x, [max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)])
    if p0 < 0 or p1 < 0:
        x = x[:, :, max(-p0, 0): x.shape[2] - max(-p1, 0), max(-p0, 0): x.shape[3] - max(-p1, 0)]
    k = torch.flip(kernel, [0, 1]).to(dtype=x.dtype, device=x.device)
    x = F.conv2d(x, k[None, None].expand(c, 1, *k.shape), groups=c)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def fused_leaky_relu(x: torch.Tensor, bias: Optional[torch.Tensor], slope: float = 0.2,
                     scale: float = SQRT2) -> torch.Tensor:
    """``lrelu(x + bias, slope) * scale`` with the bias broadcast over dim 1."""
    if bias is not None:
        shape = [1, -1] + [1] * (x.ndim - 2)
        x = x + bias.view(shape).to(x.dtype)
    return F.leaky_relu(x, slope) * scale


class FusedLeakyReLU(nn.Module):
    """``lrelu(x + bias, 0.2) * scale``; ``scale`` sqrt 2 (StyleGAN2) or 1 (the clean layers)."""

    def __init__(self, channels: int, bias: bool = True, scale: float = SQRT2):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None
        self.scale = scale

    def forward(self, x):
        return fused_leaky_relu(x, self.bias, scale=self.scale)


class PixelNorm(nn.Module):
    """``x * rsqrt(mean(x^2) + 1e-8)`` over the last dim (the code's features; (..., D) input)."""

    def forward(self, x):
        return x * torch.rsqrt(torch.mean(x * x, dim=-1, keepdim=True) + 1e-8)


class Blur(nn.Module):
    def __init__(self, kernel: Sequence[float], pad: tuple[int, int], upsample_factor: int = 1):
        super().__init__()
        k = make_kernel(kernel)
        if upsample_factor > 1:
            k = k * upsample_factor ** 2
        self.register_buffer("kernel", k, persistent=False)
        self.pad = pad

    def forward(self, x):
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """x2 upsampling of the RGB skip with the FIR kernel (upfirdn2d up=2, pad (2,1) for k=4)."""

    def __init__(self, kernel: Sequence[float], factor: int = 2):
        super().__init__()
        self.factor = factor
        k = make_kernel(kernel) * factor ** 2
        self.register_buffer("kernel", k, persistent=False)
        p = k.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x):
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class BilinearResample(nn.Module):
    """Bilinear x2 (``factor`` 2) or /2 (``factor`` 0.5) resampling, align_corners False: the
    clean layers' resampler in place of the FIR blur (stylegan2_clean_arch.py ModulatedConv2d)."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return F.interpolate(x, scale_factor=self.factor, mode="bilinear", align_corners=False)


class EqualConv2d(nn.Module):
    """Conv with equalised LR: weight N(0,1) scaled by 1/sqrt(C_in k^2) at run time.

    ``clean``: a plain conv (weight used as stored, initialised N(0,1)/sqrt(C_in k^2))."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = True, clean: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel_size, kernel_size))
        self.scale = 1 / math.sqrt(in_ch * kernel_size ** 2)
        if clean:
            self.weight.data.mul_(self.scale)
            self.scale = 1.0
        self.stride, self.padding = stride, padding
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None

    def forward(self, x):
        return F.conv2d(x, self.weight * self.scale, bias=self.bias, stride=self.stride,
                        padding=self.padding)


class EqualLinear(nn.Module):
    """Linear with equalised LR: W ~ N(0,1)/lr_mul, used as W * lr_mul/sqrt(in); bias * lr_mul.

    ``activation="fused_lrelu"`` applies the fused leaky ReLU with this layer's bias.
    ``clean``: a plain ``nn.Linear`` (no scale, no lr_mul; activation ``lrelu(., 0.2)`` without
    the sqrt 2), initialised with the equalised layer's effective weight and bias.
    """

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True, bias_init: float = 0.0,
                 lr_mul: float = 1.0, activation: Optional[str] = None, clean: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.scale = (1 / math.sqrt(in_dim)) * lr_mul
        self.lr_mul = lr_mul
        self.activation = activation
        self.clean = clean
        if clean:
            self.weight.data.mul_(self.scale)
            if self.bias is not None:
                self.bias.data.mul_(lr_mul)
            self.scale, self.lr_mul = 1.0, 1.0

    def forward(self, x):
        if self.clean:
            out = F.linear(x, self.weight, bias=self.bias)
            return F.leaky_relu(out, 0.2) if self.activation else out
        b = self.bias * self.lr_mul if self.bias is not None else None
        out = F.linear(x, self.weight * self.scale, bias=b)  # bias on the last dim, any leading dims
        if self.activation:
            return F.leaky_relu(out, 0.2) * SQRT2  # == fused_leaky_relu(x W^T, b)
        return out


class ModulatedConv2d(nn.Module):
    """Modulated (and demodulated) conv; optional x2 upsampling or /2 downsampling.

    x: (B, C_in, H, W), style: (B, D) -> (B, C_out, H', W').
    ``clean``: plain weight and modulation (no scales); resampling = bilinear x2 / /2 of the
    input, then the conv at stride 1 with padding k//2 (stylegan2_clean_arch.py
    ModulatedConv2d.forward).
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, style_dim: int,
                 demodulate: bool = True, upsample: bool = False, downsample: bool = False,
                 blur_kernel: Sequence[float] = (1, 3, 3, 1), clean: bool = False):
        super().__init__()
        self.in_ch, self.out_ch, self.kernel_size = in_ch, out_ch, kernel_size
        self.upsample, self.downsample, self.demodulate = upsample, downsample, demodulate
        self.clean = clean
        if clean:
            if upsample or downsample:
                self.resample = BilinearResample(2.0 if upsample else 0.5)
        elif upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1),
                             upsample_factor=factor)
        if downsample:
            factor = 2
            p = (len(blur_kernel) - factor) + (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2, p // 2))
        self.scale = 1 / math.sqrt(in_ch * kernel_size ** 2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_ch, in_ch, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_ch, bias_init=1.0, clean=clean)
        if clean:
            self.weight.data.mul_(self.scale)
            self.scale = 1.0

    def forward(self, x, style):
        b = x.shape[0]
        s = self.modulation(style)  # (B, C_in)
        w = self.weight[0] * self.scale  # (C_out, C_in, k, k)
        x = x * s.view(b, -1, 1, 1).to(x.dtype)
        fir = not self.clean
        if self.upsample and fir:
            out = F.conv_transpose2d(x, w.transpose(0, 1), stride=2, padding=0)
        elif self.downsample and fir:
            out = F.conv2d(self.blur(x), w, stride=2, padding=0)
        else:
            if self.clean and (self.upsample or self.downsample):
                x = self.resample(x)  # bilinear on x * s == on x, then modulated weights
            out = F.conv2d(x, w, padding=self.padding)
        if self.demodulate:
            # d[b, o] = rsqrt(sum_{i,kh,kw} (w[o,i] s[b,i])^2 + 1e-8)
            d = torch.rsqrt((s * s) @ (w * w).sum(dim=(2, 3)).t() + 1e-8)  # (B, C_out)
            out = out * d.view(b, -1, 1, 1).to(out.dtype)
        if self.upsample and fir:
            out = self.blur(out)
        return out

    def forward_grouped(self, x, style):
        """The literal grouped-conv form of methods.md §1.3 (reference for tests; no upsample)."""
        b, c, h, w_ = x.shape
        s = self.modulation(style).view(b, 1, c, 1, 1)
        wt = self.scale * self.weight * s
        if self.demodulate:
            wt = wt * torch.rsqrt(wt.pow(2).sum([2, 3, 4]) + 1e-8).view(b, self.out_ch, 1, 1, 1)
        wt = wt.view(b * self.out_ch, c, self.kernel_size, self.kernel_size)
        out = F.conv2d(x.reshape(1, b * c, h, w_), wt, padding=self.padding, groups=b)
        return out.view(b, self.out_ch, h, w_)


class NoiseInjection(nn.Module):
    """``x + weight * noise`` (mode "add", noise (B,1,H,W)) or ``cat([x, weight * noise], 1)``
    (mode "concat", noise (B,C,H,W), GPEN). ``weight`` is a scalar initialised to 0."""

    def __init__(self, mode: str = "add"):
        super().__init__()
        self.mode = mode
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x, noise: Optional[torch.Tensor] = None):
        b, c, h, w = x.shape
        if noise is None:
            noise = x.new_empty(b, c if self.mode == "concat" else 1, h, w).normal_()
        if self.mode == "concat":
            if noise.shape[1] != c:
                noise = noise.expand(b, c, h, w) if noise.shape[1] == 1 else noise
            if noise.shape[1] != c or noise.shape[-2:] != (h, w):
                raise ValueError(f"concat noise must be (B, {c}, {h}, {w}), got {tuple(noise.shape)}")
            return torch.cat([x, self.weight.to(x.dtype) * noise.to(x.dtype)], dim=1)
        return x + self.weight.to(x.dtype) * noise.to(x.dtype)


class ConstantInput(nn.Module):
    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int):
        return self.input.repeat(batch, 1, 1, 1)


class StyledConv(nn.Module):
    """ModulatedConv2d -> NoiseInjection -> FusedLeakyReLU (bias inside the activation).

    With ``noise_mode="concat"`` the output has 2 * out_ch channels. ``clean``:
    ``lrelu(sqrt2 * conv + weight * noise + bias, 0.2)`` (stylegan2_clean_arch.py StyleConv).
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, style_dim: int,
                 upsample: bool = False, blur_kernel: Sequence[float] = (1, 3, 3, 1),
                 demodulate: bool = True, noise_mode: str = "add", clean: bool = False):
        super().__init__()
        self.clean = clean
        self.conv = ModulatedConv2d(in_ch, out_ch, kernel_size, style_dim, demodulate=demodulate,
                                    upsample=upsample, blur_kernel=blur_kernel, clean=clean)
        self.noise = NoiseInjection(noise_mode)
        self.activate = FusedLeakyReLU(out_ch * (2 if noise_mode == "concat" else 1),
                                       scale=1.0 if clean else SQRT2)

    def forward(self, x, style, noise=None):
        out = self.conv(x, style)
        if self.clean:
            out = out * SQRT2
        return self.activate(self.noise(out, noise=noise))


class ToRGB(nn.Module):
    """1x1 modulated conv (no demodulation) + bias; adds the x2-upsampled previous skip
    (FIR, or bilinear with ``clean``)."""

    def __init__(self, in_ch: int, style_dim: int, upsample: bool = True,
                 blur_kernel: Sequence[float] = (1, 3, 3, 1), clean: bool = False):
        super().__init__()
        if upsample:
            self.upsample = BilinearResample(2.0) if clean else Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_ch, 3, 1, style_dim, demodulate=False, clean=clean)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x, style, skip=None):
        out = self.conv(x, style) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


# ------------------------------------------------------------------------------------------
# Generator

class Generator(nn.Module):
    """StyleGAN2 generator (methods.md §1.2).

    Args:
        size: output side, a power of two in 32..2048 (``log_size = log2(size)``).
        style_dim: D (512 at paper scale). n_mlp: mapping depth (8). lr_mlp: mapping lr_mul (0.01).
        channel_multiplier, max_channels, narrow: see ``channel_table``.
        noise_mode: "add" (StyleGAN2) or "concat" (GPEN).
        clean: GFP-GAN's clean maths on the same parameters (module docstring).
    Attributes: ``n_latent = 2*log_size - 2``, ``num_layers = 2*(log_size-2) + 1`` (noise
    layers), ``channels`` {res: C(r)}, fixed noise buffers ``noises.noise_{i}`` (1,1,r_i,r_i).
    """

    def __init__(self, size: int, style_dim: int = 512, n_mlp: int = 8,
                 channel_multiplier: int = 2, max_channels: int = 512, narrow: float = 1.0,
                 lr_mlp: float = 0.01, blur_kernel: Sequence[float] = (1, 3, 3, 1),
                 noise_mode: str = "add", clean: bool = False):
        super().__init__()
        if size < 8 or size & (size - 1):
            raise ValueError(f"StyleGAN2 size must be a power of two >= 8, got {size}")
        if noise_mode not in ("add", "concat"):
            raise ValueError(f"noise_mode must be 'add' or 'concat', got {noise_mode!r}")
        self.size, self.style_dim, self.noise_mode, self.clean = size, style_dim, noise_mode, clean
        self.log_size = int(math.log2(size))
        self.n_latent = self.log_size * 2 - 2
        self.num_layers = (self.log_size - 2) * 2 + 1
        self.channels = channel_table(size, channel_multiplier, max_channels, narrow)
        mult = 2 if noise_mode == "concat" else 1

        self.style = nn.Sequential(PixelNorm(), *[
            EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activation="fused_lrelu", clean=clean)
            for _ in range(n_mlp)])

        c4 = self.channels[4]
        self.input = ConstantInput(c4)
        self.conv1 = StyledConv(c4, c4, 3, style_dim, blur_kernel=blur_kernel, noise_mode=noise_mode,
                                clean=clean)
        self.to_rgb1 = ToRGB(c4 * mult, style_dim, upsample=False, clean=clean)

        self.noises = nn.Module()
        for i in range(self.num_layers):
            res = 2 ** ((i + 5) // 2)
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, res, res))

        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        in_ch = c4
        for k in range(3, self.log_size + 1):
            out_ch = self.channels[2 ** k]
            self.convs.append(StyledConv(in_ch * mult, out_ch, 3, style_dim, upsample=True,
                                         blur_kernel=blur_kernel, noise_mode=noise_mode,
                                         clean=clean))
            self.convs.append(StyledConv(out_ch * mult, out_ch, 3, style_dim,
                                         blur_kernel=blur_kernel, noise_mode=noise_mode,
                                         clean=clean))
            self.to_rgbs.append(ToRGB(out_ch * mult, style_dim, clean=clean))
            in_ch = out_ch

    # -- latents -----------------------------------------------------------------------------
    def get_latent(self, z: torch.Tensor) -> torch.Tensor:
        """Mapping network: z (..., D) -> w (..., D)."""
        return self.style(z)

    @torch.no_grad()
    def mean_latent(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Mean of mapping(z) over n samples: (1, D)."""
        p = next(self.parameters())
        z = torch.randn(n, self.style_dim, generator=generator, device="cpu").to(p.device)
        return self.style(z).mean(0, keepdim=True)

    def make_noise(self, batch: int = 1, generator: Optional[torch.Generator] = None):
        """Fresh N(0,1) noise maps, one per noise layer ((batch, 1, r, r))."""
        dev = next(self.parameters()).device
        return [torch.randn(batch, 1, 2 ** ((i + 5) // 2), 2 ** ((i + 5) // 2),
                            generator=generator).to(dev) for i in range(self.num_layers)]

    def fixed_noise(self) -> list[torch.Tensor]:
        return [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]

    def styles_to_wplus(self, styles, input_is_latent: bool = False, truncation: float = 1.0,
                        truncation_latent: Optional[torch.Tensor] = None,
                        inject_index: Optional[int] = None) -> torch.Tensor:
        """Codes -> W+ (B, n_latent, D).

        ``styles``: a (B, n_latent, D) tensor (W+ if ``input_is_latent`` else per-layer z), a
        (B, D) tensor or a list of one or two (B, D) tensors. Two codes = style mixing: layers
        ``< inject_index`` take the first (random index in 1..n_latent-1 when not given).
        Truncation: ``w = w_avg + psi (w - w_avg)``.
        """
        if isinstance(styles, torch.Tensor) and styles.ndim == 3:
            w = styles if input_is_latent else self.style(styles)
            if w.shape[1] != self.n_latent:
                raise ValueError(f"W+ must have {self.n_latent} latents, got {w.shape[1]}")
            if truncation != 1.0 and truncation_latent is not None:
                w = truncation_latent.view(1, 1, -1) + truncation * (w - truncation_latent.view(1, 1, -1))
            return w
        if isinstance(styles, torch.Tensor):
            styles = [styles]
        styles = list(styles)
        if not input_is_latent:
            styles = [self.style(s) for s in styles]
        if truncation != 1.0 and truncation_latent is not None:
            styles = [truncation_latent + truncation * (s - truncation_latent) for s in styles]
        if len(styles) == 1:
            return styles[0].unsqueeze(1).repeat(1, self.n_latent, 1)
        if len(styles) != 2:
            raise ValueError("at most two style codes (style mixing)")
        if inject_index is None:
            inject_index = random.randint(1, self.n_latent - 1)
        a = styles[0].unsqueeze(1).repeat(1, inject_index, 1)
        b = styles[1].unsqueeze(1).repeat(1, self.n_latent - inject_index, 1)
        return torch.cat([a, b], 1)

    # -- synthesis ---------------------------------------------------------------------------
    def forward(self, styles, input_is_latent: bool = False, noise: Optional[list] = None,
                randomize_noise: bool = True, truncation: float = 1.0,
                truncation_latent: Optional[torch.Tensor] = None,
                inject_index: Optional[int] = None, hook: Optional[Hook] = None,
                return_latents: bool = False):
        """Synthesise images (B, 3, size, size) in about [-1, 1].

        ``noise``: None or a list of ``num_layers`` entries (tensor or None); a None entry is
        random N(0,1) when ``randomize_noise`` else the fixed buffer. In "concat" mode an entry
        is a (B, C(r), r, r) feature map (GPEN's encoder features).
        Returns the image, or ``(image, wplus)`` when ``return_latents``.
        """
        w = self.styles_to_wplus(styles, input_is_latent, truncation, truncation_latent,
                                 inject_index)
        if noise is None:
            noise = [None] * self.num_layers
        if len(noise) != self.num_layers:
            raise ValueError(f"noise must have {self.num_layers} entries, got {len(noise)}")
        if not randomize_noise:
            fixed = self.fixed_noise()
            noise = [fixed[i] if n is None else n for i, n in enumerate(noise)]
        h = hook or (lambda point, res, x: x)

        out = self.input(w.shape[0]).to(w.dtype)
        out = self.conv1(out, w[:, 0], noise=noise[0])
        out = h("conv1", 4, out)
        skip = self.to_rgb1(out, w[:, 1])
        out = h("post_rgb", 4, out)
        skip = h("rgb", 4, skip)
        i = 1
        for k, (conv_up, conv, to_rgb) in enumerate(zip(self.convs[::2], self.convs[1::2],
                                                         self.to_rgbs)):
            res = 2 ** (k + 3)
            out = conv_up(out, w[:, i], noise=noise[2 * k + 1])
            out = h("up", res, out)
            out = conv(out, w[:, i + 1], noise=noise[2 * k + 2])
            out = h("block", res, out)
            skip = to_rgb(out, w[:, i + 2], skip)
            out = h("post_rgb", res, out)
            skip = h("rgb", res, skip)
            i += 2
        return (skip, w) if return_latents else skip


def equalized_to_clean_state(state: dict, lr_mlp: float) -> dict:
    """A ``Generator`` state dict (equalised-lr maths) -> the ``Generator(clean=True)`` state that
    computes the same function except for the resampling (bilinear instead of FIR), following
    GFP-GAN's own conversion (TencentARC/GFPGAN scripts/convert_gfpganv_to_clean.py
    ``modify_checkpoint``, decoder part): the run-time scales go into the weights (mapping:
    ``lr_mul/sqrt(in)``, modulations ``1/sqrt(in)``, modulated convs ``1/sqrt(in k^2)``) and the
    sqrt 2 gain of the fused activations into the mapping weights/biases and the StyledConv
    noise weights and biases. Used to start a clean GFP-GAN from the suite's prior."""
    out = {}
    for k, v in state.items():
        parts = k.split(".")
        if parts[0] == "style" and parts[-1] in ("weight", "bias"):
            scale = lr_mlp / math.sqrt(v.shape[1]) if parts[-1] == "weight" else lr_mlp
            v = v * (scale * SQRT2)
        elif "modulation" in parts and parts[-1] == "weight":
            v = v / math.sqrt(v.shape[1])
        elif parts[-2:-1] == ["conv"] and parts[-1] == "weight" and v.ndim == 5:
            v = v / math.sqrt(v.shape[2] * v.shape[3] * v.shape[4])
        elif parts[-2] in ("activate", "noise") and parts[-1] in ("bias", "weight"):
            v = v * SQRT2
        out[k] = v
    return out


# ------------------------------------------------------------------------------------------
# Discriminator

class ConvLayer(nn.Sequential):
    """[Blur] -> EqualConv2d (stride 2 when downsampling) -> [FusedLeakyReLU].

    ``clean``: [bilinear /2] -> plain conv (stride 1) -> [lrelu(x + b, 0.2)]; same parameters."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, downsample: bool = False,
                 blur_kernel: Sequence[float] = (1, 3, 3, 1), bias: bool = True,
                 activate: bool = True, clean: bool = False):
        layers = []
        if downsample and clean:
            layers.append(BilinearResample(0.5))
            stride, padding = 1, kernel_size // 2
        elif downsample:
            factor = 2
            p = (len(blur_kernel) - factor) + (kernel_size - 1)
            layers.append(Blur(blur_kernel, pad=((p + 1) // 2, p // 2)))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(EqualConv2d(in_ch, out_ch, kernel_size, stride=stride, padding=padding,
                                  bias=bias and not activate, clean=clean))
        if activate:
            layers.append(FusedLeakyReLU(out_ch, bias=bias, scale=1.0 if clean else SQRT2))
        super().__init__(*layers)


class ResBlock(nn.Module):
    """conv 3x3 -> blur + stride-2 conv 3x3; skip = blur + stride-2 1x1; ``(out + skip)/sqrt 2``.

    ``clean``: bilinear /2 instead of blur + stride 2, and ``out + skip`` (gfpganv1_clean_arch.py
    ResBlock, mode 'down')."""

    def __init__(self, in_ch: int, out_ch: int, blur_kernel: Sequence[float] = (1, 3, 3, 1),
                 clean: bool = False):
        super().__init__()
        self.clean = clean
        self.conv1 = ConvLayer(in_ch, in_ch, 3, clean=clean)
        self.conv2 = ConvLayer(in_ch, out_ch, 3, downsample=True, blur_kernel=blur_kernel,
                               clean=clean)
        self.skip = ConvLayer(in_ch, out_ch, 1, downsample=True, activate=False, bias=False,
                              blur_kernel=blur_kernel, clean=clean)

    def forward(self, x):
        if self.clean:
            return self.conv2(self.conv1(x)) + self.skip(x)
        return (self.conv2(self.conv1(x)) + self.skip(x)) / SQRT2


class Discriminator(nn.Module):
    """StyleGAN2 ResNet discriminator (methods.md §1.4): (B, 3, size, size) -> logits (B, 1).

    ``stddev_group``: minibatch-stddev group size (4; GPEN uses the whole batch: pass 0). The
    group actually used is the largest divisor of B that is <= stddev_group.
    ``forward(x, return_features=True)`` also returns the ResBlock outputs (feature matching).
    """

    def __init__(self, size: int, channel_multiplier: int = 2, max_channels: int = 512,
                 narrow: float = 1.0, stddev_group: int = 4,
                 blur_kernel: Sequence[float] = (1, 3, 3, 1)):
        super().__init__()
        ch = channel_table(size, channel_multiplier, max_channels, narrow)
        self.channels = ch
        log_size = int(math.log2(size))
        self.size = size
        self.conv0 = ConvLayer(3, ch[size], 1)
        blocks = []
        in_ch = ch[size]
        for i in range(log_size, 2, -1):
            out_ch = ch[2 ** (i - 1)]
            blocks.append(ResBlock(in_ch, out_ch, blur_kernel))
            in_ch = out_ch
        self.blocks = nn.ModuleList(blocks)
        self.stddev_group, self.stddev_feat = stddev_group, 1
        self.final_conv = ConvLayer(in_ch + 1, ch[4], 3)
        self.final_linear = nn.Sequential(
            EqualLinear(ch[4] * 4 * 4, ch[4], activation="fused_lrelu"),
            EqualLinear(ch[4], 1))

    def _group(self, b: int) -> int:
        g = b if self.stddev_group <= 0 else min(b, self.stddev_group)
        while b % g:
            g -= 1
        return g

    def forward(self, x, return_features: bool = False):
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            raise ValueError(f"discriminator expects {self.size}x{self.size}, got {tuple(x.shape)}")
        feats = []
        out = self.conv0(x)
        for blk in self.blocks:
            out = blk(out)
            feats.append(out)
        b, c, h, w = out.shape
        g = self._group(b)
        sd = out.float().view(g, -1, self.stddev_feat, c // self.stddev_feat, h, w)
        sd = torch.sqrt(sd.var(0, unbiased=False) + 1e-8).mean([2, 3, 4], keepdim=True).squeeze(2)
        sd = sd.repeat(g, 1, h, w).to(out.dtype)
        out = self.final_conv(torch.cat([out, sd], 1))
        out = self.final_linear(out.reshape(b, -1))
        return (out, feats) if return_features else out
