"""The backbone, neck and head registries: one line per variant.

Add a component by writing its module and adding one :class:`~tracker.registry.Entry`
line here. Variants of one class differ only in their default keyword arguments.
"""

from __future__ import annotations

from ..registry import Entry, Registry

_B = "tracker.models.backbones"
_H = "tracker.models.heads"

BACKBONES = Registry(
    "backbone",
    {
        "alexnet": Entry(f"{_B}.alexnet:AlexNetV1"),
        "alexnet_legacy": Entry(f"{_B}.alexnet:AlexNetLegacy"),
        "alexnet_dasiamrpn": Entry(f"{_B}.alexnet:AlexNetLegacy", {"width_mult": 1.0}),
        "resnet50": Entry(f"{_B}.resnet:ResNet50"),
        "mobilenetv2": Entry(f"{_B}.mobilenet_v2:MobileNetV2"),
        "mobilenetv3_small": Entry(f"{_B}.mobilenet_v3:MobileNetV3Small"),
    },
)

NECKS = Registry(
    "neck",
    {
        "adjust": Entry("tracker.models.necks:AdjustLayer"),
        "adjust_all": Entry("tracker.models.necks:AdjustAllLayer"),
    },
)

HEADS = Registry(
    "head",
    {
        "siamfc": Entry(f"{_H}.siamfc:SiamFCHead"),
        "upchannel_rpn": Entry(f"{_H}.rpn:UpChannelRPN"),
        "depthwise_rpn": Entry(f"{_H}.rpn:DepthwiseRPN"),
        "multi_rpn": Entry(f"{_H}.rpn:MultiRPN"),
        "nanotrack_v1": Entry(f"{_H}.nanotrack:NanoTrackHeadV1"),
        "nanotrack_v2": Entry(f"{_H}.nanotrack:NanoTrackHeadV2"),
        "nanotrack_v3": Entry(f"{_H}.nanotrack:NanoTrackHeadV3"),
    },
)
