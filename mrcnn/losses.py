"""The five Mask R-CNN training losses (Matterport names and formulas), in `keras.ops`.

Matterport gathers the contributing rows with `tf.where` / `tf.gather_nd`, which gives
data-dependent shapes. Here every loss is a masked sum divided by the number of contributing
elements, which is the same mean, has static shapes (JAX `jit`) and returns 0 where Matterport's
`K.switch(tf.size(loss) > 0, ..., 0)` does.
"""
import numpy as np
from keras import ops


def smooth_l1_loss(y_true, y_pred):
    """Element-wise Smooth-L1 (Huber with delta 1): 0.5 d^2 if |d| < 1 else |d| - 0.5."""
    diff = ops.abs(ops.cast(y_true, "float32") - ops.cast(y_pred, "float32"))
    less_than_one = ops.cast(ops.less(diff, 1.0), "float32")
    return less_than_one * 0.5 * diff ** 2 + (1.0 - less_than_one) * (diff - 0.5)


def _masked_mean(values, weights):
    """sum(values * weights) / sum(weights); 0 when no weight is set (Matterport's empty case)."""
    total = ops.sum(values * weights)
    count = ops.sum(weights)
    return ops.where(count > 0, total / ops.maximum(count, 1.0), 0.0)


def rpn_class_loss_graph(rpn_match, rpn_class_logits):
    """RPN anchor classifier loss: softmax cross entropy over positive and negative anchors.

    rpn_match: [batch, anchors, 1] int, 1 = positive, -1 = negative, 0 = neutral (ignored).
    rpn_class_logits: [batch, anchors, 2] BG/FG logits.
    """
    rpn_match = ops.squeeze(ops.cast(rpn_match, "int32"), -1)
    anchor_class = ops.cast(ops.equal(rpn_match, 1), "int32")
    used = ops.cast(ops.not_equal(rpn_match, 0), "float32")
    loss = ops.sparse_categorical_crossentropy(anchor_class, ops.cast(rpn_class_logits, "float32"),
                                               from_logits=True)
    return _masked_mean(loss, used)


def rpn_bbox_loss_graph(config, target_bbox, rpn_match, rpn_bbox):
    """RPN box regression loss: Smooth-L1 mean over the 4 deltas of every positive anchor.

    target_bbox: [batch, RPN_TRAIN_ANCHORS_PER_IMAGE, 4], the targets of the positive anchors in
        anchor order, zero padded (as `build_rpn_targets` writes them).
    rpn_match: [batch, anchors, 1]; rpn_bbox: [batch, anchors, 4] predicted deltas.
    `config` is unused (Matterport needs IMAGES_PER_GPU for batch_pack_graph); kept for the signature.
    """
    del config
    rpn_match = ops.squeeze(ops.cast(rpn_match, "int32"), -1)
    positive = ops.cast(ops.equal(rpn_match, 1), "int32")
    # The k-th positive anchor of an image (in anchor order) owns row k of target_bbox.
    rank = ops.cumsum(positive, axis=1) - 1
    num_rows = ops.shape(target_bbox)[1]
    rank = ops.clip(rank, 0, num_rows - 1)
    index = ops.repeat(ops.expand_dims(rank, -1), 4, axis=-1)
    target = ops.take_along_axis(ops.cast(target_bbox, "float32"), index, axis=1)
    loss = smooth_l1_loss(target, rpn_bbox)
    weights = ops.repeat(ops.expand_dims(ops.cast(positive, "float32"), -1), 4, axis=-1)
    return _masked_mean(loss, weights)


