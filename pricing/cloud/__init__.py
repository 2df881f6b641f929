"""AWS integration: S3 artefact upload (and, later, ECR/SageMaker/Lambda deploys) in plain boto3."""
