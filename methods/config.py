"""params.yaml sections ``prior``, ``dre``, ``train`` and ``methods`` (owned by methods/).

Torch-free. Every field is required unless it has a default here, and params.yaml sets them all
(no defaults here that disagree with params.yaml: the defaults only exist so that an older
params file keeps loading when a field is added).

``methods:`` maps entry names (``bicubic``, ``panini``, ``panini_catconv``, ``panini_sr``, ...)
to one dataclass per architecture, chosen by the entry's ``arch`` key (``parse_methods``).
To add an architecture: define its dataclass (with ``arch: Literal["name"]``) at the end of this
file and add it to ``ARCH_CONFIGS``.

Every ``batch_size`` is the GLOBAL batch of a step: the trainer splits it evenly over the
processes of ``pipeline.launcher`` (methods/data.py), and params validation refuses a batch the
process count does not divide.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

from core.config import build
from core.errors import FRBenchError


def _check(cond: bool, where: str, msg: str) -> None:
    if not cond:
        raise FRBenchError(f"params: {where}: {msg}")


def _check_training(cfg, where: str) -> None:
    """The settings every trained entry shares: positive steps, batch size and learning rate,
    EMA decay in [0, 1) (0 = no EMA)."""
    for key in ("steps", "batch_size"):
        if hasattr(cfg, key):
            _check(getattr(cfg, key) >= 1, f"{where}.{key}", f"must be >= 1, got {getattr(cfg, key)}")
    if hasattr(cfg, "lr"):
        _check(math.isfinite(cfg.lr) and cfg.lr > 0, f"{where}.lr", f"must be > 0, got {cfg.lr}")
    if hasattr(cfg, "min_lr"):
        _check(0 <= cfg.min_lr <= cfg.lr, f"{where}.min_lr", f"must be in [0, lr], got {cfg.min_lr}")
    if hasattr(cfg, "ema_decay"):
        _check(0.0 <= cfg.ema_decay < 1.0, f"{where}.ema_decay",
               f"must be in [0, 1), got {cfg.ema_decay}")
    if hasattr(cfg, "betas"):
        _check(all(0.0 <= b < 1.0 for b in cfg.betas), f"{where}.betas",
               f"must lie in [0, 1), got {list(cfg.betas)}")


def _pow2(x: int) -> bool:
    return x >= 4 and (x & (x - 1)) == 0


# ------------------------------------------------------------------------------------------
# StyleGAN2 prior (methods.md §1)

@dataclass
class StyleGAN2Arch:
    """Generator/discriminator shape. ``size`` = output side (power of two, 32..1024).
    ``narrow``: GPEN's width factor on every resolution's channels (GPEN-BFR-256: 0.5)."""
    size: int
    style_dim: int
    n_mlp: int
    channel_multiplier: int
    max_channels: int
    lr_mlp: float = 0.01
    narrow: float = 1.0

    def validate(self, where):
        _check(_pow2(self.size) and 32 <= self.size <= 2048, f"{where}.size",
               f"{self.size} must be a power of two in 32..2048")
        _check(self.style_dim > 0 and self.n_mlp >= 1 and self.max_channels >= 1, where,
               "style_dim, n_mlp and max_channels must be positive")
        _check(0 < self.narrow <= 1, f"{where}.narrow", "must be in (0, 1]")


@dataclass
class PriorConfig:
    """StyleGAN2 prior pretraining (rosinality train.py recipe, methods.md §1.5).

    ``ema_decay``: 0.5^(32/10000) ~= 0.99778 at paper scale; the built-in tier uses a faster
    decay because it trains for ~100 steps. ``path_reg_weight`` 0 switches path-length reg off.
    ``train_noise``: "random" (paper) or "fixed" (the generator's noise buffers; deterministic).
    ``source``: "train" (pretrain it: ``frbench train prior``) or "released" (``frbench train
    prior`` imports the released FFHQ StyleGAN2 ``stylegan2-ffhq-config-f.pt`` found by the
    weight resolver instead, as GFP-GAN and pSp start from it; ``arch`` must match the file).
    """
    arch: StyleGAN2Arch
    steps: int
    batch_size: int
    lr: float
    r1_gamma: float
    r1_every: int
    path_reg_weight: float
    path_reg_every: int
    mixing_prob: float
    ema_decay: float
    stddev_group: int
    hflip: bool
    train_noise: Literal["random", "fixed"] = "random"
    source: Literal["train", "released"] = "train"

    def validate(self, where):
        _check_training(self, where)
        _check(self.r1_every >= 1 and self.path_reg_every >= 1, where, "*_every must be >= 1")


# ------------------------------------------------------------------------------------------
# Degradation representation encoder (methods.md §2.2)

@dataclass
class DREConfig:
    """DRE + UDRL (MoCo). ``widths``: the 3 conv widths (64, 128, 256 in the paper; the last is
    the DR dimension), ``input_size``: LQ is average-pooled to this side (256 in the paper).
    ``queue``: K (8192), ``momentum``: m (0.999), ``temperature``: T (0.07). SGD as the paper.
    ``preset`` (+ ``preset_overrides``): the degradation preset whose draws define the positive
    pairs (one draw applied to two different HQ faces at ``hq_size``).
    """
    widths: list[int]
    input_size: int
    queue: int
    momentum: float
    temperature: float
    steps: int
    batch_size: int
    lr: float
    sgd_momentum: float
    weight_decay: float
    preset: str
    hq_size: int
    preset_overrides: dict[str, Any] = field(default_factory=dict)

    def validate(self, where):
        _check_training(self, where)
        _check(self.weight_decay >= 0, f"{where}.weight_decay", "must be >= 0")
        _check(len(self.widths) == 3 and all(w > 0 for w in self.widths), f"{where}.widths",
               "three positive conv widths")
        _check(self.queue >= self.batch_size and self.queue % self.batch_size == 0,
               f"{where}.queue", "must be a multiple of batch_size")
        _check(0.0 <= self.momentum < 1.0 and self.temperature > 0, where,
               "momentum in [0,1), temperature > 0")


@dataclass
class DREArch:
    """The DRE's shape only (a Panini entry's own ``dre_arch``, e.g. an imported Panini MFR)."""
    widths: list[int]
    input_size: int

    def validate(self, where):
        _check(len(self.widths) == 3 and all(w > 0 for w in self.widths), f"{where}.widths",
               "three positive conv widths")


# ------------------------------------------------------------------------------------------
# The shared trainer

@dataclass
class TrainConfig:
    """Shared trainer settings (methods/trainer.py).

    ``hq_dir``: HQ training faces. ``amp``/``channels_last`` apply on CUDA only.
    ``log_every``/``sample_every``/``ckpt_every`` in steps (0 = never; the final checkpoint is
    always written). ``num_workers``: DataLoader workers (0 = in-process).
    ``allow_random_vgg``: VGG16 perceptual-loss backbone may be random-init when no weights are
    found (recorded in the checkpoint's provenance). ``threads``: torch intra-op threads on CPU
    (0 = torch's default; OpenMP spin-waiting makes 2 threads ~10x slower than 1 when the cores
    are shared with other jobs).
    """
    hq_dir: str
    checkpoint_dir: str
    amp: bool
    channels_last: bool
    log_every: int
    sample_every: int
    ckpt_every: int
    num_workers: int
    allow_random_vgg: bool
    threads: int = 0  # torch intra-op threads (0 = torch's default); 1 on oversubscribed CPUs

    def validate(self, where):
        for key in ("log_every", "sample_every", "ckpt_every", "num_workers", "threads"):
            v = getattr(self, key)
            zero = "torch's default" if key == "threads" else "never" if key.endswith("every") \
                else "in-process"
            _check(v >= 0, f"{where}.{key}", f"must be >= 0 (0 = {zero}), got {v}")


# ------------------------------------------------------------------------------------------
# Methods: one dataclass per architecture

@dataclass
class BicubicConfig:
    """The 'LQ input' reference row: bicubic upsampling of the LQ to ``out_size`` (no training)."""
    arch: Literal["bicubic"]
    out_size: int
    lq_size: int
    train_preset: Optional[str] = None
    train_overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class PaniniConfig:
    """Panini-Net (methods.md §2). ``variant``: "mfr" (multi-degradation, DRE-conditioned) or
    "sr" (a learnable constant DR vector, no DRE). ``fusion``: "dafi" or "catconv" (Table 3).

    ``n_fusion``: number of fused generator levels (the lowest resolutions, 5 in the paper).
    ``fuse_point``: "block" (after the 2nd StyledConv, before ToRGB) or "post_rgb" (after ToRGB,
    the reference's exact point: the official forward loop fuses at the start of each generator
    step; then the top level only reaches RGB through later layers). Imported releases and the
    paper profile use post_rgb; the built-in tier uses block, because there the top fused level
    (64 px) is the output resolution and a post_rgb fusion at it would never reach the image.
    ``prior_arch`` / ``dre_arch``: the entry's own generator / DRE shape (imported releases);
    null = the ``prior`` / ``dre`` sections.
    ``ife_channels``: IFE level width (512 in the paper, capped by the generator width when 0).
    ``rrdb_channels``/``num_rrdb``: RRDB front end (8/2 for MFR, 64/23 for SR).
    Losses (§2.7): ``l1_weight`` 1, ``perceptual_weight`` 1e-2, ``gan_weight`` 1e-2.
    ``finetune_dre``/``finetune_generator``: the official code trains both.
    ``lr_schedule``: "cosine" (CosineRestart with one period = steps) or "constant".
    """
    arch: Literal["panini"]
    variant: Literal["mfr", "sr"]
    fusion: Literal["dafi", "catconv"]
    out_size: int
    lq_size: int
    train_preset: str
    steps: int
    batch_size: int
    lr: float
    betas: tuple[float, float]
    lr_schedule: Literal["cosine", "constant"]
    min_lr: float
    n_fusion: int
    fuse_point: Literal["block", "post_rgb"]
    ife_channels: int
    rrdb_channels: int
    num_rrdb: int
    rrdb_growth: int
    cbam_reduction: int
    l1_weight: float
    perceptual_weight: float
    gan_weight: float
    finetune_dre: bool
    finetune_generator: bool
    hflip: bool
    ema_decay: float
    dr_dim: int = 0  # SR variant: dimension of the learnable DR vector (0 = the DRE's width)
    train_overrides: dict[str, Any] = field(default_factory=dict)  # get_preset(.., overrides)
    init_latent_avg: bool = False  # start the latent head at the prior's mean w (pSp's trick)

    prior_arch: Optional[StyleGAN2Arch] = None  # own generator shape (imported); null = prior.arch
    dre_arch: Optional[DREArch] = None  # own DRE shape (imported MFR); null = the dre section

    def validate(self, where):
        _check_training(self, where)
        _check(_pow2(self.out_size) and _pow2(self.lq_size), where,
               "out_size and lq_size must be powers of two")
        _check(self.out_size >= self.lq_size, where, "out_size must be >= lq_size")
        _check(1 <= self.n_fusion <= 9, f"{where}.n_fusion", "must be in 1..9")
        _check(2 ** (self.n_fusion + 1) <= self.out_size, f"{where}.n_fusion",
               f"{self.n_fusion} levels need out_size >= {2 ** (self.n_fusion + 1)}")


def _check_sizes(where, out_size, lq_size):
    _check(_pow2(out_size) and _pow2(lq_size), where, "out_size and lq_size must be powers of two")
    _check(out_size >= lq_size, where, "out_size must be >= lq_size")


@dataclass
class GPENConfig:
    """GPEN (methods.md §3). The encoder works on the LQ upsampled (bicubic) to ``out_size``.

    ``noise``: how the encoder features enter the prior: "concat" (GPEN, NoiseInjection
    isconcat), "add" (the ``gpen_noiseadd`` ablation: ``x + w * f``), "none" (``gpen_nonoise``: no
    noise inputs at all, zeros). ``finetune_generator`` False = ``gpen_noft`` (the pretrained prior
    frozen; only the encoder, the noise scalars and, in concat mode, the new input columns train).
    ``concat_init``: scale of the new (concatenated-channel) input weights when the add-mode prior
    is widened for concat mode (the old columns are copied, so the widened prior reproduces the
    pretrained one exactly while the noise scalars are 0). ``noise_init``: the scalars' initial
    value (GPEN 0; in the built-in tier's 100 steps a scalar starting at 0 barely moves, so the
    built-in entries start at 1 with full-size new columns, README "Baselines").
    Losses: paper ``adv_weight`` 1 (non-saturating), ``content_weight`` 1 (``content_loss`` l1;
    the official train_simple uses smooth_l1), ``fm_weight`` 0.02 (discriminator feature
    matching), ``id_weight`` 0 (official code 1.0; ``id_net`` facenet stands in for IR-SE50).
    ``random_init_losses``: keep a pretrained-backbone loss (ID) when its weights resolve to
    random init (default False: its weight becomes 0, recorded in the provenance).
    D: the prior's discriminator, logistic + lazy R1 (``r1_gamma``, ``r1_every``), minibatch
    stddev over ``d_stddev_group`` (0 = the whole batch, GPEN). Adam (0, 0.99) with the lazy-reg
    ratio on D (GPEN). ``path_reg_weight``: the official path-length regulariser on G (2, every
    ``path_reg_every`` = 4 steps, on half the batch, with the lazy-reg ratio on G's Adam); 0 turns
    it off (the built-in default, like the prior's).
    """
    arch: Literal["gpen"]
    out_size: int
    lq_size: int
    train_preset: str
    steps: int
    batch_size: int
    lr: float
    noise: Literal["concat", "add", "none"]
    finetune_generator: bool
    adv_weight: float
    content_weight: float
    content_loss: Literal["l1", "smooth_l1"]
    fm_weight: float
    id_weight: float
    id_net: Literal["irse50", "facenet", "arcface18"]
    r1_gamma: float
    r1_every: int
    d_stddev_group: int
    ema_decay: float
    hflip: bool
    concat_init: float = 0.01
    noise_init: float = 0.0  # initial value of the noise (feature) scalars; GPEN 0
    path_reg_weight: float = 0.0
    path_reg_every: int = 4
    random_init_losses: bool = False
    train_overrides: dict[str, Any] = field(default_factory=dict)

    prior_arch: Optional[StyleGAN2Arch] = None  # own generator shape (imported); null = prior.arch

    def validate(self, where):
        _check_sizes(where, self.out_size, self.lq_size)
        _check_training(self, where)
        _check(self.r1_every >= 1, f"{where}.r1_every", "must be >= 1")
        _check(self.path_reg_every >= 1, f"{where}.path_reg_every", "must be >= 1")
        _check(self.path_reg_weight >= 0, f"{where}.path_reg_weight", "must be >= 0")


@dataclass
class GFPGANConfig:
    """GFP-GAN v1 (methods.md §4). U-Net on the LQ upsampled to ``out_size`` (widths = half the
    decoder's), W+ from its 4x4 feature, CS-SFT (``sft: cs``, half the channels modulated) or plain
    SFT on all channels (``sft: full``, the ``gfpgan_sft`` ablation) after each up-StyledConv at
    8..out, the prior frozen (v1) with random noise in training (fixed buffers at inference).
    Losses (train_gfpgan_v1.yml): ``pixel_weight`` 0.1 (L1), ``pyramid_weight`` 1 (L1 of the U-Net
    toRGB outputs vs the bilinear GT pyramid; off after ``pyramid_until`` steps), perceptual +
    Gram style on VGG19 (``perceptual_weight`` 1, ``style_weight`` 50), ``gan_weight`` 0.1
    (softplus, fresh StyleGAN2 D with R1 ``r1_gamma`` every ``r1_every``), facial component D's
    (left eye, right eye, mouth; ``component_weight`` 1, Gram ``component_style_weight`` 200),
    identity ``id_weight`` 10 (ArcFace ResNet-18 on gray 128, L1 of embeddings).
    ``component_crop``: roi_align output side of [eyes, mouth] (80, 120 at 512 px).
    ``landmarks``: "" = ``<train.hq_dir>/faces.json`` (the built-in faces), else a faces.json or
    GFPGAN's FFHQ_eye_mouth_landmarks_512.pth. ``component_channels``: the component D widths
    (64, 128, 256). ``init_latent_avg``: start the W+ head at the prior's mean w (not in v1).
    ``fix_decoder``: the official option (true for v1): false fine-tunes the prior with the U-Net.
    ``version``: "v1" (GFPGANv1, the paper's model) or "clean" (GFPGANv1Clean, the v1.2-1.4
    releases: the same parameters with plain layers and bilinear resampling, methods/gfpgan.py).
    ``lr_milestones``/``lr_gamma``: MultiStep schedule, every learning rate x ``lr_gamma`` from
    each milestone step on (train_gfpgan_v1.yml: [600000, 700000], 0.5); [] = constant.
    """
    arch: Literal["gfpgan"]
    out_size: int
    lq_size: int
    train_preset: str
    steps: int
    batch_size: int
    lr: float
    sft: Literal["cs", "full"]
    pixel_weight: float
    pyramid_weight: float
    pyramid_until: int
    perceptual_weight: float
    style_weight: float
    gan_weight: float
    r1_gamma: float
    r1_every: int
    component_weight: float
    component_style_weight: float
    component_crop: list[int]
    component_channels: list[int]
    eye_enlarge: float
    id_weight: float
    id_net: Literal["irse50", "facenet", "arcface18"]
    ema_decay: float
    hflip: bool
    landmarks: str = ""
    init_latent_avg: bool = False
    fix_decoder: bool = True
    version: Literal["v1", "clean"] = "v1"
    random_init_losses: bool = False
    train_overrides: dict[str, Any] = field(default_factory=dict)
    lr_milestones: list[int] = field(default_factory=list)
    lr_gamma: float = 0.5

    prior_arch: Optional[StyleGAN2Arch] = None  # own generator shape (imported); null = prior.arch

    def validate(self, where):
        _check_sizes(where, self.out_size, self.lq_size)
        _check_training(self, where)
        _check(all(int(m) >= 1 for m in self.lr_milestones), f"{where}.lr_milestones",
               "steps >= 1")
        _check(0 < self.lr_gamma <= 1, f"{where}.lr_gamma", "must be in (0, 1]")
        _check(len(self.component_crop) == 2, f"{where}.component_crop", "[eye side, mouth side]")
        _check(len(self.component_channels) == 3, f"{where}.component_channels", "three widths")
        _check(self.r1_every >= 1, f"{where}.r1_every", "must be >= 1")

    @property
    def uses_components(self) -> bool:
        return self.component_weight > 0 or self.component_style_weight > 0


@dataclass
class PSPConfig:
    """pSp (methods.md §5), super-resolution setting. GradualStyleEncoder on the LQ upsampled to
    ``out_size``: IR-SE units (``enc_units`` per stage, widths ``enc_widths``; paper [3,4,14,3],
    [64,128,256,512]), FPN of width ``fpn_width``, map2style heads to W+, ``+ w_avg``
    (``start_from_latent_avg``), the prior frozen (random noise in training, fixed at inference).
    Losses: ``l2_weight`` 1, ``lpips_weight`` 0.8 (``lpips_net`` alex), ``id_weight`` 0.1
    (``id_net``; facenet stands in for IR-SE50), ``w_norm_weight`` 0.005. ``optimizer``: "ranger"
    (pSp's default: RAdam + Lookahead + gradient centralisation, ``methods/optim.py``) or "adam"
    (the official ``--optim_name adam``; the built-in tier's choice). ``encoder_init``: "irse50"
    starts the encoder's input layer and IR-SE body from ``model_ir_se50.pth`` (pSp; needs the
    paper widths), "none" leaves them at their seeded init. ``encoder_input_size``: the side the
    LQ is resized to before the encoder (official pSp: 256 for every task, its transforms resize
    every input to 256); 0 = the output size (the built-in tier's behaviour).
    """
    arch: Literal["psp"]
    out_size: int
    lq_size: int
    train_preset: str
    steps: int
    batch_size: int
    lr: float
    enc_units: list[int]
    enc_widths: list[int]
    fpn_width: int
    start_from_latent_avg: bool
    l2_weight: float
    lpips_weight: float
    lpips_net: Literal["alex", "vgg"]
    id_weight: float
    id_net: Literal["irse50", "facenet", "arcface18"]
    w_norm_weight: float
    ema_decay: float
    hflip: bool
    optimizer: Literal["adam", "ranger"] = "adam"
    encoder_init: Literal["none", "irse50"] = "none"
    encoder_input_size: int = 0  # pSp 256; 0 = out_size
    random_init_losses: bool = False
    train_overrides: dict[str, Any] = field(default_factory=dict)

    prior_arch: Optional[StyleGAN2Arch] = None  # own generator shape (imported); null = prior.arch

    def validate(self, where):
        _check_sizes(where, self.out_size, self.lq_size)
        _check_training(self, where)
        _check(len(self.enc_units) == 4 and len(self.enc_widths) == 4, where,
               "enc_units and enc_widths: four stages")
        _check(self.out_size >= 32, f"{where}.out_size", "pSp needs out_size >= 32 (8 styles)")
        _check(self.encoder_input_size == 0 or (_pow2(self.encoder_input_size)
                                                and self.encoder_input_size >= 32),
               f"{where}.encoder_input_size", "0 (= out_size) or a power of two >= 32")


ARCH_CONFIGS: dict[str, type] = {
    "bicubic": BicubicConfig,
    "panini": PaniniConfig,
    "gpen": GPENConfig,
    "gfpgan": GFPGANConfig,
    "psp": PSPConfig,
}


def lq_size_mismatches(methods: dict, names) -> list[str]:
    """Entries of ``names`` whose training preset does not make LQ at their ``lq_size`` from HQ
    at ``out_size`` (training would stop at its first batch): ``["methods.x: ...", ...]``.
    Imports the degradation presets (cv2), so callers use it where that cost is paid anyway."""
    from degradations import get_preset
    out = []
    for name in names:
        cfg = methods[name]
        preset = getattr(cfg, "train_preset", None)
        if not preset:
            continue
        got = get_preset(preset, dict(cfg.train_overrides or {}) or None).lq_size(cfg.out_size)
        if got != cfg.lq_size:
            out.append(f"methods.{name}: train_preset {preset!r} makes {got} px LQ from "
                       f"{cfg.out_size} px HQ but lq_size is {cfg.lq_size}; set lq_size or the "
                       "preset's overrides (e.g. lq_scale)")
    return out


def parse_methods(value, where):
    """``methods:`` -> {entry name: per-architecture config dataclass} (dispatch on ``arch``)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise FRBenchError(f"params: {where}: expected a mapping of method entries")
    out = {}
    for name, entry in value.items():
        sub = f"{where}.{name}"
        if not isinstance(entry, dict) or "arch" not in entry:
            raise FRBenchError(f"params: {sub}: each method entry needs an 'arch' key "
                               f"(one of {', '.join(ARCH_CONFIGS)})")
        arch = entry["arch"]
        if arch not in ARCH_CONFIGS:
            raise FRBenchError(f"params: {sub}.arch: unknown architecture {arch!r} "
                               f"(known: {', '.join(ARCH_CONFIGS)})")
        out[str(name)] = build(ARCH_CONFIGS[arch], entry, sub)
    return out
