"""The Kubeflow Pipelines target: a PipelineSpec compiled to KFP v2 IR (``compile``)."""
