"""lint --target: what a cluster run would break on that a local run would not (CP6xx).

Each check with notebooks of the kinds that meet it: a Kaggle-style competition notebook
reading its CSVs from ``data/``, a textbook chapter opening ``~/datasets/...``, a report
that asks a model served on this machine, a training notebook asking for a GPU.
"""

from __future__ import annotations

from typing import Any

import pytest

from cellpipe import api
from cellpipe.core.cluster_lint import ClusterFacts, cluster_diagnostics, local_path
from cellpipe.core.diagnostics import Diagnostic
from cellpipe.core.pipeline import link
from cellpipe.core.plan import plan_notebook
from cellpipe.errors import CellpipeError
from tests.conftest import make_nb

KAGGLE_LOAD = """\
import pandas as pd
import numpy as np

train = pd.read_csv("data/train.csv")
test = pd.read_csv("data/test.csv")
print(train.shape, test.shape)
"""

KAGGLE_FEATURES = """\
for df in [train, test]:
    df["FamilySize"] = df["SibSp"] + df["Parch"] + 1
    df["Title"] = df["Name"].str.extract(r" ([A-Za-z]+)\\.", expand=False)
features = pd.get_dummies(train[["Pclass", "Sex", "FamilySize"]])
features.to_csv("features.csv", index=False)
"""

KAGGLE_TRAIN = """\
from sklearn.ensemble import RandomForestClassifier

X = pd.read_csv("features.csv")
model = RandomForestClassifier(n_estimators=100, random_state=1).fit(X, train["Survived"])
"""


def cluster_lint(*cells: Any, cluster: dict[str, Any] | None = None,
                 target: str = "kfp") -> list[Diagnostic]:
    metadata = {"cellpipe": {"cluster": cluster}} if cluster is not None else None
    report = api.lint(make_nb(*cells, metadata=metadata), target=target, environment=False)
    return [d for d in report.diagnostics if d.code.startswith("CP6")]


def codes(found: list[Diagnostic], *wanted: str) -> list[Diagnostic]:
    return [d for d in found if d.code in wanted]


# -- CP601: files from the notebook's folder --------------------------------------------


def test_a_csv_read_from_the_notebooks_folder_is_not_in_the_pod():
    found = cluster_lint(("step:load", KAGGLE_LOAD), ("step:features", KAGGLE_FEATURES),
                         ("step:train", KAGGLE_TRAIN))

    external = codes(found, "CP601")
    assert [(d.step, d.cell, d.line, d.severity) for d in external] == [
        ("load", 0, 4, "warning"), ("load", 0, 5, "warning")]
    assert "data/train.csv" in external[0].message
    assert "no earlier step writes it" in external[0].message
    hint = external[0].hint or ""
    assert "image" in hint and "s3://" in hint and "earlier step" in hint


def test_a_file_an_earlier_step_writes_travels_and_is_not_flagged():
    found = cluster_lint(("step:load", KAGGLE_LOAD), ("step:features", KAGGLE_FEATURES),
                         ("step:train", KAGGLE_TRAIN))

    assert not [d for d in codes(found, "CP601", "CP602") if "features.csv" in d.message]


def test_a_path_built_from_a_folder_variable_is_followed():
    found = cluster_lint(("step:load", 'import pandas as pd\nDATA_DIR = "input"\n'
                                       'sales = pd.read_parquet(f"{DATA_DIR}/sales.parquet")'))

    [diagnostic] = codes(found, "CP601")
    assert "input/sales.parquet" in diagnostic.message and diagnostic.line == 3


def test_object_store_urls_are_fine():
    found = cluster_lint(("step:load", 'import pandas as pd\n'
                                       'train = pd.read_csv("s3://ml-data/titanic/train.csv")\n'
                                       'train.to_parquet("s3://ml-data/titanic/clean.parquet")'))

    assert codes(found, "CP601", "CP602", "CP603") == []


def test_a_steps_own_cache_file_is_not_an_external_input():
    found = cluster_lint(("step:embed", """\
import os
import pandas as pd
if os.path.exists("embeddings.parquet"):
    emb = pd.read_parquet("embeddings.parquet")
else:
    emb = pd.DataFrame({"v": [0.1, 0.2]})
    emb.to_parquet("embeddings.parquet")
"""))

    assert codes(found, "CP601") == []


def test_a_step_with_its_own_image_is_only_reminded():
    found = cluster_lint((["step:load", "image:registry.example/titanic-data:3"], KAGGLE_LOAD))

    external = codes(found, "CP601")
    assert {d.severity for d in external} == {"info"}
    assert "registry.example/titanic-data:3" in external[0].message


def test_a_declared_input_no_step_writes_is_flagged_at_the_steps_cell():
    found = cluster_lint(("step:prep", "x = 1"),
                         (["step:load", "inputs:raw/"], "import subprocess\n"
                                                        "subprocess.run(['./unpack.sh'])"))

    [diagnostic] = codes(found, "CP601")
    assert diagnostic.step == "load" and diagnostic.cell == 1 and diagnostic.line is None
    assert "raw" in diagnostic.message


