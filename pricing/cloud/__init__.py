"""AWS: the image's entry point and Lambda handler, S3 artefact upload, and the release commands
(``python -m pricing.cloud``: ECR push, SageMaker and Lambda deploys, invoke, status, teardown) in plain boto3."""
