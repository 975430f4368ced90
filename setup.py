"""GONE: remove people (and other objects) from photographs.

Mask R-CNN (Matterport-compatible, `mrcnn/`) finds them, DeepFill v1 (Yu et al. 2018,
`inpaint/`) fills the hole, `gone/` chains the two. Keras 3; TensorFlow (default) or JAX backend.
"""
import pathlib
import re

from setuptools import find_packages, setup

# The version lives in one place, gone/__init__.py (read here without importing gone, whose
# dependencies may not be installed yet); `gone --version` reads it back from the package metadata.
_HERE = pathlib.Path(__file__).resolve().parent
VERSION = re.search(r'^__version__ = "([^"]+)"', (_HERE / "gone" / "__init__.py").read_text(encoding="utf-8"),
                    re.M).group(1)

setup(
    name="gone",
    version=VERSION,
    description="GONE Offers Nice Editing: remove people from photos (Mask R-CNN + DeepFill v1, Keras 3)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",  # this repository's code; published weights keep their own licences (README)
    license_files=["LICENSE"],
    keywords="people removal, object removal, inpainting, instance segmentation, Mask R-CNN, DeepFill, Keras",
    classifiers=[
        "Development Status :: 3 - Alpha",
        "Intended Audience :: Science/Research",
        "Intended Audience :: Developers",
        "Operating System :: POSIX :: Linux",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Programming Language :: Python :: 3.11",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
        "Topic :: Scientific/Engineering :: Image Processing",
        "Topic :: Multimedia :: Graphics",
    ],
    python_requires=">=3.11",
    packages=find_packages(include=["mrcnn", "mrcnn.*", "inpaint", "inpaint.*", "lama", "lama.*", "gone", "gone.*",
                                    "data_prep", "data_prep.*", "gonefiles"]),
    package_data={"gone.app": ["static/*"], "gone.labeling": ["static/*"]},  # the pages of `gone app` and `gone label`
    install_requires=[
        "keras>=3.5",
        "tensorflow>=2.16",  # the default Keras backend; JAX users install the [jax] extra
        "numpy>=1.26",
        "scipy>=1.11",
        "scikit-image>=0.22",
        "pycocotools>=2.0.7",
        "h5py>=3.8",
        "matplotlib>=3.7",
        "absl-py>=1.4",
        "pyyaml>=6.0",
        "pillow>=10.0",
        "tqdm>=4.60",
        "tensorboard>=2.16",  # Keras TensorBoard callback during training
        "tensorboardX>=2.6",  # TensorBoard event files from JAX training (no TensorFlow import)
        "flask>=3.1",  # gone label (web app)
        "statsmodels>=0.14",  # make_table.py: Fleiss' kappa
        "opencv-python-headless>=4.8",  # Telea / Navier-Stokes inpainting (gone.inpainters)
        "pypatchmatch>=2.2",  # PatchMatch inpainting, the default without DeepFill weights
        "google-crc32c>=1.5",  # TF checkpoint tensor checksums (inpaint.checkpoint), without TensorFlow
    ],
    extras_require={
        "jax": ["jax>=0.4.30"],
        "beam": ["apache-beam>=2.55"],  # python -m gone.beam (add apache-beam[gcp] / [aws] for gs:// / s3://)
        "test": ["pytest>=7.4", "jax[cpu]>=0.4.30", "apache-beam>=2.55",
                 "playwright>=1.40", "nbclient>=0.8", "nbformat>=5.9", "ipykernel>=6.0"],  # label browser test, notebooks
    },
    entry_points={"console_scripts": ["gone=gone.cli:main"]},
)
