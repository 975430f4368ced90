"""Mask R-CNN base configuration (Matterport field names, defaults and derived values).

Subclass `Config` and override the class attributes you need, exactly as with Matterport's
`mrcnn/config.py` (fields and defaults taken from matterport/Mask_RCNN 3deaec5), or pass
overrides as keywords: `Config(NAME="x", NUM_CLASSES=81, IMAGES_PER_GPU=1)`.
Derived values (BATCH_SIZE, IMAGE_SHAPE, IMAGE_META_SIZE) are computed in `__init__`, so change
the inputs before constructing, not afterwards (same as the original).
"""
import numpy as np

RESIZE_MODES = ("none", "square", "pad64", "crop", "fit")


class Config:
    """Base configuration; every field is documented once, here."""

    # Name of the configuration (e.g. "coco", "shapes"); used in log-dir and checkpoint names.
    NAME = None

    # Number of GPUs. Under Keras 3 it only sets BATCH_SIZE = IMAGES_PER_GPU * GPU_COUNT: no
    # per-GPU towers are built (Matterport's ParallelModel); the batch runs on the default device.
    # Spread one batch over several accelerators with keras.distribution (e.g. DataParallel on JAX).
    GPU_COUNT = 1

    # Images per GPU per step. A 12 GB GPU handles about 2 images of 1024x1024.
    IMAGES_PER_GPU = 2

    # Training steps per epoch (TensorBoard and checkpoints are written at epoch ends).
    STEPS_PER_EPOCH = 1000

    # Validation steps run at the end of every training epoch.
    VALIDATION_STEPS = 50

    # Backbone: "resnet50", "resnet101", or a callable with the signature of
    # backbone.resnet_graph; a callable also needs COMPUTE_BACKBONE_SHAPE.
    BACKBONE = "resnet101"

    # Only with a callable BACKBONE: function(image_shape) -> [levels, (height, width)] of the
    # feature maps. See transform.compute_backbone_shapes.
    COMPUTE_BACKBONE_SHAPE = None

    # Strides (pixels) of the FPN levels P2..P6 of a ResNet backbone.
    BACKBONE_STRIDES = [4, 8, 16, 32, 64]

    # Size of the fully connected layers of the classifier head.
    FPN_CLASSIF_FC_LAYERS_SIZE = 1024

    # Channels of the top-down FPN layers.
    TOP_DOWN_PYRAMID_SIZE = 256

    # Number of classes including the background (class 0).
    NUM_CLASSES = 1

    # Side of a square anchor in pixels, one scale per pyramid level P2..P6.
    RPN_ANCHOR_SCALES = (32, 64, 128, 256, 512)

    # Anchor aspect ratios (width / height) used at every level:
    # height = scale / sqrt(ratio), width = scale * sqrt(ratio), so 0.5 is a tall anchor.
    RPN_ANCHOR_RATIOS = [0.5, 1, 2]

    # Anchor stride on the feature map: 1 = an anchor set at every cell, 2 = every other cell.
    RPN_ANCHOR_STRIDE = 1

    # IoU threshold of the non-maximum suppression applied to RPN proposals.
    RPN_NMS_THRESHOLD = 0.7

    # Anchors per image used to train the RPN.
    RPN_TRAIN_ANCHORS_PER_IMAGE = 256

    # ROIs kept after top-k by RPN score and before non-maximum suppression.
    PRE_NMS_LIMIT = 6000

    # ROIs kept after non-maximum suppression, in training and inference.
    POST_NMS_ROIS_TRAINING = 2000
    POST_NMS_ROIS_INFERENCE = 1000

    # Store instance masks at a reduced (height, width) inside their boxes to save memory.
    USE_MINI_MASK = True
    MINI_MASK_SHAPE = (56, 56)

    # Input resizing mode:
    #   none:   no resizing or padding.
    #   square: scale so the short side is IMAGE_MIN_DIM without the long side exceeding
    #           IMAGE_MAX_DIM, then zero-pad to IMAGE_MAX_DIM x IMAGE_MAX_DIM.
    #   pad64:  scale up by IMAGE_MIN_DIM / IMAGE_MIN_SCALE, then pad each side to a multiple
    #           of 64 (IMAGE_MAX_DIM ignored).
    #   crop:   scale as pad64, then a random IMAGE_MIN_DIM x IMAGE_MIN_DIM crop (training only).
    #   fit:    not in Matterport (inference): scale as square, then zero-pad each side only to a
    #           multiple of 64 instead of to the full square. The network sees the same pixels at
    #           the same scale without the square's padding: a 16:9 photo costs 1024x576 instead of
    #           1024x1024 (about 40 % less detection time). Detections are close to square's but
    #           not identical (the padding is context to the convolutions and holds anchors).
    IMAGE_RESIZE_MODE = "square"
    IMAGE_MIN_DIM = 800
    IMAGE_MAX_DIM = 1024
    # Minimum scale factor, checked after IMAGE_MIN_DIM (IMAGE_MAX_DIM may overrule it in square).
    IMAGE_MIN_SCALE = 0
    # Colour channels of the input: RGB = 3 (grayscale = 1, RGB-D = 4 need other changes too).
    IMAGE_CHANNEL_COUNT = 3

    # Mean pixel (RGB) subtracted from inputs. float64: the subtraction happens in float64.
    MEAN_PIXEL = np.array([123.7, 116.8, 103.9])

    # ROIs per image fed to the classifier / mask heads in training.
    TRAIN_ROIS_PER_IMAGE = 200

    # Fraction of positive ROIs among TRAIN_ROIS_PER_IMAGE.
    ROI_POSITIVE_RATIO = 0.33

    # ROI-align output size of the classifier head and of the mask head.
    POOL_SIZE = 7
    MASK_POOL_SIZE = 14

    # Output mask size of the mask head (changing it needs a different mask head).
    MASK_SHAPE = [28, 28]

    # Maximum number of ground-truth instances per image.
    MAX_GT_INSTANCES = 100

    # Standard deviations that scale the box deltas of the RPN and of the final detections.
    RPN_BBOX_STD_DEV = np.array([0.1, 0.1, 0.2, 0.2])
    BBOX_STD_DEV = np.array([0.1, 0.1, 0.2, 0.2])

    # Maximum number of final detections per image.
    DETECTION_MAX_INSTANCES = 100

    # Minimum class probability for a detection to be kept.
    DETECTION_MIN_CONFIDENCE = 0.7

    # IoU threshold of the per-class non-maximum suppression of detections.
    DETECTION_NMS_THRESHOLD = 0.3

    # SGD learning rate and momentum (the paper's 0.02 made weights explode in the original).
    LEARNING_RATE = 0.001
    LEARNING_MOMENTUM = 0.9

    # L2 weight decay.
    WEIGHT_DECAY = 0.0001

    # Weights of the five losses.
    LOSS_WEIGHTS = {
        "rpn_class_loss": 1.,
        "rpn_bbox_loss": 1.,
        "mrcnn_class_loss": 1.,
        "mrcnn_bbox_loss": 1.,
        "mrcnn_mask_loss": 1.,
    }

    # Train the heads on RPN proposals (True) or on externally given ROIs (False, debugging).
    USE_RPN_ROIS = True

    # BatchNorm: None = trainable, False = frozen (small batches), True = always training mode.
    TRAIN_BN = False

    # Gradient norm clipping.
    GRADIENT_CLIP_NORM = 5.0

    def __init__(self, **overrides):
        for name, value in overrides.items():
            if name in ("BATCH_SIZE", "IMAGE_SHAPE", "IMAGE_META_SIZE"):
                raise ValueError(f"Config: {name} is derived; set its inputs instead")
            if not name.isupper() or not hasattr(self, name):
                raise ValueError(f"Config: unknown field {name!r} (fields are upper case, e.g. NUM_CLASSES)")
            setattr(self, name, value)
        if self.IMAGE_RESIZE_MODE not in RESIZE_MODES:
            raise ValueError(f"Config: IMAGE_RESIZE_MODE must be one of {RESIZE_MODES}, "
                             f"got {self.IMAGE_RESIZE_MODE!r}")
        # Effective batch size.
        self.BATCH_SIZE = self.IMAGES_PER_GPU * self.GPU_COUNT
        # Model input size; "crop" trains on IMAGE_MIN_DIM squares.
        side = self.IMAGE_MIN_DIM if self.IMAGE_RESIZE_MODE == "crop" else self.IMAGE_MAX_DIM
        self.IMAGE_SHAPE = np.array([side, side, self.IMAGE_CHANNEL_COUNT])
        # image_meta length: id + original shape + molded shape + window + scale + active classes.
        self.IMAGE_META_SIZE = 1 + 3 + 3 + 4 + 1 + self.NUM_CLASSES

    def _field_names(self):
        return [a for a in sorted(dir(self)) if a.isupper() and not a.startswith("_")]

    def to_dict(self):
        """All fields (defaults, overrides and derived values) as a dict."""
        return {a: getattr(self, a) for a in self._field_names()}

    def display(self):
        """Print all configuration values (Matterport's format)."""
        print("\nConfigurations:")
        for name, value in self.to_dict().items():
            print("{:30} {}".format(name, value))
        print("\n")

    def __repr__(self):
        return f"{type(self).__name__}(NAME={self.NAME!r})"
