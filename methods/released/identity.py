"""The identity backbones' released files, under ``frbench import`` for completeness.

Both already load through the weight resolver (``metrics/backbones.py``: ``build_arcface18``,
``build_irse50``); importing one checks every key and shape, and writes the mapped state dict
as an frbench checkpoint of kind ``backbone`` (provenance as for every import). The evaluation
and the identity losses keep reading the original file through ``weights.paths`` /
``weights.search_dirs`` (``frbench import ... --write-params`` adds the ``weights.paths`` line).

- ``arcface_resnet18``: ``resnet18_110.pth`` (ronghuaiyang/arcface-pytorch; GFP-GAN's
  ``arcface_resnet18.pth``): the raw state dict of ``DataParallel(resnet_face18(use_se=False))``,
  every key prefixed ``module.`` (ronghuaiyang train.py:20-23, 68; test.py:161-163 reads it into a
  DataParallel model; GFPGAN gfpgan/models/gfpgan_model.py:133-135 with BasicSR
  basicsr/models/base_model.py:309-313 strips ``module.``). Names after the prefix are ours
  (``metrics.backbones.ResNetFace18``).
- ``irse50``: ``model_ir_se50.pth`` (TreB1eN/InsightFace_Pytorch Learner.py:61-67 saves
  ``model.state_dict()``; pSp criteria/id_loss.py:11-12 loads it strictly into
  ``Backbone(112, 50, 'ir_se')``). Names are ours (``metrics.backbones.IRSE50``).
"""
from __future__ import annotations

from typing import Optional

from methods.released.base import (Converted, Format, FormatError, apply_overrides,
                                   tensors_of)


def _convert(fmt: str, arch: str, marker: str, container, overrides: Optional[dict]):
    if isinstance(container, dict) and isinstance(container.get("state_dict"), dict):
        raise FormatError(f"format {fmt}: a wrapped checkpoint ('state_dict'); expected the raw "
                          "state dict of the released file")
    sd = tensors_of(fmt, container, None, f"raw {arch} state dict")
    if not any(k.endswith(marker) for k in sd):
        raise FormatError(f"format {fmt}: no '{marker}' key (first keys: "
                          f"{', '.join(list(sd)[:5])}); not the {arch} file")
    conv = Converted(kind="backbone", arch=arch,
                     config=apply_overrides({"arch": arch}, overrides), state={})
    for k, v in sd.items():
        ours = k[len("module."):] if k.startswith("module.") else k
        conv.state[ours] = v
        conv.origin[ours] = k
    return conv


def convert_arcface18(container, overrides: Optional[dict] = None) -> Converted:
    conv = _convert("arcface_resnet18", "arcface18", "fc5.weight", container, overrides)
    if any(k.startswith("module.") for k in conv.origin.values()):
        conv.notes.append("DataParallel 'module.' prefix dropped")
    return conv


def convert_irse50(container, overrides: Optional[dict] = None) -> Converted:
    return _convert("irse50", "irse50", "output_layer.3.weight", container, overrides)


ARCFACE18 = Format(
    name="arcface_resnet18", arch="arcface18", kind="backbone",
    description="ArcFace ResNet-18 (resnet18_110.pth, 'module.' prefixed raw state dict) -> "
                "metrics.backbones.ResNetFace18 (GFP-GAN identity loss; deg_arcface18 metric)",
    official_files={"resnet18_110.pth": None},
    where_read=("ronghuaiyang/arcface-pytorch@47ace80b test.py:161-163",
                "TencentARC/GFPGAN@7552a779 gfpgan/models/gfpgan_model.py:133-135"),
    mapping_version=1, convert=convert_arcface18,
    weights={"resnet18_110.pth": "arcface18_vqfr"},
    feeds="identity metric (Deg.) of the gfpgan_celeba_test protocol; GFP-GAN's ID loss",
)

IRSE50_FORMAT = Format(
    name="irse50", arch="irse50", kind="backbone",
    description="IR-SE50 ArcFace (model_ir_se50.pth, raw state dict) -> "
                "metrics.backbones.IRSE50 (pSp/GPEN identity loss, pSp encoder init)",
    official_files={"model_ir_se50.pth": None},
    where_read=("eladrich/pixel2style2pixel@5cfff385 criteria/id_loss.py:11-12",
                "TreB1eN/InsightFace_Pytorch@350ff7aa Learner.py:61-67"),
    mapping_version=1, convert=convert_irse50,
    weights={"model_ir_se50.pth": "arcface_ir_se50"},
    feeds="pSp/GPEN identity losses and pSp's encoder initialisation (paper profile)",
)
