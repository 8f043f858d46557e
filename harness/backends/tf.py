"""Stock TensorFlow: the SavedModel's ``serving_default`` signature, as a TF Serving endpoint would call it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.backends import BackendConfig, require
from harness.errors import BackendError
from harness.numeric import FloatArray

if TYPE_CHECKING:
    from harness.edge import EdgeModel


class TensorFlowBackend:
    name = "tf"
    precisions = ("FP32",)

    def __init__(self) -> None:
        self._signature: Any = None
        self._input_name = ""
        self._output_name = ""
        self._graph_ops = 0

    def load(self, model: EdgeModel, config: BackendConfig) -> None:
        import tensorflow as tf

        require(self.name, config)
        saved_model_dir = model.saved_model_dir
        try:
            loaded = tf.saved_model.load(str(saved_model_dir))
            signature = loaded.signatures["serving_default"]
        except (OSError, KeyError, ValueError, tf.errors.OpError) as exc:
            raise BackendError(
                f"{saved_model_dir}: TensorFlow cannot load a serving_default signature ({str(exc).splitlines()[0]})"
            ) from None
        inputs = signature.structured_input_signature[1]
        if len(inputs) != 1 or len(signature.structured_outputs) != 1:
            raise BackendError(
                f"{saved_model_dir}: serving_default must take one image tensor and return one "
                f"logits tensor (has inputs {list(inputs)}, outputs {list(signature.structured_outputs)})"
            )
        self._loaded = loaded  # keep the trackable object alive: the signature references its variables
        self._signature = signature
        self._input_name = next(iter(inputs))
        self._output_name = next(iter(signature.structured_outputs))
        self._graph_ops = len(signature.graph.get_operations())

    def infer(self, batch: FloatArray) -> FloatArray:
        import tensorflow as tf

        logits: FloatArray = self._signature(**{self._input_name: tf.constant(batch)})[self._output_name].numpy()
        return logits

    def describe(self) -> dict[str, Any]:
        import tensorflow as tf

        return {
            "backend": self.name,
            "runtime": "tensorflow",
            "version": tf.__version__,
            "device": "CPU",
            "precision": "FP32",
            "batch": "dynamic",
            "graph_ops": self._graph_ops,
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        }
