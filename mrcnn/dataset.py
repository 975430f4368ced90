"""The Dataset base class of Matterport's API (utils.Dataset): subclass it per dataset."""
import numpy as np
import skimage.color
import skimage.io


class Dataset:
    """Base dataset (Matterport API). Subclass it, add classes and images with add_class /
    add_image, override load_mask (and load_image / image_reference if needed), then prepare().
    """

    def __init__(self, class_map=None):
        self._image_ids = []
        self.image_info = []
        # Background is always class 0.
        self.class_info = [{"source": "", "id": 0, "name": "BG"}]
        self.source_class_ids = {}

    def add_class(self, source, class_id, class_name):
        if "." in source:
            raise ValueError(f"Dataset.add_class: source name {source!r} cannot contain a dot")
        for info in self.class_info:
            if info["source"] == source and info["id"] == class_id:
                return  # already registered
        self.class_info.append({"source": source, "id": class_id, "name": class_name})

    def add_image(self, source, image_id, path, **kwargs):
        image_info = {"id": image_id, "source": source, "path": path}
        image_info.update(kwargs)
        self.image_info.append(image_info)

    def image_reference(self, image_id):
        """A link or description of the image for debugging; override per dataset."""
        return ""

    def prepare(self, class_map=None):
        """Build the internal ids and the source <-> internal maps (call after adding data)."""
        def clean_name(name):
            return ",".join(name.split(",")[:1])

        self.num_classes = len(self.class_info)
        self.class_ids = np.arange(self.num_classes)
        self.class_names = [clean_name(c["name"]) for c in self.class_info]
        self.num_images = len(self.image_info)
        self._image_ids = np.arange(self.num_images)
        self.class_from_source_map = {"{}.{}".format(info["source"], info["id"]): cid
                                      for info, cid in zip(self.class_info, self.class_ids)}
        self.image_from_source_map = {"{}.{}".format(info["source"], info["id"]): iid
                                      for info, iid in zip(self.image_info, self.image_ids)}
        # Sources in first-seen order (the original used a set, whose order is arbitrary).
        self.sources = list(dict.fromkeys(i["source"] for i in self.class_info))
        self.source_class_ids = {}
        for source in self.sources:
            # The BG class belongs to every source.
            self.source_class_ids[source] = [i for i, info in enumerate(self.class_info)
                                             if i == 0 or info["source"] == source]

    def map_source_class_id(self, source_class_id):
        """"coco.12" -> internal class id."""
        return self.class_from_source_map[source_class_id]

    def get_source_class_id(self, class_id, source):
        """Internal class id -> the class id in `source`."""
        info = self.class_info[class_id]
        if info["source"] != source:
            raise ValueError(f"class {class_id} belongs to source {info['source']!r}, not {source!r}")
        return info["id"]

    @property
    def image_ids(self):
        return self._image_ids

    def source_image_link(self, image_id):
        """Path or URL of the image."""
        return self.image_info[image_id]["path"]

    def load_image(self, image_id):
        """RGB uint8 [H, W, 3]: grayscale is converted to RGB and an alpha channel dropped."""
        path = self.image_info[image_id]["path"]
        try:
            image = skimage.io.imread(path)
        except (OSError, ValueError) as exc:
            raise OSError(f"cannot read image {image_id} from {path!r}: {exc}") from exc
        if image.ndim != 3:
            image = skimage.color.gray2rgb(image)
        if image.shape[-1] == 4:
            image = image[..., :3]
        return image

    def load_mask(self, image_id):
        """Override: return (bool masks [H, W, N], int32 class_ids [N]). Default: no instances."""
        mask = np.empty([0, 0, 0])
        class_ids = np.empty([0], np.int32)
        return mask, class_ids
