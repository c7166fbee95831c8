"""Engines run a PipelineSpec: ``local`` (processes on this machine), later ``docker``."""
