"""The named models: one :class:`ModelRecord` per published checkpoint, the only place a
model's facts are declared: its network and tracking hyper-parameters (a
:class:`~tracker.config.ModelConfig`), where it comes from, its licence and its published files.
``describe()``, the weights manager (:mod:`tracker.weights`) and README's model table
(``tools/readme_models.py``) read these records.

Hyper-parameters are the ones published with each checkpoint (siamfc-pytorch's ``parse_args``
defaults, DaSiamRPN's ``TrackerConfig`` per network, pysot's ``experiments/*/config.yaml``,
NanoTrack's ``models/config/configv*.yaml``).

``lost_threshold`` (not part of any reference): for NanoTrack, the highest multiple of 0.05
that flags at most 2% of the correctly tracked frames (IoU > 0.5) of the ten shared OTB-layout
sequences; the foreground probability stays high on background, so 0.5 would almost never
fire. The other models keep 0.5: no trained weights were available here to calibrate them.

``center_bias`` (NanoTrack): where the published networks place boxes relative to the target,
in frame pixels (right, down), as ``python -m tracker.benchmark bias`` measures it on the
shared OTB-layout sequences (median over the frames tracked with IoU above 0.5; a constant in
frame pixels leaves a smaller residual than one in crop pixels); the loop subtracts it. The
parity tests against the references run with it at 0.

Long-term tracking (``long_term``, :class:`~tracker.loops.LongTermLoop`) is on for NanoTrack v2,
with settings tuned on the shared airplane clip and OTB-layout sequences (README, "Long-term
tracking"). It is off for v1 and v3, where it lowered their accuracy on those sequences once
their centre bias is corrected, and for the other models, whose trained weights are not here
to show that it does not.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from .config import ModelConfig, NanoTrackParams, NetworkConfig, SiamFCParams, SiamRPNParams
from .errors import UnknownNameError


@dataclass(frozen=True)
class Artifact:
    """One published file of a model.

    ``kind``: ``"checkpoint"`` (torch state dict), ``"onnx_backbone"`` / ``"onnx_head"``
    (NanoTrack's own ONNX pair). ``sha256`` / ``size`` / ``url`` are ``None`` where the authors
    publish no checksum or direct link (Google Drive, Baidu); ``page`` is then where a person
    gets the file and ``published_as`` the name it has there (pysot calls every one
    ``model.pth``).
    """

    kind: str
    file: str
    page: str
    sha256: Optional[str] = None
    size: Optional[int] = None
    url: Optional[str] = None
    published_as: Optional[str] = None
    note: str = ""


@dataclass(frozen=True)
class Provenance:
    """Where a model's weights come from and under which licence (an SPDX identifier)."""

    source: str
    license: str
    license_url: str
    attribution: str


@dataclass(frozen=True)
class CpuPolicy:
    """How the onnxruntime backend runs a model's network on the CPU unless the caller picks
    (``build_tracker(threads=..., spinning=...)``), chosen from ``speed --load`` runs (README
    "Speed on a busy CPU").

    ``threads``: the intra-op thread counts to choose from (those above the cores this process
    may use are dropped); with more than one, each call runs on the count that has been fastest
    lately (:mod:`tracker.backends.thread_choice`), which is two threads on a quiet 2-core
    machine and one once another process keeps a core busy. ``spinning``: the pool's threads
    spin between operators instead of sleeping, which pays for a small network's many short
    operators on a quiet machine and costs a large one's under load. ``torch_threads``: the
    torch thread count the commands and examples set for this model when not told otherwise
    (``None``: torch's own default); the library itself never sets it, it is process-wide.
    """

    threads: Tuple[int, ...] = (1, 2)
    spinning: bool = False
    torch_threads: Optional[int] = None

    def thread_counts(self) -> Tuple[int, ...]:
        """:attr:`threads` that this process's cores allow (at least one count)."""
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        usable = tuple(t for t in self.threads if t <= (cores or 1))
        return usable or (min(self.threads),)


#: NanoTrack: spinning two threads run its search 1.5x faster than sleeping ones when quiet;
#: on torch one thread beats two, quiet (5 against 6 ms) and loaded (5 against 15 ms).
_SMALL_NETWORK_CPU = CpuPolicy(spinning=True, torch_threads=1)


@dataclass(frozen=True)
class ModelRecord:
    """Everything about one named model."""

    config: ModelConfig
    provenance: Provenance
    artifacts: Tuple[Artifact, ...]
    #: How README's model table names the family and describes the network.
    family_label: str
    summary: str
    cpu: CpuPolicy = CpuPolicy()

    @property
    def name(self) -> str:
        return self.config.name

    def artifact(self, kind: str) -> Artifact:
        """The published file of ``kind``; ``ValueError`` naming the kinds it has."""
        for artifact in self.artifacts:
            if artifact.kind == kind:
                return artifact
        raise ValueError(
            f"artifact {kind!r} is not published for model {self.name!r}; "
            f"it has: {', '.join(a.kind for a in self.artifacts)}"
        )

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON-compatible dict (what ``describe()`` returns, less its summary keys)."""
        return {
            "config": self.config.to_dict(),
            **dataclasses.asdict(self.provenance),
            "artifacts": {a.kind: {k: v for k, v in dataclasses.asdict(a).items() if k != "kind"}
                          for a in self.artifacts},
            "cpu": {"threads": list(self.cpu.threads), "spinning": self.cpu.spinning,
                    "torch_threads": self.cpu.torch_threads},
        }


_SIAMFC = Provenance(
    source="https://github.com/huanglianghua/siamfc-pytorch",
    license="MIT",
    license_url="https://github.com/huanglianghua/siamfc-pytorch/blob/master/LICENSE",
    attribution="SiamFC weights from siamfc-pytorch by Lianghua Huang, MIT licence.",
)
_DASIAMRPN = Provenance(
    source="https://github.com/foolwood/DaSiamRPN",
    license="MIT",
    license_url="https://github.com/foolwood/DaSiamRPN/blob/master/LICENSE",
    attribution="DaSiamRPN weights by Zheng Zhu, Qiang Wang, Bo Li et al. (foolwood/DaSiamRPN), "
    "MIT licence, Copyright (c) 2018 Qiang Wang.",
)
_PYSOT_ZOO = "https://github.com/STVIR/pysot/blob/master/MODEL_ZOO.md"
_PYSOT_BAIDU = "https://pan.baidu.com/s/1GB9-aTtjG57SebraVoBfuQ"
_NANOTRACK_COMMIT = "248663fde6bf7c40190cf10ee396d5662919ecd3"
_NANOTRACK_TREE = f"https://github.com/HonglinChu/SiamTrackers/tree/{_NANOTRACK_COMMIT}/NanoTrack"
_NANOTRACK_RAW = (
    f"https://raw.githubusercontent.com/HonglinChu/SiamTrackers/{_NANOTRACK_COMMIT}/NanoTrack"
)
_NANOTRACK = Provenance(
    source=_NANOTRACK_TREE,
    license="Apache-2.0",
    license_url=f"https://github.com/HonglinChu/SiamTrackers/blob/{_NANOTRACK_COMMIT}/NanoTrack/LICENSE",
    attribution="NanoTrack, Copyright HonglinChu (https://github.com/HonglinChu/SiamTrackers), "
    "licensed under the Apache License 2.0.",
)


def _siamfc() -> ModelRecord:
    config = ModelConfig(
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
    )
    checkpoint = Artifact(
        kind="checkpoint",
        file="siamfc_alexnet_e50.pth",
        page=_SIAMFC.source,
        note="The README links it on Google Drive and Baidu Yun (password wbek); a plain state dict.",
    )
    return ModelRecord(config, _SIAMFC, (checkpoint,), "SiamFC", "AlexNetV1, 3-scale search")


def _dasiamrpn(
    name: str, width: int, tracking: SiamRPNParams, description: str, summary: str,
    file: str, page: str, note: str,
) -> ModelRecord:
    channels = 256 * width
    config = ModelConfig(
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
    )
    checkpoint = Artifact(kind="checkpoint", file=file, page=page, note=note)
    return ModelRecord(config, _DASIAMRPN, (checkpoint,), "SiamRPN", summary)


def _dasiamrpn_params(**values: float) -> SiamRPNParams:
    return SiamRPNParams(
        convention="dasiamrpn", instance_size=271, base_size=0, **values
    )


def _pysot(
    name: str, published: str, network: NetworkConfig, tracking: SiamRPNParams,
    description: str, summary: str, drive_id: str,
) -> ModelRecord:
    config = ModelConfig(
        name=name, family="siamrpn", network=network, tracking=tracking, description=description
    )
    provenance = Provenance(
        source=_PYSOT_ZOO,
        license="CC-BY-SA-3.0",
        license_url="https://creativecommons.org/licenses/by-sa/3.0/",
        attribution=f"pysot model zoo '{published}' by SenseTime Research (STVIR/pysot); the "
        "model zoo publishes its models under CC BY-SA 3.0 (pysot's code is Apache-2.0).",
    )
    checkpoint = Artifact(
        kind="checkpoint",
        file=f"{published}.pth",
        page=f"https://drive.google.com/open?id={drive_id}",
        published_as="model.pth",
        note=f"Google Drive link of '{published}' in MODEL_ZOO.md (also on Baidu Yun: "
        f"{_PYSOT_BAIDU}, extraction code j9yb); every model there is named model.pth: rename "
        f"it to {published}.pth.",
    )
    return ModelRecord(config, provenance, (checkpoint,), "SiamRPN++", summary)


def _pysot_multi_layer(
    backbone: str, backbone_kwargs: Dict[str, Any], in_channels: Tuple[int, ...], weighted: bool
) -> NetworkConfig:
    return NetworkConfig(
        backbone=backbone,
        backbone_kwargs=backbone_kwargs,
        neck="adjust_all",
        neck_kwargs={"in_channels": in_channels, "out_channels": (256, 256, 256), "center_size": 7},
        head="multi_rpn",
        head_kwargs={"anchor_num": 5, "in_channels": (256, 256, 256), "weighted": weighted},
        published_prefixes={"head.": "rpn_head."},
    )


def _nanotrack(
    version: int, channels: int, neck_channels: int, tracking: NanoTrackParams,
    files: Tuple[Tuple[str, str, str, str, int], ...],
) -> ModelRecord:
    """``files``: per published file its kind, local name, path under ``NanoTrack/``, sha256
    and size in bytes."""
    config = ModelConfig(
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
    )
    artifacts = tuple(
        Artifact(
            kind=kind,
            file=file,
            page=_NANOTRACK_TREE,
            sha256=sha256,
            size=size,
            url=f"{_NANOTRACK_RAW}/{upstream}",
            published_as=upstream.rsplit("/", 1)[1],
            note=f"NanoTrack/{upstream} in the SiamTrackers repository.",
        )
        for kind, file, upstream, sha256, size in files
    )
    return ModelRecord(
        config, _NANOTRACK, artifacts, "NanoTrack", "MobileNetV3-small, anchor-free; CPU real-time",
        cpu=_SMALL_NETWORK_CPU,
    )


def _nanotrack_files(
    version: int, onnx_suffix: str, sizes_and_digests: Tuple[Tuple[int, str], ...]
) -> Tuple[Tuple[str, str, str, str, int], ...]:
    """The published checkpoint and ONNX pair of NanoTrack ``version`` (the v1 and v2 graphs
    are the authors' simplified ``_sim`` ones)."""
    names = (
        ("checkpoint", f"nanotrackv{version}.pth", f"models/pretrained/nanotrackv{version}.pth"),
        ("onnx_backbone", f"nanotrackv{version}_nanotrack_backbone{onnx_suffix}.onnx",
         f"models/nanotrackv{version}/nanotrack_backbone{onnx_suffix}.onnx"),
        ("onnx_head", f"nanotrackv{version}_nanotrack_head{onnx_suffix}.onnx",
         f"models/nanotrackv{version}/nanotrack_head{onnx_suffix}.onnx"),
    )
    return tuple(
        (kind, file, upstream, digest, size)
        for (kind, file, upstream), (size, digest) in zip(names, sizes_and_digests)
    )


def _build_all() -> Dict[str, ModelRecord]:
    records = [
        _siamfc(),
        _dasiamrpn(
            "dasiamrpn-otb", 1,
            _dasiamrpn_params(penalty_k=0.22, window_influence=0.40, lr=0.30),
            "DaSiamRPN SiamRPNotb (AlexNet x1, up-channel correlation), OTB settings.",
            "AlexNet, up-channel RPN (OTB settings)",
            "SiamRPNOTB.model", "https://drive.google.com/open?id=1BtIkp5pB6aqePQGlMb2_Z7bfPy6XEj6H",
            "Linked from the README section 'Demo and Test OTB2015' (Google Drive). A plain state "
            "dict, loadable as is.",
        ),
        _dasiamrpn(
            "dasiamrpn-vot", 1,
            _dasiamrpn_params(penalty_k=0.04, window_influence=0.44, lr=0.45),
            "DaSiamRPN SiamRPNvot (AlexNet x1, up-channel correlation), VOT settings.",
            "AlexNet, up-channel RPN (VOT settings)",
            "SiamRPNVOT.model", _DASIAMRPN.source,
            "Used by the repository's code/demo.py; the README's Google Drive links are the place "
            "to look. A plain state dict, loadable as is.",
        ),
        _dasiamrpn(
            "dasiamrpn-big", 2,
            _dasiamrpn_params(
                penalty_k=0.055, window_influence=0.42, lr=0.295, adaptive_instance_size=287
            ),
            "DaSiamRPN SiamRPNBIG (AlexNet x2), adaptive search size.",
            "AlexNet x2, adaptive search size",
            "SiamRPNBIG.model",
            "https://drive.google.com/file/d/1-vNVZxfbIplXHrqMHiJJYWXYWsOIvGsf/view?usp=sharing",
            "Linked from the README section 'Pretrained model for SiamRPN' (Google Drive). A plain "
            "state dict, loadable as is.",
        ),
        _pysot(
            "siamrpnpp-alex", "siamrpn_alex_dwxcorr",
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
            "AlexNet, depthwise RPN",
            "1t62x56Jl7baUzPTo0QrC4jJnwvPZm-2m",
        ),
        _pysot(
            "siamrpnpp-mobilenetv2", "siamrpn_mobilev2_l234_dwxcorr",
            _pysot_multi_layer(
                "mobilenetv2", {"used_layers": (3, 5, 7), "width_mult": 1.4}, (44, 134, 448), False
            ),
            SiamRPNParams(penalty_k=0.04, window_influence=0.4, lr=0.5),
            "pysot siamrpn_mobilev2_l234_dwxcorr: MobileNetV2 x1.4, 3-layer depthwise RPN.",
            "MobileNetV2 x1.4, 3 layers",
            "1JB94pZTvB1ZByU-qSJn4ZAIfjLWE5EBJ",
        ),
        _pysot(
            "siamrpnpp-r50", "siamrpn_r50_l234_dwxcorr",
            _pysot_multi_layer("resnet50", {"used_layers": (2, 3, 4)}, (512, 1024, 2048), True),
            SiamRPNParams(penalty_k=0.05, window_influence=0.42, lr=0.38),
            "pysot siamrpn_r50_l234_dwxcorr: ResNet-50, weighted 3-layer depthwise RPN (VOT).",
            "ResNet-50, 3 layers, weighted (VOT)",
            "1Q4-1563iPwV6wSf_lBHDj5CPFiGSlEPG",
        ),
        _pysot(
            "siamrpnpp-r50-otb", "siamrpn_r50_l234_dwxcorr_otb",
            _pysot_multi_layer("resnet50", {"used_layers": (2, 3, 4)}, (512, 1024, 2048), False),
            SiamRPNParams(penalty_k=0.24, window_influence=0.5, lr=0.25),
            "pysot siamrpn_r50_l234_dwxcorr_otb: ResNet-50, 3-layer depthwise RPN (OTB).",
            "ResNet-50, 3 layers (OTB)",
            "1Cx_oHu6o0gNeH7F9zZrgevfAGdyWC4D5",
        ),
        _nanotrack(
            1, 48, 64,
            NanoTrackParams(
                penalty_k=0.148, window_influence=0.462, lr=0.390, lost_threshold=0.90,
                center_bias=(1.03, 1.20),
            ),
            _nanotrack_files(1, "_sim", (
                (2475634, "2a24bbfd1163a7692ab22100336a54de55dde12301b7d8ae7a4e745fb10b09a3"),
                (767819, "f6fdf311bdc846510c2f9f0b2b8159c7e0cf5d80ed18c9079faeb32db460cba9"),
                (392202, "4c987e5121cc400b6175f2168c30c84857864fe36d5e7a14df0c27e8e5b9540d"),
            )),
        ),
        _nanotrack(
            2, 48, 64,
            NanoTrackParams(
                penalty_k=0.150, window_influence=0.490, lr=0.385, lost_threshold=0.95,
                long_term=True, hold_threshold=0.75, move_threshold=0.3, redetect_after=30,
                redetect_threshold=0.97, center_bias=(1.29, 1.37),
            ),
            _nanotrack_files(2, "_sim", (
                (2095829, "938a320c560fd8c8d6a148a76a072bca29c529ce16591c9a2157859ee0ecc5e1"),
                (1056849, "530bdd0cd00f19afab79a863e71ba71e3312395a5dc9151af675082bdaaa2fc4"),
                (726198, "0d8c0637be849f092cc7236cae02e55c8b9455ebe37ba50601d6115db4247cd9"),
            )),
        ),
        _nanotrack(
            3, 96, 96,
            NanoTrackParams(
                penalty_k=0.138, window_influence=0.455, lr=0.348, score_size=15, lost_threshold=0.90,
                center_bias=(1.71, 1.23),
            ),
            _nanotrack_files(3, "", (
                (3498955, "4f0d25108385a67bdec5fa01ca37c74acb72343b53996dd645fe18b86e512e69"),
                (1431635, "50be1320abf9384fd3479ea829f95e244cf3f3838190c5ab60c750fb8c1ce828"),
                (1183740, "75357903be3f4817c965af16cb5a11fd32b1467f597a408405a98635ac63f61d"),
            )),
        ),
    ]
    return {record.name: record for record in records}


_RECORDS = _build_all()


def list_models() -> Tuple[str, ...]:
    """Names accepted by :func:`get_config`, ``build_model`` and ``build_tracker``."""
    return tuple(_RECORDS)


def get_record(name: str) -> ModelRecord:
    """Everything known about model ``name``; ``UnknownNameError`` lists the known names."""
    if not isinstance(name, str):
        raise TypeError(f"model name must be a str, got {type(name).__name__}")
    try:
        return _RECORDS[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown model {name!r}; known: {', '.join(_RECORDS)}"
        ) from None


def cpu_policy(config: ModelConfig) -> CpuPolicy:
    """The CPU policy of ``config``'s model record, or the default one for a config that no
    record names."""
    record = _RECORDS.get(config.name)
    return record.cpu if record is not None else CpuPolicy()


def get_config(name: str) -> ModelConfig:
    """The published configuration of model ``name`` (immutable: shared, not copied)."""
    return get_record(name).config
