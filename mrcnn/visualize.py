"""Plots of images, instances, boxes and evaluation results (Matterport's visualize.py names).

Every function draws on a matplotlib Figure with the Agg canvas (no pyplot, no window, safe in
threads and on headless machines) and returns the Figure; with `ax` given, it draws into that axes.
Where the figure goes (Matterport's calls pass no path and expect plt.show()):
- `save_path` given: a PNG written there atomically;
- no `save_path`, in IPython/Jupyter: nothing written, the returned Figure is displayed;
- no `save_path` elsewhere (scripts, no display): a new numbered PNG in $MRCNN_FIGURE_DIR
  (default ./mrcnn_figures), e.g. display_instances_0001.png, never overwriting one; its
  path is printed.
"""
import colorsys
import itertools
import os
import random
import sys

import numpy as np
from matplotlib import patches
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from skimage.measure import find_contours

from gonefiles import write_atomic


############################################################
#  Helpers
############################################################

def _new_figure(figsize, dpi=100):
    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _axes(ax, figsize, dpi):
    if ax is not None:
        return ax.figure, ax
    fig = _new_figure(figsize, dpi)
    return fig, fig.add_subplot(1, 1, 1)


def save_figure(fig, save_path):
    """Write fig as a PNG atomically; returns the path."""
    save_path = os.fspath(save_path)
    write_atomic(save_path, lambda tmp: fig.savefig(tmp, format="png", dpi=fig.dpi), suffix=".png")
    return save_path


def _in_ipython():
    shell = sys.modules.get("IPython")
    return shell is not None and shell.get_ipython() is not None


def _next_figure_path(name):
    """A new file <figure dir>/<name>_NNNN.png, reserved with O_EXCL so runs never share one."""
    folder = os.environ.get("MRCNN_FIGURE_DIR") or "mrcnn_figures"
    os.makedirs(folder, exist_ok=True)
    for number in itertools.count(1):
        path = os.path.join(folder, f"{name}_{number:04d}.png")
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return path
        except FileExistsError:
            continue


def _finish(fig, save_path, name, own_figure=True):
    """Save to save_path; with none, write a numbered file unless IPython displays the figure
    (or the caller drew into its own axes)."""
    if save_path is not None:
        save_figure(fig, save_path)
    elif own_figure and not _in_ipython():
        path = save_figure(fig, _next_figure_path(name))
        print(f"{name}: figure written to {path}")
    return fig


def random_colors(N, bright=True, seed=None):
    """N visually distinct RGB colours (floats in [0, 1]): evenly spaced hues, shuffled.
    seed: shuffle with a private RNG for repeatable colours (default: global `random`)."""
    brightness = 1.0 if bright else 0.7
    colors = [colorsys.hsv_to_rgb(i / N, 1, brightness) for i in range(N)]
    (random.Random(seed) if seed is not None else random).shuffle(colors)
    return colors


def apply_mask(image, mask, color, alpha=0.5):
    """Blend `color` (floats in [0, 1]) into image where mask == 1 (in place; returns image)."""
    for c in range(3):
        image[:, :, c] = np.where(mask == 1, image[:, :, c] * (1 - alpha) + alpha * color[c] * 255,
                                  image[:, :, c])
    return image


############################################################
#  Instances
############################################################

