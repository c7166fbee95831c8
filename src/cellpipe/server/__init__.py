"""cellpipe's Jupyter server extension: the REST API behind the JupyterLab side panel.

The extension is :class:`cellpipe.server.app.CellpipeApp`; its routes live in
:mod:`cellpipe.server.handlers` and go through :mod:`cellpipe.api` only.
"""
