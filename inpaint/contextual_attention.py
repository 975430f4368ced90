"""Contextual attention (Yu et al. 2018), keras.ops, vectorised over the batch.

Numerics follow `contextual_attention` of `inpaint_ops.py` in generative_inpainting v1.0.0:
- reconstruction patches: (2*rate)x(2*rate) patches of the full-resolution background `b`,
  stride rate*stride, TF 'SAME' padding;
- matching: `f` and `b` are downsampled by 1/rate (nearest, align_corners=True); scores are the
  correlation of 3x3 (ksize) foreground windows with 3x3 background patches (zero 'SAME' padding),
  each background patch divided by max(||patch||_2, 1e-4); the foreground is not normalised;
- fuse: a fuse_k x fuse_k identity kernel is convolved over the (Hf*Wf) x (Hb*Wb) score matrix,
  then again in transposed (w, h) order;
- validity `mm`: 1 for background patches whose 3x3 mask window is all 0. The original computes
  it from batch item 0 of the mask only (kept as the default); `per_sample_mask=True` uses each
  item's own mask (for batched inference of different holes);
- scores * mm, softmax(scale * scores), * mm again (invalid logits become 0, not -inf);
- y = conv2d_transpose(attention, raw patches, stride rate, SAME) / 4;
- offsets = (argmax // Wf, argmax % Wf) minus the query position; flow = colour-coded offsets,
  nearest-upsampled by `rate`.

The original loops over the batch in Python with per-sample convolutions; here matching and pasting
are batched matmuls (einsum) and the transposed conv is an overlap-add of the pasted patches.

Memory: the score matrix is B x (H/rate * W/rate)^2 float32 with a few live copies (fuse, softmax);
in the generator (attention on the H/8 x W/8 grid of an H x W image) one copy is (H*W/64)^2 * 4 bytes
per image: 64 MiB at 512x512, 1 GiB at 1024x1024, 16 GiB at 2048x2048. See docs/inpaint.md.
"""
from __future__ import annotations

import numpy as np
from keras import ops

from inpaint.flow import flow_to_image
from inpaint.ops import resize_nearest, same_padding


