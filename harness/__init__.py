"""edgebench: cloud-to-edge image classification benchmark (TensorFlow vs OpenVINO)."""

__version__ = "0.1.0"
