"""The pure core: notebook → annotations → plan → analysis → pipeline → spec.

Nothing in here imports Docker, Kubernetes, kfp, jupyter_server or click (import-linter
checks it), so the core runs anywhere, including inside a step.
"""