def test_a_step_header_moves_lines_like_other_diagnostics():
    found = cluster_lint("%%step load\nimport pandas as pd\n\n"
                         "train = pd.read_csv('data/train.csv')")

    [diagnostic] = codes(found, "CP601")
    assert (diagnostic.cell, diagnostic.line) == (0, 4)


# -- CP602: this machine's paths -------------------------------------------------------


TEXTBOOK = """\
import os
import pandas as pd
housing = pd.read_csv(os.path.join("~/datasets/housing", "housing.csv"))
housing.hist(bins=50)
"""


def test_a_textbook_chapter_opening_its_home_datasets_folder():
    found = cluster_lint(("step:load", TEXTBOOK))

    [diagnostic] = codes(found, "CP602")
    assert (diagnostic.cell, diagnostic.line, diagnostic.step) == (0, 3, "load")
    assert "~/datasets/housing/housing.csv" in diagnostic.message
    assert "home folder of this machine" in diagnostic.message
    assert codes(found, "CP601") == []  # one finding per path


def test_windows_and_absolute_paths_read_and_written():
    found = cluster_lint(("step:export", """\
import joblib
import pandas as pd
raw = pd.read_excel(r"C:\\Users\\ana\\Documents\\sales_2023.xlsx")
joblib.dump(raw, "/home/ana/models/raw.joblib")
raw.to_csv("/tmp/scratch.csv")
hosts = open("/etc/hosts").read()
"""))

    found = codes(found, "CP602")
    assert [(d.line, d.severity) for d in found] == [(3, "warning"), (4, "warning")]
    assert "C:/Users/ana/Documents/sales_2023.xlsx" in found[0].message
    assert "writes /home/ana/models/raw.joblib" in found[1].message


def test_a_chdir_into_this_machines_folder():
    found = cluster_lint(("step:load", 'import os\nos.chdir("/Users/ana/kaggle/titanic")\n'
                                       'import pandas as pd\ntrain = pd.read_csv("train.csv")'))

    lines = sorted((d.line, d.code) for d in codes(found, "CP602"))
    assert lines == [(2, "CP602"), (4, "CP602")]  # the chdir, and the read it moves


@pytest.mark.parametrize(("path", "write", "why"), [
    ("data/train.csv", False, None),
    ("s3://bucket/x.csv", False, None),
    ("/tmp/out.csv", True, None),
    ("/tmp/out.csv", False, "an absolute path of this machine"),
    ("/dev/null", True, None),
    ("~/x", False, "a home folder of this machine"),
    ("D:/data/x.csv", False, "a Windows path of this machine"),
    ("/mnt/data/x.csv", False, "an absolute path of this machine"),
])
def test_local_path(path, write, why):
    assert local_path(path, write=write) == why


# -- CP603: localhost ------------------------------------------------------------------


REPORT = '''\
"""Weekly report: scores come from the model server (run `make serve`, it listens on
http://localhost:8000)."""
import requests
import pandas as pd

# the service runs on http://localhost:8000 during development
API_URL = "http://localhost:8000/v1/score"
print("asking http://localhost:8000 for scores")
rows = requests.post(API_URL, json={"week": 12}).json()
report = pd.DataFrame(rows)
'''


def test_a_report_calling_a_local_api():
    found = cluster_lint(("step:report", REPORT))

    [diagnostic] = codes(found, "CP603")
    assert (diagnostic.cell, diagnostic.line, diagnostic.step) == (0, 7, "report")
    assert "http://localhost:8000/v1/score" in diagnostic.message
    assert "localhost is the pod itself" in diagnostic.message
    assert "svc.cluster.local" in (diagnostic.hint or "")


def test_localhost_in_comments_docstrings_and_messages_is_not_flagged():
    found = cluster_lint(("step:report", '''\
"""Serve with `uvicorn app:api` and open http://localhost:8000/docs."""
# curl http://127.0.0.1:8000/health
import logging
log = logging.getLogger("report")
log.info("dashboard at http://localhost:8050")
note = "the model server runs on localhost during development"
url = "https://example.org/localhost-guide"
clean = "postgresql://db/sales".replace("localhost", "db")
'''))

    assert codes(found, "CP603") == []


def test_database_uris_hosts_and_shell_lines():
    found = cluster_lint(("step:load", """\
import pandas as pd
import psycopg2
import sqlalchemy
from pymongo import MongoClient
engine = sqlalchemy.create_engine("postgresql://analyst:s3cret@localhost:5432/sales")
orders = pd.read_sql("select * from orders", engine)
conn = psycopg2.connect(host="127.0.0.1", dbname="sales")
events = MongoClient("localhost", 27017).shop.events
REDIS_HOST = "localhost"
!curl -s http://localhost:9200/_cluster/health
"""))

    found = codes(found, "CP603")
    assert [d.line for d in found] == [5, 7, 8, 9, 10]
    assert "analyst:***@localhost:5432" in found[0].message  # the password is not printed
    assert "s3cret" not in found[0].message
    assert "connects to host '127.0.0.1'" in found[1].message
    assert "sets REDIS_HOST = 'localhost'" in found[3].message


