"""Backend-neutral (keras.ops) building blocks of the Mask R-CNN graph.

Everything here works on TensorFlow and JAX, is jit-able and has static output shapes:
greedy NMS with a fixed-size padded result, `tf.image.crop_and_resize`-compatible bilinear
crops, image-meta parsing and small box helpers.
"""
import numpy as np
from keras import ops


# ---------------------------------------------------------------------------------------------
# image meta
# ---------------------------------------------------------------------------------------------
def parse_image_meta_graph(meta):
    """Split an image_meta tensor [B, 12 + NUM_CLASSES] into its parts (layout of
    Matterport's compose_image_meta: id, original shape, molded shape, window, scale, active ids)."""
    meta = ops.cast(meta, "float32")
    return {
        "image_id": meta[:, 0],
        "original_image_shape": meta[:, 1:4],
        "image_shape": meta[:, 4:7],
        "window": meta[:, 7:11],
        "scale": meta[:, 11],
        "active_class_ids": meta[:, 12:],
    }


# ---------------------------------------------------------------------------------------------
# IoU and NMS
# ---------------------------------------------------------------------------------------------
def pairwise_iou_nms(boxes_a, boxes_b):
    """IoU between [..., Na, 4] and [..., Nb, 4] computed as TF's NMS kernel does it:
    corners are ordered with min/max and the IoU is 0 when either box has non-positive area."""
    ya1 = ops.minimum(boxes_a[..., 0], boxes_a[..., 2])
    ya2 = ops.maximum(boxes_a[..., 0], boxes_a[..., 2])
    xa1 = ops.minimum(boxes_a[..., 1], boxes_a[..., 3])
    xa2 = ops.maximum(boxes_a[..., 1], boxes_a[..., 3])
    yb1 = ops.minimum(boxes_b[..., 0], boxes_b[..., 2])
    yb2 = ops.maximum(boxes_b[..., 0], boxes_b[..., 2])
    xb1 = ops.minimum(boxes_b[..., 1], boxes_b[..., 3])
    xb2 = ops.maximum(boxes_b[..., 1], boxes_b[..., 3])
    area_a = (ya2 - ya1) * (xa2 - xa1)
    area_b = (yb2 - yb1) * (xb2 - xb1)
    iy1 = ops.maximum(ya1[..., :, None], yb1[..., None, :])
    ix1 = ops.maximum(xa1[..., :, None], xb1[..., None, :])
    iy2 = ops.minimum(ya2[..., :, None], yb2[..., None, :])
    ix2 = ops.minimum(xa2[..., :, None], xb2[..., None, :])
    inter = ops.maximum(iy2 - iy1, 0.0) * ops.maximum(ix2 - ix1, 0.0)
    union = area_a[..., :, None] + area_b[..., None, :] - inter
    positive = ops.logical_and(area_a[..., :, None] > 0, area_b[..., None, :] > 0)
    safe_union = ops.where(positive, union, ops.ones_like(union))
    return ops.where(positive, inter / safe_union, ops.zeros_like(inter))


