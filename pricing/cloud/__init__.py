"""AWS integration: S3 artefact upload, the image's entry point and its Lambda handler (and, later, ECR/SageMaker/
Lambda deploys in plain boto3)."""
