"""The trunk of the Mask R-CNN graph shared by both modes (inference in model.py, training in
training.py): the image-size check and backbone + FPN + RPN, Matterport's layer names."""
from keras import layers as KL

from mrcnn.backbone import resnet_graph
from mrcnn.fpn import fpn_graph
from mrcnn.rpn import build_rpn_model


def check_image_size(config):
    h, w = config.IMAGE_SHAPE[:2]
    if h / 2 ** 6 != int(h / 2 ** 6) or w / 2 ** 6 != int(w / 2 ** 6):
        raise ValueError("Image size must be dividable by 2 at least 6 times to avoid fractions "
                         "when downscaling and upscaling, e.g. 256, 320, 384, 448, 512, ...")


def build_backbone_and_rpn(input_image, config):
    """Backbone + FPN + shared RPN. Returns (rpn_feature_maps [P2..P6], mrcnn_feature_maps
    [P2..P5], rpn_class_logits, rpn_class, rpn_bbox) — shared by inference and training graphs."""
    if callable(config.BACKBONE):
        _, C2, C3, C4, C5 = config.BACKBONE(input_image, stage5=True, train_bn=config.TRAIN_BN)
    else:
        _, C2, C3, C4, C5 = resnet_graph(input_image, config.BACKBONE, stage5=True,
                                         train_bn=config.TRAIN_BN)
    P2, P3, P4, P5, P6 = fpn_graph([C2, C3, C4, C5], config.TOP_DOWN_PYRAMID_SIZE)
    rpn_feature_maps = [P2, P3, P4, P5, P6]
    mrcnn_feature_maps = [P2, P3, P4, P5]
    rpn = build_rpn_model(config.RPN_ANCHOR_STRIDE, len(config.RPN_ANCHOR_RATIOS),
                          config.TOP_DOWN_PYRAMID_SIZE)
    level_outputs = [rpn([p]) for p in rpn_feature_maps]
    names = ["rpn_class_logits", "rpn_class", "rpn_bbox"]
    outputs = [KL.Concatenate(axis=1, name=n)([lo[i] for lo in level_outputs])
               for i, n in enumerate(names)]
    return (rpn_feature_maps, mrcnn_feature_maps) + tuple(outputs)
