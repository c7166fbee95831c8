"""Values between steps: a format registry by qualified type name, and artifact stores.

``open_store(location)`` gives an :class:`ArtifactStore` for a local directory or an
fsspec URL; ``save`` picks a format for the value (JSON, ``.npy``, Arrow/Parquet,
joblib, cloudpickle or a plugin's), writes it atomically with a sidecar holding its digest
(BLAKE3), and ``load`` checks the digest before reading. Importing this package imports no
numpy, pandas, pyarrow or fsspec: each is imported when a value or URL of its kind is met.
"""

from __future__ import annotations

from cellpipe.marshal.errors import ArtifactCorruptedError, ArtifactNotFoundError, MarshalError
from cellpipe.marshal.meta import ArtifactMeta
from cellpipe.marshal.store import ArtifactStore, open_store

__all__ = [
    "ArtifactCorruptedError",
    "ArtifactMeta",
    "ArtifactNotFoundError",
    "ArtifactStore",
    "MarshalError",
    "open_store",
]
