"""Region Proposal Network head, shared across FPN levels as the nested model "rpn_model"."""
import keras
from keras import layers as KL
from keras import ops


@keras.saving.register_keras_serializable(package="mrcnn")
def eigen_order_softmax(logits):
    """Softmax over the last axis as TF's CPU (Eigen) Softmax kernel computes it, which the
    reference ran: e = exp(x - max(x)); e * (1 / sum(e)). keras.ops.softmax may instead map
    to oneDNN's kernel (TF with oneDNN on) or divide (JAX), changing about half of the RPN
    scores by up to 2 ulps; near-tied scores then reorder the NMS candidates."""
    e = ops.exp(logits - ops.max(logits, axis=-1, keepdims=True))
    return e * (1.0 / ops.sum(e, axis=-1, keepdims=True))


def rpn_graph(feature_map, anchors_per_location, anchor_stride):
    """Returns [rpn_class_logits [B, A, 2], rpn_probs [B, A, 2], rpn_bbox [B, A, 4]], rows in
    (y, x, anchor) row-major order."""
    shared = KL.Conv2D(512, (3, 3), padding="same", activation="relu", strides=anchor_stride,
                       name="rpn_conv_shared")(feature_map)
    x = KL.Conv2D(2 * anchors_per_location, (1, 1), padding="valid", activation="linear",
                  name="rpn_class_raw")(shared)
    rpn_class_logits = KL.Reshape((-1, 2))(x)
    rpn_probs = KL.Activation(eigen_order_softmax, name="rpn_class_xxx")(rpn_class_logits)
    x = KL.Conv2D(anchors_per_location * 4, (1, 1), padding="valid", activation="linear",
                  name="rpn_bbox_pred")(shared)
    rpn_bbox = KL.Reshape((-1, 4))(x)
    return [rpn_class_logits, rpn_probs, rpn_bbox]


def build_rpn_model(anchor_stride, anchors_per_location, depth):
    input_feature_map = KL.Input(shape=[None, None, depth], name="input_rpn_feature_map")
    outputs = rpn_graph(input_feature_map, anchors_per_location, anchor_stride)
    return keras.Model([input_feature_map], outputs, name="rpn_model")
