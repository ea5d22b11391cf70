"""lcr_tf: LCR-Net++ multi-person 2D and 3D human pose detection in TensorFlow 2 / Keras."""

from setuptools import find_packages, setup

setup(
    name="lcr_tf",
    version="0.1.0",
    description="LCR-Net++ (Rogez, Weinzaepfel, Schmid, TPAMI 2019) in TensorFlow 2 / Keras, with "
                "Apache Beam data tools, training, evaluation and TF Serving export.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10,<3.13",
    packages=find_packages(include=["lcr_tf", "lcr_tf.*", "beam_jobs", "beam_jobs.*"]),
    install_requires=[
        "tensorflow>=2.16,<2.22",
        "keras>=3.3,<4",
        "apache-beam[tfrecord]>=2.60,<3",
        "numpy>=1.26,<3",
        "scipy>=1.11,<2",
        "scikit-learn>=1.4,<2",
        "opencv-python-headless>=4.8,<6",
        "matplotlib>=3.8,<4",
        "absl-py>=2.0,<3",
        "cdflib>=1.0,<2",
        "pillow>=10,<13",
    ],
    extras_require={
        # gRPC client of TF Serving (lcr_tf.serving.client --protocol=grpc); REST needs nothing more.
        "serving": ["tensorflow-serving-api>=2.16,<2.22"],
        # pycocotools: COCO keypoint evaluation by its reference COCOeval (python -m lcr_tf.evaluate --dataset=coco).
        "coco": ["pycocotools>=2.0.7,<3"],
        # ruff: lint and import order, checked by the test command before pytest; pytest-xdist: the suite
        # runs in two processes (pytest.ini).
        "test": ["pytest>=8,<10", "pytest-xdist>=3.5,<4", "tensorflow-serving-api>=2.16,<2.22", "ruff>=0.6,<1",
                 "pycocotools>=2.0.7,<3"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Image Recognition",
    ],
)
