"""Datasets in Matterport's `utils.Dataset` API: COCO (`coco.CocoDataset`, pycocotools) and the
synthetic shapes of Matterport's shapes notebook (`shapes.ShapesDataset`)."""
from mrcnn.datasets.coco import COCO_CLASS_NAMES, CocoDataset  # noqa: F401
from mrcnn.datasets.shapes import ShapesConfig, ShapesDataset  # noqa: F401
