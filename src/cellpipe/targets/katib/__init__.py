"""The Katib target (``--target katib``): a hyperparameter search as a Katib ``Experiment``.

The trial template is the pipeline's Argo Workflow (Katib runs Argo Workflows as trials);
the search is read from the same syntax as ``cellpipe tune`` (:mod:`cellpipe.core.space`).
"""
