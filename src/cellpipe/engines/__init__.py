"""Engines run a PipelineSpec: ``local``, ``docker``, and any a package registers."""