def _greedy_keep_sorted(boxes, valid, iou_threshold, max_output_size, class_ids=None, block_size=256):
    """Greedy NMS on boxes already sorted by priority. boxes [B, N, 4], valid [B, N] bool.

    Blockwise: a block is first suppressed by the kept boxes of earlier blocks (one matrix op),
    then resolved internally by a fixed-point iteration that converges to the greedy result
    (position i is final once positions < i are). Stops early once every image has
    max_output_size kept boxes. Returns keep [B, N] bool."""
    batch = ops.shape(boxes)[0]
    n = boxes.shape[1]
    bs = int(min(block_size, max(n, 1)))
    n_blocks = -(-n // bs)
    n_pad = n_blocks * bs
    if n_pad != n:
        boxes = ops.pad(boxes, [[0, 0], [0, n_pad - n], [0, 0]])
        valid = ops.pad(valid, [[0, 0], [0, n_pad - n]], constant_values=False)
        if class_ids is not None:
            class_ids = ops.pad(class_ids, [[0, 0], [0, n_pad - n]], constant_values=-1)
    thr = float(iou_threshold)
    lower = np.arange(bs)[:, None] < np.arange(bs)[None, :]  # [j, i]: j before i
    lower = ops.convert_to_tensor(lower)

    def block_step(b, keep):
        start = b * bs
        blk = ops.slice(boxes, [0, start, 0], [batch, bs, 4])
        blk_valid = ops.slice(valid, [0, start], [batch, bs])
        over_prev = pairwise_iou_nms(blk, boxes) > thr  # [B, bs, N]
        over_self = pairwise_iou_nms(blk, blk) > thr  # [B, bs(j), bs(i)]
        if class_ids is not None:
            blk_cls = ops.slice(class_ids, [0, start], [batch, bs])
            over_prev = ops.logical_and(over_prev, ops.equal(blk_cls[:, :, None], class_ids[:, None, :]))
            over_self = ops.logical_and(over_self, ops.equal(blk_cls[:, :, None], blk_cls[:, None, :]))
        suppressed = ops.any(ops.logical_and(over_prev, keep[:, None, :]), axis=2)
        candidates = ops.logical_and(blk_valid, ops.logical_not(suppressed))
        over_self = ops.logical_and(over_self, lower[None])

        def fp_cond(k, changed):
            return changed

        def fp_body(k, changed):
            hit = ops.any(ops.logical_and(over_self, k[:, :, None]), axis=1)
            k_new = ops.logical_and(candidates, ops.logical_not(hit))
            return k_new, ops.any(ops.not_equal(k_new, k))

        k, _ = ops.while_loop(fp_cond, fp_body, (candidates, ops.convert_to_tensor(True)),
                              maximum_iterations=bs + 1)
        return ops.slice_update(keep, [0, start], k)

    def cond(b, keep):
        enough = ops.all(ops.sum(ops.cast(keep, "int32"), axis=1) >= max_output_size)
        return ops.logical_and(b < n_blocks, ops.logical_not(enough))

    def body(b, keep):
        return b + 1, block_step(b, keep)

    keep0 = ops.zeros((batch, n_pad), dtype="bool")
    _, keep = ops.while_loop(cond, body, (ops.convert_to_tensor(0, dtype="int32"), keep0))
    return keep[:, :n]


def non_max_suppression_padded(boxes, scores, max_output_size, iou_threshold, valid=None,
                               class_ids=None, presorted=False, block_size=256):
    """Batched greedy NMS with a fixed-size output, numerically like tf.image.non_max_suppression.

    boxes [B, N, 4], scores [B, N]. Candidates are visited by descending score, ties to the lower
    index (stable); a candidate is dropped when its IoU with a kept box is > iou_threshold.
    With class_ids [B, N] only boxes of the same class suppress each other (per-class NMS).
    Returns (indices [B, max_output_size] int32 into the input rows, in selection order,
    and a bool mask [B, max_output_size] of the filled slots; unfilled slots hold index 0)."""
    n = boxes.shape[1]
    if valid is None:
        valid = ops.ones(ops.shape(scores), dtype="bool")
    if presorted:
        order = ops.broadcast_to(ops.arange(n, dtype="int32")[None], ops.shape(scores))
        s_boxes, s_valid, s_cls = boxes, valid, class_ids
    else:
        _, order = ops.top_k(scores, k=n, sorted=True)
        order = ops.cast(order, "int32")
        s_boxes = ops.take_along_axis(boxes, order[:, :, None], axis=1)
        s_valid = ops.take_along_axis(valid, order, axis=1)
        s_cls = None if class_ids is None else ops.take_along_axis(class_ids, order, axis=1)
    keep = _greedy_keep_sorted(s_boxes, s_valid, iou_threshold, max_output_size, s_cls, block_size)
    k = int(min(max_output_size, n))
    # First k kept positions in priority order: the smallest keys among kept rows.
    pos = ops.arange(n, dtype="float32")[None]
    key = ops.where(keep, pos, pos + float(n))
    _, first = ops.top_k(-key, k=k, sorted=True)
    first = ops.cast(first, "int32")
    filled = ops.take_along_axis(keep, first, axis=1)
    indices = ops.take_along_axis(order, first, axis=1)
    indices = ops.where(filled, indices, ops.zeros_like(indices))
    if k < max_output_size:
        pad = max_output_size - k
        indices = ops.pad(indices, [[0, 0], [0, pad]])
        filled = ops.pad(filled, [[0, 0], [0, pad]], constant_values=False)
    return indices, filled


# ---------------------------------------------------------------------------------------------
# crop_and_resize
# ---------------------------------------------------------------------------------------------
def _sample_coords(lo, hi, size, crop):
    """TF crop_and_resize sampling positions (float32, same operation order as the TF kernel):
    in = lo*(size-1) + i * ((hi-lo)*(size-1)/(crop-1)); crop == 1 samples the box centre."""
    size_m1 = ops.cast(size, "float32") - 1.0
    if crop > 1:
        scale = (hi - lo) * size_m1 / float(crop - 1)
        steps = ops.arange(crop, dtype="float32")
        return lo[..., None] * size_m1[..., None] + steps * scale[..., None]
    return (0.5 * (lo + hi) * size_m1)[..., None]


def crop_and_resize_flat(flat_features, boxes, heights, widths, offsets, crop_size):
    """Bilinear crops of several feature maps stored flattened in one tensor.

    flat_features [B, M, C] (row-major maps concatenated), boxes [B, R, 4] normalized,
    heights/widths/offsets [B, R] (int32): the map each box samples from.
    Returns [B, R, ch, cw, C]. Samples outside [0, size-1] give 0 (TF's extrapolation value)."""
    ch, cw = int(crop_size[0]), int(crop_size[1])
    y1, x1, y2, x2 = boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]
    hf = ops.cast(heights, "float32")
    wf = ops.cast(widths, "float32")
    in_y = _sample_coords(y1, y2, heights, ch)  # [B, R, ch]
    in_x = _sample_coords(x1, x2, widths, cw)  # [B, R, cw]
    valid_y = ops.logical_and(in_y >= 0.0, in_y <= (hf - 1.0)[..., None])
    valid_x = ops.logical_and(in_x >= 0.0, in_x <= (wf - 1.0)[..., None])
    top = ops.floor(in_y)
    left = ops.floor(in_x)
    y_lerp = in_y - top
    x_lerp = in_x - left
    bottom = ops.ceil(in_y)
    right = ops.ceil(in_x)
    hi_y = (heights - 1)[..., None]
    hi_x = (widths - 1)[..., None]
    # indices clamped so that gathers stay in range; invalid samples are zeroed afterwards
    top_i = ops.clip(ops.cast(top, "int32"), 0, hi_y)
    bot_i = ops.clip(ops.cast(bottom, "int32"), 0, hi_y)
    left_i = ops.clip(ops.cast(left, "int32"), 0, hi_x)
    right_i = ops.clip(ops.cast(right, "int32"), 0, hi_x)
    row_off = offsets[..., None]

    def rows(yi):  # row start index of each sample row in the flat map
        return row_off + yi * widths[..., None]

    tl = _gather_map(flat_features, rows(top_i), left_i, ch, cw)
    tr = _gather_map(flat_features, rows(top_i), right_i, ch, cw)
    bl = _gather_map(flat_features, rows(bot_i), left_i, ch, cw)
    br = _gather_map(flat_features, rows(bot_i), right_i, ch, cw)
    xl = x_lerp[:, :, None, :, None]
    yl = y_lerp[:, :, :, None, None]
    top_v = tl + (tr - tl) * xl
    bot_v = bl + (br - bl) * xl
    out = top_v + (bot_v - top_v) * yl
    ok = ops.logical_and(valid_y[:, :, :, None], valid_x[:, :, None, :])[..., None]
    return ops.where(ok, out, ops.zeros_like(out))