def test_an_f_string_url_and_a_url_in_a_shared_definition():
    found = cluster_lint(
        "import requests\n\ndef score(rows):\n"
        "    return requests.post('http://127.0.0.1:5000/predict', json=rows).json()",
        ("step:report", "week = 12\nr = requests.get(f'http://localhost:8000/weeks/{week}')\n"
                        "scores = score([1, 2])"),
    )

    found = codes(found, "CP603")
    assert [(d.cell, d.line, d.step) for d in found] == [(0, 4, None), (1, 2, "report")]
    assert "http://localhost:8000/weeks/{}" in found[1].message


def test_other_hosts_are_fine():
    found = cluster_lint(("step:report", 'import requests\n'
                                         'r = requests.get("http://scorer.ml.svc:8000/v1")\n'
                                         'from flask import Flask\napp = Flask("x")\n'
                                         'app.config["HOST"] = "0.0.0.0"'))

    assert codes(found, "CP603") == []


# -- CP604-CP606: resources ------------------------------------------------------------


TRAIN_GPU = (["step:train", "gpu:1", "memory:16Gi"],
             "import torch\nmodel = torch.nn.Linear(10, 1).cuda()")


def test_gpus_without_a_node_selector_or_toleration():
    found = cluster_lint(("step:prep", "x = 1"), TRAIN_GPU)

    [diagnostic] = codes(found, "CP604")
    assert (diagnostic.step, diagnostic.cell, diagnostic.severity) == ("train", 1, "warning")
    assert "tolerations" in (diagnostic.hint or "") and '"train"' in (diagnostic.hint or "")


@pytest.mark.parametrize("cluster", [
    {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]},
    {"node_selector": {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}},
    {"steps": {"train": {"node_selector": {"pool": "gpu"}}}},
])
def test_gpus_placed_by_the_cluster_settings(cluster):
    assert codes(cluster_lint(("step:prep", "x = 1"), TRAIN_GPU, cluster=cluster),
                 "CP604") == []


def test_memory_limits_required_by_the_cluster_settings():
    cells = (("step:prep", "x = 1"), TRAIN_GPU)
    required = cluster_lint(*cells, cluster={"require_limits": True, "node_selector": {"a": "b"}})

    assert [(d.code, d.step, d.severity) for d in codes(required, "CP605", "CP606")] == [
        ("CP605", "prep", "error")]
    assert "memory:2Gi" in (required[0].hint or "")

    optional = cluster_lint(*cells)
    assert [(d.code, d.step, d.severity) for d in codes(optional, "CP605", "CP606")] == [
        ("CP606", "prep", "info")]


def test_a_required_limit_fails_lint_and_warnings_fail_only_when_strict():
    nb = make_nb(("step:load", KAGGLE_LOAD),
                 metadata={"cellpipe": {"cluster": {"require_limits": True}}})
    assert api.lint(nb, target="argo").ok is False

    relaxed = make_nb((["step:load", "memory:1Gi"], KAGGLE_LOAD))
    assert api.lint(relaxed, target="argo").ok is True  # CP601 is a warning
    assert api.lint(relaxed, target="argo", strict=True).ok is False


def test_the_core_check_takes_the_facts_as_plain_data():
    nb = api.load_notebook(make_nb(TRAIN_GPU))
    plan = plan_notebook(nb, None)
    pipeline = link(nb, plan)

    assert [d.code for d in cluster_diagnostics(pipeline, plan)] == ["CP604"]
    facts = ClusterFacts(placed=frozenset({"train"}), require_limits=True)
    assert cluster_diagnostics(pipeline, plan, facts) == []


# -- without a target, and bad targets --------------------------------------------------


def test_without_a_target_lint_is_unchanged():
    nb = make_nb(("step:load", KAGGLE_LOAD + REPORT.split('"""', 2)[2]), TRAIN_GPU)
    plain = api.lint(nb, environment=False)

    assert not [d for d in plain.diagnostics if d.code.startswith("CP6")]
    assert plain.target is None
    targeted = api.lint(nb, environment=False, target="kfp")
    assert set(targeted.diagnostics) - set(plain.diagnostics)
    assert set(plain.diagnostics) <= set(targeted.diagnostics)


def test_an_unknown_target_is_refused_with_the_names_there_are():
    with pytest.raises(CellpipeError, match="'kpf' is none") as info:
        api.lint(make_nb(("step:a", "x = 1")), target="kpf")
    assert info.value.hint == "did you mean 'kfp'?"
    with pytest.raises(CellpipeError, match="'spec' is none"):
        api.lint(make_nb(("step:a", "x = 1")), target="spec")