def extract_patches(x, ksize: int, stride: int):
    """TF `extract_image_patches` with 'SAME' padding, NHWC -> B x (Ho*Wo) x ksize x ksize x C."""
    b, h, w, c = (int(s) for s in x.shape)
    top, bottom = same_padding(h, ksize, stride)
    left, right = same_padding(w, ksize, stride)
    xp = ops.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]])
    out_h, out_w = -(-h // stride), -(-w // stride)
    rows = []
    for i in range(ksize):
        cols = []
        for j in range(ksize):
            cols.append(xp[:, i:i + stride * (out_h - 1) + 1:stride, j:j + stride * (out_w - 1) + 1:stride, :])
        rows.append(ops.stack(cols, axis=3))  # B x Ho x Wo x k x C
    patches = ops.stack(rows, axis=3)  # B x Ho x Wo x k x k x C
    return ops.reshape(patches, (b, out_h * out_w, ksize, ksize, c))


def _diagonal_fuse(scores, k: int):
    """Convolve a k x k identity kernel (zero SAME padding) over the last two axes of B x P x L."""
    if k == 1:
        return scores
    p, l_ = int(scores.shape[1]), int(scores.shape[2])
    h = k // 2
    padded = ops.pad(scores, [[0, 0], [h, k - 1 - h], [h, k - 1 - h]])
    out = padded[:, 0:p, 0:l_]
    for i in range(1, k):
        out = out + padded[:, i:i + p, i:i + l_]
    return out


def _overlap_add(patches, out_h: int, out_w: int, rate: int):
    """conv2d_transpose of B x Hq x Wq x K x K x C patches (K = 2*rate) with stride `rate`, 'SAME',
    to B x out_h x out_w x C: every kernel offset k = a*rate + r lands on block (q + a), sub-pixel r."""
    b, hq, wq, kk, _, c = (int(s) for s in patches.shape)
    s = rate
    assert kk == 2 * s
    total = None
    for a in range(2):
        for a2 in range(2):
            part = patches[:, :, :, a * s:(a + 1) * s, a2 * s:(a2 + 1) * s, :]  # B Hq Wq s s C
            part = ops.pad(part, [[0, 0], [a, 1 - a], [a2, 1 - a2], [0, 0], [0, 0], [0, 0]])
            total = part if total is None else total + part
    full = ops.reshape(ops.transpose(total, (0, 1, 3, 2, 4, 5)), (b, (hq + 1) * s, (wq + 1) * s, c))
    top = same_padding(out_h, kk, s)[0]
    left = same_padding(out_w, kk, s)[0]
    return full[:, top:top + out_h, left:left + out_w, :]


def contextual_attention(f, b, mask=None, ksize=3, stride=1, rate=1, fuse_k=3, softmax_scale=10.,
                         training=True, fuse=True, per_sample_mask=False, return_offsets=False):
    """Contextual attention. f, b: B x H x W x C float32 (same shape); mask: M x H x W x 1 (1 = hole,
    M = 1 or B) or None. Returns (y, flow) or (y, flow, offsets) with y B x H x W x C,
    flow B x (H/rate*rate) x (W/rate*rate) x 3 in [-1, 1], offsets int32 B x H/rate x W/rate x 2.
    `training` is unused (as in v1)."""
    del training
    if tuple(f.shape) != tuple(b.shape):
        raise ValueError(f"contextual_attention needs f and b of the same shape, got {tuple(f.shape)} "
                         f"and {tuple(b.shape)}")
    if stride != 1:
        raise NotImplementedError("only stride=1 (the value DeepFill uses) is implemented")
    batch, raw_h, raw_w, chans = (int(s) for s in f.shape)
    if raw_h % rate or raw_w % rate:
        raise ValueError(f"feature size {raw_h}x{raw_w} must be divisible by rate={rate}")

    # raw (2*rate)x(2*rate) background patches for pasting: B x L x (K*K*C)
    kernel = 2 * rate
    raw_patches = extract_patches(b, kernel, rate * stride)
    raw_patches = ops.reshape(raw_patches, (batch, -1, kernel * kernel * chans))

    # matching on the 1/rate grid
    f_small = resize_nearest(f, (int(raw_h / rate), int(raw_w / rate)))
    b_small = resize_nearest(b, (int(raw_h / rate), int(raw_w / rate)))
    hf, wf = int(f_small.shape[1]), int(f_small.shape[2])
    hb, wb = int(b_small.shape[1]), int(b_small.shape[2])
    w = ops.reshape(extract_patches(b_small, ksize, stride), (batch, hb * wb, ksize * ksize * chans))
    w_norm = w / ops.maximum(ops.sqrt(ops.sum(ops.square(w), axis=2, keepdims=True)), 1e-4)
    # f windows (zero SAME padding) == conv2d(f, w_norm, SAME)
    fw = ops.reshape(extract_patches(f_small, ksize, 1), (batch, hf * wf, ksize * ksize * chans))
    scores = ops.einsum("bpk,blk->bpl", fw, w_norm)  # B x P x L

    if fuse:
        scores = _diagonal_fuse(scores, fuse_k)
        scores = ops.reshape(scores, (batch, hf, wf, hb, wb))
        scores = ops.reshape(ops.transpose(scores, (0, 2, 1, 4, 3)), (batch, wf * hf, wb * hb))
        scores = _diagonal_fuse(scores, fuse_k)
        scores = ops.reshape(scores, (batch, wf, hf, wb, hb))
        scores = ops.reshape(ops.transpose(scores, (0, 2, 1, 4, 3)), (batch, hf * wf, hb * wb))

    # validity of background patches: their ksize x ksize mask window is entirely known
    if mask is None:
        mask_small = ops.zeros((1, hb, wb, 1), dtype="float32")
    else:
        mask = ops.cast(mask, "float32")
        mask_small = resize_nearest(mask, (int(int(mask.shape[1]) / rate), int(int(mask.shape[2]) / rate)))
        if not per_sample_mask:
            mask_small = mask_small[0:1]  # the original uses batch item 0 only
        elif int(mask_small.shape[0]) not in (1, batch):
            raise ValueError(f"per-sample mask needs batch 1 or {batch}, got {int(mask_small.shape[0])}")
    m_patches = extract_patches(mask_small, ksize, stride)  # M x L x k x k x 1
    mm = ops.cast(ops.mean(m_patches, axis=(2, 3, 4)) == 0.0, "float32")[:, None, :]  # M x 1 x L

    scores = scores * mm
    attention = ops.softmax(scores * softmax_scale, axis=-1)
    attention = attention * mm

    argmax = ops.cast(ops.argmax(attention, axis=-1), "int32")  # B x P
    argmax = ops.reshape(argmax, (batch, hf, wf))
    rows = np.arange(hb, dtype=np.int32).reshape(1, hb, 1)
    cols = np.arange(wb, dtype=np.int32).reshape(1, 1, wb)
    offsets = ops.stack([argmax // wf - rows, argmax % wf - cols], axis=-1)

    # paste: attention-weighted raw patches, overlap-added with stride `rate`, / 4 as the original
    pasted = ops.einsum("bpl,blk->bpk", attention, raw_patches)
    pasted = ops.reshape(pasted, (batch, hf, wf, kernel, kernel, chans))
    y = _overlap_add(pasted, raw_h, raw_w, rate) / 4.0

    flow = flow_to_image(offsets)
    if rate != 1:
        flow = resize_nearest(flow, (hb * rate, wb * rate))
    if return_offsets:
        return y, flow, offsets
    return y, flow
