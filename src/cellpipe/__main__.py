"""``python -m cellpipe``: the same as the ``cellpipe`` command."""

from cellpipe.cli.main import main

main()
