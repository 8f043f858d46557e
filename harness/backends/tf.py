"""Stock TensorFlow: the SavedModel's ``serving_default`` signature, as a TF Serving endpoint would call it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from harness.backends import check_precision
from harness.errors import BackendError

if TYPE_CHECKING:
    from harness.edge import EdgeModel


class TensorFlowBackend:
    name = "tf"

    def __init__(self) -> None:
        self._signature: Any = None
        self._input_name = ""
        self._output_name = ""
        self._device = "CPU"

    def load(self, model: EdgeModel, device: str = "CPU", precision: str = "FP32") -> None:
        import tensorflow as tf

        saved_model_dir = model.saved_model_dir
        check_precision(self.name, precision, ("FP32",))
        if device != "CPU":
            raise BackendError(f"backend 'tf': device {device!r} is not supported here; use CPU")
        try:
            loaded = tf.saved_model.load(str(saved_model_dir))
            signature = loaded.signatures["serving_default"]
        except (OSError, KeyError, ValueError, tf.errors.OpError) as exc:
            raise BackendError(f"{saved_model_dir}: TensorFlow cannot load a serving_default signature "
                               f"({str(exc).splitlines()[0]})") from None
        inputs = signature.structured_input_signature[1]
        if len(inputs) != 1 or len(signature.structured_outputs) != 1:
            raise BackendError(f"{saved_model_dir}: serving_default must take one image tensor and return one "
                               f"logits tensor (has inputs {list(inputs)}, outputs {list(signature.structured_outputs)})")
        self._loaded = loaded  # keep the trackable object alive: the signature references its variables
        self._signature = signature
        self._input_name = next(iter(inputs))
        self._output_name = next(iter(signature.structured_outputs))
        self._device = device

    def infer(self, batch: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        return self._signature(**{self._input_name: tf.constant(batch)})[self._output_name].numpy()

    def describe(self) -> dict[str, Any]:
        import tensorflow as tf

        return {"backend": self.name, "runtime": "tensorflow", "version": tf.__version__, "device": self._device,
                "precision": "FP32", "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
                "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads()}
