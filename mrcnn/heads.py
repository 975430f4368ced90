"""Classifier/box and mask heads on PyramidROIAlign features (TimeDistributed, Matterport names)."""
import keras
from keras import layers as KL
from keras import ops

from mrcnn.backbone import BatchNorm
from mrcnn.roi_align import PyramidROIAlign


@keras.saving.register_keras_serializable(package="mrcnn")
class TimeDistributed(KL.TimeDistributed):
    """TimeDistributed that folds the ROI axis into the batch (one call of the inner layer).
    Keras 3's own wrapper runs a Python loop over a static time axis: 1000 separate convs."""

    def call(self, inputs, training=None, mask=None):
        steps = inputs.shape[1]
        x = ops.reshape(inputs, (-1,) + tuple(inputs.shape[2:]))
        kwargs = {"training": training} if self.layer._call_has_training_arg else {}
        y = self.layer.call(x, **kwargs)
        return ops.reshape(y, (-1, steps) + tuple(y.shape[1:]))


def fpn_classifier_graph(rois, feature_maps, image_meta, pool_size, num_classes, train_bn=True,
                         fc_layers_size=1024):
    """Returns (mrcnn_class_logits [B, R, K], mrcnn_probs [B, R, K], mrcnn_bbox [B, R, K, 4])."""
    x = PyramidROIAlign([pool_size, pool_size], name="roi_align_classifier")(
        [rois, image_meta] + list(feature_maps))
    # two 1024 "FC" layers implemented as convolutions (7x7 valid, then 1x1)
    x = TimeDistributed(KL.Conv2D(fc_layers_size, (pool_size, pool_size), padding="valid"),
                           name="mrcnn_class_conv1")(x)
    x = TimeDistributed(BatchNorm(), name="mrcnn_class_bn1")(x, training=train_bn)
    x = KL.Activation("relu")(x)
    x = TimeDistributed(KL.Conv2D(fc_layers_size, (1, 1)), name="mrcnn_class_conv2")(x)
    x = TimeDistributed(BatchNorm(), name="mrcnn_class_bn2")(x, training=train_bn)
    x = KL.Activation("relu")(x)
    shared = KL.Reshape((-1, fc_layers_size), name="pool_squeeze")(x)
    mrcnn_class_logits = TimeDistributed(KL.Dense(num_classes), name="mrcnn_class_logits")(shared)
    mrcnn_probs = TimeDistributed(KL.Activation("softmax"), name="mrcnn_class")(mrcnn_class_logits)
    x = TimeDistributed(KL.Dense(num_classes * 4, activation="linear"), name="mrcnn_bbox_fc")(shared)
    mrcnn_bbox = KL.Reshape((-1, num_classes, 4), name="mrcnn_bbox")(x)
    return mrcnn_class_logits, mrcnn_probs, mrcnn_bbox


def build_fpn_mask_graph(rois, feature_maps, image_meta, pool_size, num_classes, train_bn=True):
    """Returns mrcnn_mask [B, R, 2*pool, 2*pool, K] (sigmoid)."""
    x = PyramidROIAlign([pool_size, pool_size], name="roi_align_mask")(
        [rois, image_meta] + list(feature_maps))
    for i in range(1, 5):
        x = TimeDistributed(KL.Conv2D(256, (3, 3), padding="same"), name=f"mrcnn_mask_conv{i}")(x)
        x = TimeDistributed(BatchNorm(), name=f"mrcnn_mask_bn{i}")(x, training=train_bn)
        x = KL.Activation("relu")(x)
    x = TimeDistributed(KL.Conv2DTranspose(256, (2, 2), strides=2, activation="relu"),
                           name="mrcnn_mask_deconv")(x)
    x = TimeDistributed(KL.Conv2D(num_classes, (1, 1), strides=1, activation="sigmoid"),
                           name="mrcnn_mask")(x)
    return x
