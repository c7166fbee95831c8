"""The Argo Workflows target: a PipelineSpec compiled to a Workflow manifest (``compile``)."""
