"""The named models: one :class:`~tracker.config.ModelConfig` per published checkpoint.

Values are the ones published with each checkpoint (siamfc-pytorch's ``parse_args``
defaults, DaSiamRPN's ``TrackerConfig`` per network, pysot's ``experiments/*/config.yaml``,
NanoTrack's ``models/config/configv*.yaml``).

``lost_threshold`` (not part of any reference): for NanoTrack, the highest multiple of 0.05
that flags at most 2% of the correctly tracked frames (IoU > 0.5) of the ten shared OTB-layout
sequences; the foreground probability stays high on background, so 0.5 would almost never
fire. The other models keep 0.5: no trained weights were available here to calibrate them.
"""

from __future__ import annotations

import copy
from typing import Dict, Tuple

from .config import ModelConfig, NanoTrackParams, NetworkConfig, SiamFCParams, SiamRPNParams
from .errors import UnknownNameError

_PYSOT_SOURCE = "STVIR/pysot model zoo (MODEL_ZOO.md)"
_PYSOT_LICENSE = "pysot code Apache-2.0; its model-zoo weights CC-BY-SA-3.0"
_DASIAMRPN_SOURCE = "foolwood/DaSiamRPN (code/net.py, code/run_SiamRPN.py)"
_DASIAMRPN_LICENSE = "MIT (DaSiamRPN)"
_NANOTRACK_SOURCE = "HonglinChu/SiamTrackers, NanoTrack/ (models/pretrained, models/config)"
_NANOTRACK_LICENSE = "Apache-2.0 (NanoTrack, Copyright HonglinChu)"


def _siamfc() -> ModelConfig:
    return ModelConfig(
        name="siamfc-alexnet",
        family="siamfc",
        network=NetworkConfig(
            backbone="alexnet",
            head="siamfc",
            head_kwargs={"out_scale": 0.001},
            input_order="rgb",
        ),
        tracking=SiamFCParams(),
        description="SiamFC with AlexNetV1, 3-scale search (siamfc-pytorch).",
        source="huanglianghua/siamfc-pytorch (siamfc/siamfc.py, pretrained siamfc_alexnet_e50.pth)",
        license="MIT (siamfc-pytorch)",
    )


def _dasiamrpn(name: str, width: int, tracking: SiamRPNParams, description: str) -> ModelConfig:
    channels = 256 * width
    return ModelConfig(
        name=name,
        family="siamrpn",
        network=NetworkConfig(
            backbone="alexnet_dasiamrpn",
            backbone_kwargs={"width_mult": float(width)},
            head="upchannel_rpn",
            head_kwargs={"in_channels": channels, "feature_channels": channels, "anchor_num": 5},
            published_prefixes={"backbone.features.": "featureExtract.", "head.": ""},
        ),
        tracking=tracking,
        description=description,
        source=_DASIAMRPN_SOURCE,
        license=_DASIAMRPN_LICENSE,
    )


def _dasiamrpn_params(**values: float) -> SiamRPNParams:
    return SiamRPNParams(
        convention="dasiamrpn", instance_size=271, base_size=0, **values
    )


def _pysot(
    name: str, network: NetworkConfig, tracking: SiamRPNParams, description: str
) -> ModelConfig:
    return ModelConfig(
        name=name,
        family="siamrpn",
        network=network,
        tracking=tracking,
        description=description,
        source=_PYSOT_SOURCE,
        license=_PYSOT_LICENSE,
    )


def _pysot_multi_layer(backbone: str, backbone_kwargs: Dict, in_channels: list, weighted: bool):
    return NetworkConfig(
        backbone=backbone,
        backbone_kwargs=backbone_kwargs,
        neck="adjust_all",
        neck_kwargs={"in_channels": in_channels, "out_channels": [256, 256, 256], "center_size": 7},
        head="multi_rpn",
        head_kwargs={"anchor_num": 5, "in_channels": [256, 256, 256], "weighted": weighted},
        published_prefixes={"head.": "rpn_head."},
    )


def _nanotrack(
    version: int, channels: int, neck_channels: int, tracking: NanoTrackParams
) -> ModelConfig:
    return ModelConfig(
        name=f"nanotrack-v{version}",
        family="nanotrack",
        network=NetworkConfig(
            backbone="mobilenetv3_small",
            backbone_kwargs={"out_channels": channels},
            neck="adjust",
            neck_kwargs={"in_channels": neck_channels, "out_channels": neck_channels},
            apply_neck=False,
            head=f"nanotrack_v{version}",
            head_kwargs={"in_channels": channels},
            published_prefixes={"head.": "ban_head."},
        ),
        tracking=tracking,
        description=f"NanoTrack v{version}: MobileNetV3-small, anchor-free head; CPU real-time.",
        source=_NANOTRACK_SOURCE,
        license=_NANOTRACK_LICENSE,
    )