def display_instances(image, boxes, masks, class_ids, class_names, scores=None, title="",
                      figsize=(16, 16), ax=None, show_mask=True, show_bbox=True, colors=None,
                      captions=None, save_path=None, dpi=100):
    """Image with instance boxes (dashed), masks (blended + contour) and captions.

    boxes [N, (y1, x1, y2, x2)] pixels; masks [H, W, N]; class_ids [N]; class_names list;
    scores [N] optional; captions: list of N strings replacing "class score".
    """
    n = boxes.shape[0]
    if n and not (boxes.shape[0] == masks.shape[-1] == class_ids.shape[0]):
        raise ValueError(f"display_instances: {boxes.shape[0]} boxes, {masks.shape[-1]} masks and "
                         f"{class_ids.shape[0]} class ids must match")
    own_figure = ax is None
    fig, ax = _axes(ax, figsize, dpi)
    colors = colors or random_colors(n)
    height, width = image.shape[:2]
    ax.set_ylim(height + 10, -10)
    ax.set_xlim(-10, width + 10)
    ax.axis("off")
    ax.set_title(title)

    masked_image = image.astype(np.uint32).copy()
    for i in range(n):
        color = colors[i]
        if not np.any(boxes[i]):
            continue  # zero padding (e.g. lost in cropping)
        y1, x1, y2, x2 = boxes[i]
        if show_bbox:
            ax.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, linewidth=2, alpha=0.7,
                                           linestyle="dashed", edgecolor=color, facecolor="none"))
        if captions:
            caption = captions[i]
        else:
            label = class_names[class_ids[i]]
            caption = "{} {:.3f}".format(label, scores[i]) if scores is not None else label
        ax.text(x1, y1 + 8, caption, color="w", size=11, backgroundcolor="none")

        mask = masks[:, :, i]
        if show_mask:
            masked_image = apply_mask(masked_image, mask, color)
        # Pad so contours of masks touching the border close.
        padded = np.zeros((mask.shape[0] + 2, mask.shape[1] + 2), dtype=np.uint8)
        padded[1:-1, 1:-1] = mask
        for verts in find_contours(padded, 0.5):
            verts = np.fliplr(verts) - 1  # (row, col) -> (x, y), undo the padding
            ax.add_patch(patches.Polygon(verts, facecolor="none", edgecolor=color))
    if n == 0:
        ax.text(0.5, 0.5, "No instances to display", transform=ax.transAxes, ha="center")
    ax.imshow(masked_image.astype(np.uint8))
    return _finish(fig, save_path, "display_instances", own_figure=own_figure)


def display_images(images, titles=None, cols=4, cmap=None, norm=None, interpolation=None,
                   save_path=None, dpi=100):
    """A grid of images with optional titles."""
    if len(images) == 0:
        raise ValueError("display_images: no images given")
    titles = titles if titles is not None else [""] * len(images)
    rows = len(images) // cols + 1
    fig = _new_figure((14, 14 * rows // cols), dpi)
    for i, (image, title) in enumerate(zip(images, titles), start=1):
        ax = fig.add_subplot(rows, cols, i)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
        ax.imshow(np.asarray(image).astype(np.uint8), cmap=cmap, norm=norm, interpolation=interpolation)
    return _finish(fig, save_path, "display_images")


def draw_boxes(image, boxes=None, refined_boxes=None, masks=None, captions=None, visibilities=None,
               title="", ax=None, save_path=None, figsize=(12, 12), dpi=100):
    """Boxes (dashed), refined boxes (solid, joined to their box) and masks.

    visibilities: per box 0 (skip), 1 (faint) or 2 (bold); default 2 for all.
    """
    if boxes is None and refined_boxes is None:
        raise ValueError("draw_boxes: give boxes and/or refined_boxes")
    n = boxes.shape[0] if boxes is not None else refined_boxes.shape[0]
    own_figure = ax is None
    fig, ax = _axes(ax, figsize, dpi)
    colors = random_colors(n)
    margin = image.shape[0] // 10
    ax.set_ylim(image.shape[0] + margin, -margin)
    ax.set_xlim(-margin, image.shape[1] + margin)
    ax.axis("off")
    ax.set_title(title)

    masked_image = image.astype(np.uint32).copy()
    for i in range(n):
        visibility = visibilities[i] if visibilities is not None else 2
        if visibility == 0:
            continue
        color = "gray" if visibility == 1 else colors[i]
        alpha = 0.5 if visibility == 1 else 1.0
        style = "dotted" if visibility == 1 else "dashed"
        if boxes is not None:
            if not np.any(boxes[i]):
                continue
            y1, x1, y2, x2 = boxes[i]
            ax.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, linewidth=2, alpha=alpha,
                                           linestyle=style, edgecolor=color, facecolor="none"))
        if refined_boxes is not None and visibility > 0:
            ry1, rx1, ry2, rx2 = refined_boxes[i].astype(np.int32)
            ax.add_patch(patches.Rectangle((rx1, ry1), rx2 - rx1, ry2 - ry1, linewidth=2,
                                           edgecolor=color, facecolor="none"))
            if boxes is not None:
                ax.add_line(Line2D([x1, rx1], [y1, ry1], color=color))
        if captions is not None:
            caption = captions[i]
            y1, x1, y2, x2 = boxes[i] if boxes is not None else refined_boxes[i]
            ax.text(x1, y1, caption, size=11, verticalalignment="top", color="w",
                    backgroundcolor="none", bbox={"facecolor": color, "alpha": 0.5, "pad": 2,
                                                  "edgecolor": "none"})
        if masks is not None:
            mask = masks[:, :, i]
            masked_image = apply_mask(masked_image, mask, color if not isinstance(color, str) else (.5, .5, .5))
            padded = np.zeros((mask.shape[0] + 2, mask.shape[1] + 2), dtype=np.uint8)
            padded[1:-1, 1:-1] = mask
            for verts in find_contours(padded, 0.5):
                ax.add_patch(patches.Polygon(np.fliplr(verts) - 1, facecolor="none", edgecolor=color))
    ax.imshow(masked_image.astype(np.uint8))
    return _finish(fig, save_path, "draw_boxes", own_figure=own_figure)


