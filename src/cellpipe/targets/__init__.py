"""Cluster targets: a PipelineSpec compiled to Argo Workflows or Kubeflow Pipelines."""