def _build_all() -> Dict[str, ModelConfig]:
    configs = [
        _siamfc(),
        _dasiamrpn(
            "dasiamrpn-otb", 1,
            _dasiamrpn_params(penalty_k=0.22, window_influence=0.40, lr=0.30),
            "DaSiamRPN SiamRPNotb (AlexNet x1, up-channel correlation), OTB settings.",
        ),
        _dasiamrpn(
            "dasiamrpn-vot", 1,
            _dasiamrpn_params(penalty_k=0.04, window_influence=0.44, lr=0.45),
            "DaSiamRPN SiamRPNvot (AlexNet x1, up-channel correlation), VOT settings.",
        ),
        _dasiamrpn(
            "dasiamrpn-big", 2,
            _dasiamrpn_params(
                penalty_k=0.055, window_influence=0.42, lr=0.295, adaptive_instance_size=287
            ),
            "DaSiamRPN SiamRPNBIG (AlexNet x2), adaptive search size.",
        ),
        _pysot(
            "siamrpnpp-alex",
            NetworkConfig(
                backbone="alexnet_legacy",
                backbone_kwargs={"width_mult": 1.0},
                head="depthwise_rpn",
                head_kwargs={"anchor_num": 5, "in_channels": 256, "out_channels": 256},
                published_prefixes={"head.": "rpn_head."},
            ),
            SiamRPNParams(
                instance_size=287, base_size=0, penalty_k=0.16, window_influence=0.40, lr=0.30
            ),
            "pysot siamrpn_alex_dwxcorr: AlexNet, depthwise RPN.",
        ),
        _pysot(
            "siamrpnpp-mobilenetv2",
            _pysot_multi_layer(
                "mobilenetv2", {"used_layers": [3, 5, 7], "width_mult": 1.4}, [44, 134, 448], False
            ),
            SiamRPNParams(penalty_k=0.04, window_influence=0.4, lr=0.5),
            "pysot siamrpn_mobilev2_l234_dwxcorr: MobileNetV2 x1.4, 3-layer depthwise RPN.",
        ),
        _pysot(
            "siamrpnpp-r50",
            _pysot_multi_layer("resnet50", {"used_layers": [2, 3, 4]}, [512, 1024, 2048], True),
            SiamRPNParams(penalty_k=0.05, window_influence=0.42, lr=0.38),
            "pysot siamrpn_r50_l234_dwxcorr: ResNet-50, weighted 3-layer depthwise RPN (VOT).",
        ),
        _pysot(
            "siamrpnpp-r50-otb",
            _pysot_multi_layer("resnet50", {"used_layers": [2, 3, 4]}, [512, 1024, 2048], False),
            SiamRPNParams(penalty_k=0.24, window_influence=0.5, lr=0.25),
            "pysot siamrpn_r50_l234_dwxcorr_otb: ResNet-50, 3-layer depthwise RPN (OTB).",
        ),
        _nanotrack(1, 48, 64, NanoTrackParams(
            penalty_k=0.148, window_influence=0.462, lr=0.390, lost_threshold=0.90)),
        _nanotrack(2, 48, 64, NanoTrackParams(
            penalty_k=0.150, window_influence=0.490, lr=0.385, lost_threshold=0.95)),
        _nanotrack(
            3, 96, 96, NanoTrackParams(
                penalty_k=0.138, window_influence=0.455, lr=0.348, score_size=15, lost_threshold=0.90
            )
        ),
    ]
    return {config.name: config for config in configs}


_MODELS = _build_all()


def list_models() -> Tuple[str, ...]:
    """Names accepted by :func:`get_config`, ``build_model`` and ``build_tracker``."""
    return tuple(_MODELS)


def get_config(name: str) -> ModelConfig:
    """The published configuration of model ``name``: a private copy, so a caller that edits
    its keyword dicts changes no other model built in the process."""
    if not isinstance(name, str):
        raise TypeError(f"model name must be a str, got {type(name).__name__}")
    try:
        return copy.deepcopy(_MODELS[name])
    except KeyError:
        raise UnknownNameError(
            f"unknown model {name!r}; known: {', '.join(_MODELS)}"
        ) from None