def display_top_masks(image, mask, class_ids, class_names, limit=4, save_path=None, dpi=100):
    """The image and, for the `limit` classes with the largest mask area, their masks."""
    to_display = [image]
    titles = ["H x W={}x{}".format(image.shape[0], image.shape[1])]
    unique_class_ids = np.unique(class_ids)
    mask_area = [np.sum(mask[:, :, np.where(class_ids == i)[0]]) for i in unique_class_ids]
    top_ids = [v[0] for v in sorted(zip(unique_class_ids, mask_area), key=lambda r: r[1], reverse=True)
               if v[1] > 0]
    for i in range(limit):
        class_id = top_ids[i] if i < len(top_ids) else -1
        m = mask[:, :, np.where(class_ids == class_id)[0]]
        m = np.sum(m * np.arange(1, m.shape[-1] + 1), -1)  # instance index as intensity
        to_display.append(m)
        titles.append(class_names[class_id] if class_id != -1 else "-")
    return display_images(to_display, titles=titles, cols=limit + 1, cmap="Blues_r", save_path=save_path, dpi=dpi)


############################################################
#  Evaluation plots
############################################################

def plot_precision_recall(AP, precisions, recalls, save_path=None, figsize=(6.4, 4.8), dpi=100):
    """Precision-recall curve with its AP in the title."""
    fig = _new_figure(figsize, dpi)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_title("Precision-Recall Curve. AP@50 = {:.3f}".format(AP))
    ax.set_ylim(0, 1.1)
    ax.set_xlim(0, 1.1)
    ax.plot(recalls, precisions)
    ax.set_xlabel("Recall")
    ax.set_ylabel("Precision")
    return _finish(fig, save_path, "plot_precision_recall")


def plot_overlaps(gt_class_ids, pred_class_ids, pred_scores, overlaps, class_names, threshold=0.5,
                  save_path=None, figsize=(12, 10), dpi=100):
    """IoU grid of predictions (rows) vs ground truth (columns), marking matches and wrong classes."""
    gt_class_ids = np.asarray(gt_class_ids)
    pred_class_ids = np.asarray(pred_class_ids)
    gt_class_ids = gt_class_ids[gt_class_ids != 0]
    pred_class_ids = pred_class_ids[pred_class_ids != 0]
    fig = _new_figure(figsize, dpi)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(overlaps, cmap="Blues")
    ax.set_yticks(np.arange(len(pred_class_ids)))
    ax.set_yticklabels(["{} ({:.2f})".format(class_names[int(cid)], pred_scores[i])
                        for i, cid in enumerate(pred_class_ids)])
    ax.set_xticks(np.arange(len(gt_class_ids)))
    ax.set_xticklabels([class_names[int(cid)] for cid in gt_class_ids], rotation=90)
    cutoff = overlaps.max() / 2.0 if overlaps.size else 0
    for i in range(overlaps.shape[0]):
        for j in range(overlaps.shape[1]):
            text = ""
            if overlaps[i, j] > threshold:
                text = "match" if gt_class_ids[j] == pred_class_ids[i] else "wrong"
            color = ("white" if overlaps[i, j] > cutoff else "black" if overlaps[i, j] > 0 else "grey")
            ax.text(j, i, "{:.3f}\n{}".format(overlaps[i, j], text), ha="center", va="center",
                    fontsize=9, color=color)
    fig.tight_layout()
    ax.set_xlabel("Ground Truth")
    ax.set_ylabel("Predictions")
    return _finish(fig, save_path, "plot_overlaps")
