"""The store on S3, against a real S3 API server (moto's server mode on 127.0.0.1).

What a cluster run with ``--storage s3://bucket/prefix`` does to its values: each written
through s3fs with its BLAKE3 digest in the sidecar, read back and checked, a changed
object refused. The server is started by the ``s3_server`` fixture (tests/conftest.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cellpipe.marshal import open_store
from cellpipe.marshal.errors import ArtifactCorruptedError
from tests.engines.compare import assert_same


def test_values_go_to_s3_and_come_back_checked(s3_server):
    import boto3

    store = open_store(f"s3://{s3_server.bucket}/runs/r1")
    frame = pd.DataFrame({"region": ["north", "south"], "sales": [3.5, 4.25]})
    values = {"frame": frame, "weights": np.arange(6.0).reshape(2, 3),
              "config": {"lr": 0.1, "layers": [64, 32]}}
    for name, value in values.items():
        meta = store.save("train", name, value)
        assert meta.algorithm == "blake3" and len(meta.digest) == 64
    again = open_store(f"s3://{s3_server.bucket}/runs/r1")  # a new process would do this
    for name, value in values.items():
        assert_same(value, again.load("train", name, verify=True), name)
        assert again.verify("train", name).digest == store.meta("train", name).digest
    listed = boto3.client("s3", endpoint_url=s3_server.endpoint).list_objects_v2(
        Bucket=s3_server.bucket, Prefix="runs/r1/train/")
    keys = {item["Key"] for item in listed["Contents"]}
    assert "runs/r1/train/frame.parquet" in keys  # remote stores keep frames as Parquet
    assert any(key.endswith(".meta.json") for key in keys)


def test_an_object_changed_in_the_bucket_is_refused(s3_server):
    import boto3

    store = open_store(f"s3://{s3_server.bucket}/runs/r2")
    meta = store.save("make", "values", np.arange(1000))
    client = boto3.client("s3", endpoint_url=s3_server.endpoint)
    key = f"runs/r2/make/{meta.file}"
    body = bytearray(client.get_object(Bucket=s3_server.bucket, Key=key)["Body"].read())
    body[-1] ^= 0xFF
    client.put_object(Bucket=s3_server.bucket, Key=key, Body=bytes(body))
    with pytest.raises(ArtifactCorruptedError, match="values"):
        open_store(f"s3://{s3_server.bucket}/runs/r2").load("make", "values", verify=True)
