"""Training under the SageMaker JumpStart TF image-classification contract (the artifact it writes:
``harness.contract``).

- ``train``: hyperparameters as JumpStart names them, the local Keras trainer, and the training container
  a SageMaker job runs (played here offline).
- ``trainers``: the two trainers behind one interface (``local``, ``sagemaker``); each leaves ``model.tar.gz``
  in S3 and returns a ``StoredModel`` saying where.
- ``sagemaker_job``: CreateTrainingJob/DescribeTrainingJob through boto3, against AWS or the embedded moto.
- ``jumpstart``: JumpStart metadata (image, script, base-model URIs) through the sagemaker SDK; the offline
  spec in ``jumpstart_metadata/``.
"""