def _gather_map(flat_features, row_start, col, ch, cw):
    """Gather [B, R, ch, cw, C] rows of flat_features [B, M, C] with one flat `take` (a plain
    gather; take_along_axis would broadcast the index over the channels)."""
    idx = row_start[..., :, None] + col[..., None, :]  # [B, R, ch, cw]
    shape = ops.shape(idx)
    fshape = ops.shape(flat_features)
    batch_off = ops.arange(shape[0], dtype="int32") * ops.cast(fshape[1], "int32")
    flat_idx = ops.reshape(idx + batch_off[:, None, None, None], (-1,))
    table = ops.reshape(flat_features, (-1, fshape[2]))
    vals = ops.take(table, flat_idx, axis=0)
    return ops.reshape(vals, (shape[0], shape[1], ch, cw, fshape[2]))


def crop_and_resize(image, boxes, crop_size):
    """tf.image.crop_and_resize for the batched case box b -> image b.
    image [B, H, W, C], boxes [B, R, 4] normalized -> [B, R, ch, cw, C]."""
    shape = ops.shape(image)
    flat = ops.reshape(image, (shape[0], -1, shape[3]))
    r = ops.shape(boxes)[1]
    ones = ops.ones((shape[0], r), dtype="int32")
    h = ones * ops.cast(shape[1], "int32")
    w = ones * ops.cast(shape[2], "int32")
    return crop_and_resize_flat(flat, boxes, h, w, ones * 0, crop_size)


# ---------------------------------------------------------------------------------------------
# batch helpers
# ---------------------------------------------------------------------------------------------
def gather_rows(x, indices):
    """x [B, N, ...], indices [B, K] -> [B, K, ...] (per-image gather)."""
    idx = indices
    for _ in range(len(x.shape) - 2):
        idx = idx[..., None]
    return ops.take_along_axis(x, idx, axis=1)


def zero_unfilled(x, filled):
    """Zero the rows of x [B, K, ...] where filled [B, K] is False (Matterport's zero padding)."""
    mask = filled
    for _ in range(len(x.shape) - 2):
        mask = mask[..., None]
    return ops.where(mask, x, ops.zeros_like(x))
