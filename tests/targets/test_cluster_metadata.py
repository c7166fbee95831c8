"""The cluster metadata lint reads before a spec exists, and its ``require_limits`` key."""

from __future__ import annotations

import pytest

from cellpipe import api
from cellpipe.errors import CellpipeError
from cellpipe.targets.cluster import ClusterMetadata, cluster_settings
from tests.conftest import make_nb


def metadata(cluster, steps=("load", "train")):
    return ClusterMetadata(cluster, tuple(steps), "nb.ipynb")


def test_the_metadata_reads_as_the_specs_does():
    cluster = {"namespace": "ml", "node_selector": {"pool": "cpu"},
               "steps": {"train": {"tolerations": [{"operator": "Exists"}]}}}
    spec = api.compile_spec(make_nb(("step:load", "x = 1"), ("step:train", "y = x"),
                                    metadata={"cellpipe": {"cluster": cluster}}))

    assert cluster_settings(metadata(cluster)) == cluster_settings(spec)
    assert ClusterMetadata.of(spec).step_names == ("load", "train")


def test_require_limits_is_read_and_defaults_to_false():
    assert cluster_settings(metadata({})).require_limits is False
    assert cluster_settings(metadata({"require_limits": True})).require_limits is True
    assert cluster_settings(metadata(None)).require_limits is False


def test_require_limits_must_be_a_boolean():
    with pytest.raises(CellpipeError, match=r"cellpipe.cluster.require_limits: 'yes' is not "
                                            "true or false") as info:
        cluster_settings(metadata({"require_limits": "yes"}))
    assert "memory:SIZE" in (info.value.hint or "")


def test_a_misspelt_key_gets_a_did_you_mean():
    with pytest.raises(CellpipeError, match="unknown key 'require_limit'") as info:
        cluster_settings(metadata({"require_limit": True}))
    assert info.value.hint == "did you mean 'require_limits'?"


def test_lint_with_a_target_reports_bad_metadata_as_compile_would():
    nb = make_nb(("step:load", "x = 1"),
                 metadata={"cellpipe": {"cluster": {"steps": {"trian": {}}}}})
    with pytest.raises(CellpipeError, match="unknown step 'trian'"):
        api.lint(nb, target="argo")
    api.lint(nb)  # without a target the cluster settings are not read