def mrcnn_class_loss_graph(target_class_ids, pred_class_logits, active_class_ids):
    """Classifier head loss: softmax cross entropy over all TRAIN_ROIS_PER_IMAGE rows (padding rows
    count as background, as in Matterport), with rows whose *predicted* class is not active in the
    image's dataset erased. As Matterport, the active classes of the first image are used for the
    whole batch.

    target_class_ids: [batch, rois]; pred_class_logits: [batch, rois, classes];
    active_class_ids: [batch, classes] (1 = class is in the image's dataset).
    """
    target_class_ids = ops.cast(target_class_ids, "int32")
    pred_class_logits = ops.cast(pred_class_logits, "float32")
    pred_class_ids = ops.argmax(pred_class_logits, axis=2)
    pred_active = ops.take(ops.cast(active_class_ids, "float32")[0], pred_class_ids, axis=0)
    loss = ops.sparse_categorical_crossentropy(target_class_ids, pred_class_logits, from_logits=True)
    # Matterport divides without a guard (NaN when nothing is active); 0 is returned instead.
    return _masked_mean(loss, pred_active)


def mrcnn_bbox_loss_graph(target_bbox, target_class_ids, pred_bbox):
    """Box head loss: Smooth-L1 mean over the deltas of the target class of each positive ROI.

    target_bbox: [batch, rois, 4]; target_class_ids: [batch, rois];
    pred_bbox: [batch, rois, classes, 4].
    """
    num_classes = pred_bbox.shape[2]
    target_class_ids = ops.reshape(ops.cast(target_class_ids, "int32"), (-1,))
    target_bbox = ops.reshape(ops.cast(target_bbox, "float32"), (-1, 4))
    pred_bbox = ops.reshape(ops.cast(pred_bbox, "float32"), (-1, num_classes, 4))
    positive = ops.cast(target_class_ids > 0, "float32")
    one_hot = ops.one_hot(ops.maximum(target_class_ids, 0), num_classes)
    pred = ops.sum(pred_bbox * ops.expand_dims(one_hot, -1), axis=1)
    loss = smooth_l1_loss(target_bbox, pred)
    return _masked_mean(loss, ops.repeat(ops.expand_dims(positive, -1), 4, axis=-1))


def mrcnn_mask_loss_graph(target_masks, target_class_ids, pred_masks):
    """Mask head loss: per-pixel binary cross entropy of the target-class mask of each positive ROI.

    target_masks: [batch, rois, h, w] in {0, 1}; target_class_ids: [batch, rois];
    pred_masks: [batch, rois, h, w, classes] sigmoid probabilities.
    """
    height, width, num_classes = pred_masks.shape[2], pred_masks.shape[3], pred_masks.shape[4]
    target_class_ids = ops.reshape(ops.cast(target_class_ids, "int32"), (-1,))
    target_masks = ops.reshape(ops.cast(target_masks, "float32"), (-1, height, width))
    pred_masks = ops.reshape(ops.cast(pred_masks, "float32"), (-1, height, width, num_classes))
    one_hot = ops.one_hot(ops.maximum(target_class_ids, 0), num_classes)
    pred = ops.sum(pred_masks * one_hot[:, None, None, :], axis=-1)
    # Keras' probability BCE (clips to [eps, 1 - eps]), as Matterport's K.binary_crossentropy.
    loss = ops.binary_crossentropy(target_masks, pred, from_logits=False)
    positive = ops.cast(target_class_ids > 0, "float32")
    weights = ops.broadcast_to(positive[:, None, None], ops.shape(loss))
    return _masked_mean(loss, weights)


def weight_decay_loss(trainable_weights, weight_decay):
    """Matterport's L2 regularisation: sum over trainable weights whose name has neither 'gamma'
    nor 'beta' (BatchNorm) of WEIGHT_DECAY * sum(w^2) / size(w). Biases are included, as in
    Matterport's `compile()`."""
    terms = []
    for w in trainable_weights:
        name = getattr(w, "path", None) or w.name
        leaf = name.split("/")[-1]
        if "gamma" in leaf or "beta" in leaf:
            continue
        size = float(np.prod(w.shape)) if len(w.shape) else 1.0
        terms.append(weight_decay * ops.sum(ops.square(ops.cast(w, "float32"))) / size)
    if not terms:
        return ops.convert_to_tensor(0.0)
    return ops.sum(ops.stack(terms))
