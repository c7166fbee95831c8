"""Build the cellpipe sample notebooks.

Run ``python sample_notebooks/make_samples.py`` to (re)write the four sample
notebooks next to this script. The output is deterministic: fixed cell ids,
fixed metadata, no outputs, so regenerating gives byte-identical files.

Notebooks written:

* ``tabular_tags.ipynb``       steps marked with ``step:NAME`` cell tags
* ``tabular_magics.ipynb``     steps marked with a ``%%step NAME`` first line
* ``kale_style.ipynb``         Kubeflow Kale style tags (``block:``, ``prev:`` ...)
* ``untagged_sections.ipynb``  no step markers, only markdown headings
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
LANGUAGE_INFO = {"name": "python"}


def md(source):
    return ("markdown", source, ())


def code(source, *tags):
    return ("code", source, tags)


def build(cells, extra_metadata=None):
    """Turn (kind, source, tags) triples into a notebook with fixed ids."""
    nb = new_notebook()
    nb.nbformat = 4
    nb.nbformat_minor = 5
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": dict(LANGUAGE_INFO)}
    if extra_metadata:
        nb.metadata.update(extra_metadata)
    for number, (kind, source, tags) in enumerate(cells, start=1):
        source = source.strip("\n")
        cell_id = f"c{number:02d}"
        if kind == "markdown":
            cell = new_markdown_cell(source, id=cell_id)
        else:
            cell = new_code_cell(source, id=cell_id)
            cell.outputs = []
            cell.execution_count = None
        if tags:
            cell.metadata["tags"] = list(tags)
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def write(nb, name):
    path = HERE / name
    text = nbformat.writes(nb)
    if not text.endswith("\n"):
        text += "\n"
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
    return path


# ---------------------------------------------------------------------------
# (a) tabular ML, steps marked with cell tags
# ---------------------------------------------------------------------------

TABULAR_TAGS = [
    md("""
# Breast cancer diagnosis: a tagged pipeline

We classify tumours as malignant or benign from the Wisconsin diagnostic
measurements that ship with scikit-learn, so nothing is downloaded.

Each pipeline step starts at a code cell tagged `step:<name>`; an untagged cell
belongs to the step above it. The three model steps read only the train/test
split and never each other, so they can run in parallel.
"""),
    code("""
import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
"""),
    code('''
def add_gaps(df, columns, fraction, seed):
    """Return a copy of `df` with a seeded random fraction of `columns` left blank."""
    rng = np.random.default_rng(seed)
    gappy = df.copy()
    blank = rng.random((len(gappy), len(columns))) < fraction
    gappy[columns] = gappy[columns].mask(blank)
    return gappy


def classification_scores(model, X, y):
    """Accuracy, F1 and ROC AUC of a fitted binary classifier on (X, y)."""
    predicted = model.predict(X)
    probability = model.predict_proba(X)[:, 1]
    return {
        "accuracy": accuracy_score(y, predicted),
        "f1": f1_score(y, predicted),
        "roc_auc": roc_auc_score(y, probability),
    }
'''),
    md("""
## Parameters

Literal assignments only, so a run can override any of them.
"""),
    code("""
seed = 42
test_size = 0.25
missing_fraction = 0.03
n_duplicates = 12
log_columns = ["mean area", "worst area", "area error"]
C = 1.0
n_estimators = 50
max_depth: int = 4
learning_rate = 0.1
""", "parameters"),
    md("""
## Load

The bundled data set is spotless, so we make it look like a real export: a few
percent of the measurements are blank and some rows were exported twice.
"""),
    code("""
dataset = load_breast_cancer(as_frame=True)
feature_names = list(dataset.feature_names)
target_names = list(dataset.target_names)

raw = add_gaps(dataset.frame, feature_names, missing_fraction, seed)
raw = pd.concat([raw, raw.sample(n_duplicates, random_state=seed)], ignore_index=True)
raw.shape
""", "step:load"),
    code("""
print(f"blank cells: {raw.isna().sum().sum()}, duplicated rows: {raw.duplicated().sum()}")
raw["target"].map(dict(enumerate(target_names))).value_counts()
"""),
    md("""
## Clean

Drop the exact duplicates, then fill each blank measurement with its column median.
"""),
    code("""
clean = raw.drop_duplicates().reset_index(drop=True)
medians = clean[feature_names].median()
clean[feature_names] = clean[feature_names].fillna(medians)

assert clean.isna().sum().sum() == 0
print(f"dropped {len(raw) - len(clean)} duplicates, {len(clean)} rows left")
""", "step:clean"),
    md("""
## Features

Log-transform the heavy-tailed area columns and add the ratio of worst to mean
radius (how far the largest nuclei exceed the average). In the raw data class 0
is malignant; we recode the label so that malignant is the positive class.
"""),
    code("""
features = clean.drop(columns="target")
for column in log_columns:
    features[f"log {column}"] = np.log1p(features[column])
features["radius ratio"] = features["worst radius"] / features["mean radius"]

X = features
y = (clean["target"] == 0).astype(int).rename("malignant")
X.shape
""", "step:features"),
    md("""
## Split and scale

A stratified split; the scaler is fitted on the training rows only.
"""),
    code("""
X_train_raw, X_test_raw, y_train, y_test = train_test_split(
    X, y, test_size=test_size, random_state=seed, stratify=y
)
scaler = StandardScaler().fit(X_train_raw)
X_train = pd.DataFrame(scaler.transform(X_train_raw), index=X_train_raw.index, columns=X.columns)
X_test = pd.DataFrame(scaler.transform(X_test_raw), index=X_test_raw.index, columns=X.columns)
print(f"train {len(X_train)} rows, test {len(X_test)} rows, malignant share {y_train.mean():.3f}")
""", "step:split"),
    md("""
## Models

Three independent branches, each trained on the same split.
"""),
    code("""
logreg = LogisticRegression(C=C, max_iter=1000)
logreg.fit(X_train, y_train)
print(f"logistic regression, train accuracy {logreg.score(X_train, y_train):.3f}")
""", "step:train-logreg"),
    code("""
forest = RandomForestClassifier(
    n_estimators=n_estimators, max_depth=max_depth, random_state=seed, n_jobs=1
)
forest.fit(X_train, y_train)
print(f"random forest, train accuracy {forest.score(X_train, y_train):.3f}")
""", "step:train-forest"),
    code("""
boosting = GradientBoostingClassifier(
    n_estimators=n_estimators, learning_rate=learning_rate, max_depth=max_depth, random_state=seed
)
boosting.fit(X_train, y_train)
print(f"gradient boosting, train accuracy {boosting.score(X_train, y_train):.3f}")
""", "step:train-boosting"),
    md("""
## Evaluate

Score every model on the held-out rows and keep the best by F1.
"""),
    code("""
models = {"logreg": logreg, "random_forest": forest, "gradient_boosting": boosting}
results = pd.DataFrame(
    {name: classification_scores(model, X_test, y_test) for name, model in models.items()}
).T.sort_values(["f1", "accuracy"], ascending=False)
results.round(4)
""", "step:evaluate"),
    code("""
best_name = results.index[0]
best_model = models[best_name]
print(f"best model: {best_name}")
pd.crosstab(
    y_test.to_numpy(), best_model.predict(X_test), rownames=["actual"], colnames=["predicted"]
)
"""),
    md("""
## Metrics
"""),
    code("""
best_accuracy = float(results.loc[best_name, "accuracy"])
best_f1 = float(results.loc[best_name, "f1"])
best_roc_auc = float(results.loc[best_name, "roc_auc"])
""", "metrics"),
]


# ---------------------------------------------------------------------------
# (b) tabular ML, steps marked with %%step magics
# ---------------------------------------------------------------------------

MAGIC_SETUP = '''
# Environment setup: use cellpipe's %%step magic when it is installed, otherwise
# register a stand-in that ignores the step options and runs the cell body.
import importlib.util

if importlib.util.find_spec("cellpipe") is not None:
    get_ipython().run_line_magic("load_ext", "cellpipe")
if "step" not in get_ipython().magics_manager.magics["cell"]:
    def _step(line, cell):
        """Fallback %%step: run the body, re-raising any error it hits."""
        get_ipython().run_cell(cell).raise_error()

    get_ipython().register_magic_function(_step, magic_kind="cell", magic_name="step")
    del _step
'''

TABULAR_MAGICS = [
    md("""
# Wine cultivar classification: a `%%step` pipeline

Predict which of three cultivars a wine comes from, using the chemical analysis
bundled with scikit-learn.

Steps are marked inside the cells: a first line `%%step NAME` starts a step, and
`--after A B` names its upstream steps explicitly (without it, a step follows the
one above). Resource hints such as `--cpu 1 --memory 1Gi` are optional. Untagged
cells join the step above them.
"""),
    code(MAGIC_SETUP),
    code("""
import numpy as np
import pandas as pd
from sklearn.datasets import load_wine
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier
"""),
    md("""
## Parameters
"""),
    code("""
seed = 7
test_size = 0.3
missing_fraction = 0.05
gappy_columns = ["magnesium", "color_intensity", "proline"]
svm_C = 3.0
n_neighbors = 7
tree_max_depth = 4
f1_average = "macro"
""", "parameters"),
    md("""
## Load

Three of the lab measurements are occasionally missing in practice, and the
export repeats every 25th sample; we reproduce both with a fixed seed.
"""),
    code("""
%%step load
wine = load_wine(as_frame=True)
class_names = list(wine.target_names)

raw = wine.frame.copy()
rng = np.random.default_rng(seed)
blank = rng.random((len(raw), len(gappy_columns))) < missing_fraction
raw[gappy_columns] = raw[gappy_columns].mask(blank)
raw = pd.concat([raw, raw.iloc[::25]], ignore_index=True)
raw.shape
"""),
    md("""
## Clean
"""),
    code("""
%%step clean --after load
clean = raw.drop_duplicates().reset_index(drop=True)
clean[gappy_columns] = clean[gappy_columns].fillna(clean[gappy_columns].median())
print(f"dropped {len(raw) - len(clean)} duplicates, {clean.isna().sum().sum()} blanks left")
"""),
    md("""
## Features

Proline spans two orders of magnitude, so we use its log; the share of phenols
that are flavanoids separates the cultivars better than either column alone.
"""),
    code("""
%%step features
features = clean.drop(columns="target")
features["log_proline"] = np.log(features.pop("proline"))
features["flavanoid_share"] = features["flavanoids"] / features["total_phenols"]

X = features
y = clean["target"]
X.describe().T[["mean", "std"]].round(2)
"""),
    code("""
%%step split --after features
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=test_size, random_state=seed, stratify=y
)
y_train.value_counts().sort_index()
"""),
    md("""
## Models

Three branches that only depend on the split. Scaling lives inside the model
pipelines that need it, so each branch is self-contained.
"""),
    code("""
%%step train-svm --after split --cpu 1 --memory 1Gi
svm = make_pipeline(StandardScaler(), SVC(C=svm_C, gamma="scale"))
svm.fit(X_train, y_train)
"""),
    code("""
%%step train-knn --after split
knn = make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=n_neighbors))
knn.fit(X_train, y_train)
"""),
    code("""
%%step train-tree --after split
tree = DecisionTreeClassifier(max_depth=tree_max_depth, random_state=seed)
tree.fit(X_train, y_train)
"""),
    md("""
## Evaluate
"""),
    code("""
%%step evaluate --after train-svm train-knn train-tree
models = {"svm": svm, "knn": knn, "tree": tree}
predictions = {name: model.predict(X_test) for name, model in models.items()}
scores = pd.DataFrame(
    {
        name: {
            "accuracy": accuracy_score(y_test, predicted),
            "f1": f1_score(y_test, predicted, average=f1_average),
        }
        for name, predicted in predictions.items()
    }
).T.sort_values(["f1", "accuracy"], ascending=False)
scores.round(4)
"""),
    code("""
best_name = scores.index[0]
best_accuracy = float(scores.loc[best_name, "accuracy"])
best_f1 = float(scores.loc[best_name, "f1"])
print(f"best model: {best_name}")
pd.crosstab(
    pd.Categorical.from_codes(y_test, class_names),
    pd.Categorical.from_codes(predictions[best_name], class_names),
    rownames=["actual"],
    colnames=["predicted"],
)
"""),
    md("""
## Metrics
"""),
    code("""
best_accuracy
best_f1
""", "metrics"),
]


# ---------------------------------------------------------------------------
# (c) Kubeflow Kale style tags
# ---------------------------------------------------------------------------

KALE_METADATA = {
    "kubeflow_notebook": {
        "pipeline_name": "diabetes-progression",
        "pipeline_description": "Ridge and random forest regressors for one-year diabetes progression",
        "experiment": {"name": "diabetes-regression"},
        "docker_image": "",
        "volumes": [],
    }
}

KALE_STYLE = [
    md("""
# Diabetes progression: Kale-style tags

Regression of a one-year disease progression score from baseline measurements
of 442 patients (bundled with scikit-learn).

Cells are tagged the way Kubeflow Kale expects: `imports`, `functions`,
`pipeline-parameters`, `block:<name>` with `prev:<name>` for upstream blocks,
`skip` for exploration and `pipeline-metrics` at the end.
"""),
    code("""
import numpy as np
import pandas as pd
from sklearn.datasets import load_diabetes
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
""", "imports"),
    code('''
def regression_report(model, X, y):
    """R², RMSE and MAE of a fitted regressor on (X, y)."""
    predicted = model.predict(X)
    return {
        "r2": r2_score(y, predicted),
        "rmse": float(np.sqrt(mean_squared_error(y, predicted))),
        "mae": mean_absolute_error(y, predicted),
    }
''', "functions"),
    code("""
SEED = 11
TEST_SIZE = 0.2
RIDGE_ALPHA = 1.0
N_ESTIMATORS = 100
MAX_DEPTH = 6
""", "pipeline-parameters"),
    md("""
## Load data

We use the unscaled version so the columns keep their clinical units.
"""),
    code("""
diabetes = load_diabetes(as_frame=True, scaled=False)
df = diabetes.frame
df.shape
""", "block:load_data"),
    code("""
# Exploration only, not part of the pipeline.
df.describe().T.round(1)
""", "skip"),
    code("""
df.corr()["target"].drop("target").sort_values(ascending=False).round(3)
""", "skip"),
    md("""
The serum measurements come as `s1`..`s6`; the rename below is still part of the
`load_data` block (Kale merges cells that share a block name).
"""),
    code("""
df = df.rename(columns={"s1": "tc", "s2": "ldl", "s3": "hdl", "s4": "tch", "s5": "ltg", "s6": "glu"})
df.columns.tolist()
""", "block:load_data"),
    md("""
## Features
"""),
    code("""
data = df.copy()
data["sex_2"] = (data.pop("sex") == 2).astype(int)
data["bmi_x_bp"] = data["bmi"] * data["bp"]
data["ldl_hdl_ratio"] = data["ldl"] / data["hdl"]
data.head()
""", "block:engineer_features", "prev:load_data"),
    code("""
X = data.drop(columns="target")
y = data["target"]
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=TEST_SIZE, random_state=SEED)
print(f"train {len(X_train)} rows, test {len(X_test)} rows")
""", "block:split_data", "prev:engineer_features"),
    md("""
## Models
"""),
    code("""
ridge = make_pipeline(StandardScaler(), Ridge(alpha=RIDGE_ALPHA))
ridge.fit(X_train, y_train)
""", "block:train_ridge", "prev:split_data"),
    code("""
forest = RandomForestRegressor(
    n_estimators=N_ESTIMATORS, max_depth=MAX_DEPTH, random_state=SEED, n_jobs=1
)
forest.fit(X_train, y_train)
""", "block:train_forest", "prev:split_data"),
    md("""
## Evaluate
"""),
    code("""
reports = pd.DataFrame(
    {
        "ridge": regression_report(ridge, X_test, y_test),
        "forest": regression_report(forest, X_test, y_test),
    }
).T
reports.round(3)
""", "block:evaluate", "prev:train_ridge", "prev:train_forest"),
    code("""
best_name = reports["rmse"].idxmin()
best_model = {"ridge": ridge, "forest": forest}[best_name]
test_r2 = float(reports.loc[best_name, "r2"])
test_rmse = float(reports.loc[best_name, "rmse"])
print(f"best model: {best_name}")
"""),
    md("""
## Residuals

Where along the progression scale does the best model miss?
"""),
    code("""
residuals = pd.DataFrame({"actual": y_test, "predicted": best_model.predict(X_test)})
residuals["error"] = residuals["actual"] - residuals["predicted"]
residuals.groupby(pd.qcut(residuals["actual"], 4), observed=True)["error"].agg(["mean", "std"]).round(1)
""", "block:residuals", "prev:evaluate:split_data"),
    code("""
print(test_r2)
print(test_rmse)
""", "pipeline-metrics"),
]


# ---------------------------------------------------------------------------
# (d) no step markers, sections split by markdown headings
# ---------------------------------------------------------------------------

UNTAGGED_SECTIONS = [
    md("""
# Customer churn: a first model

Synthetic subscription data, generated with a fixed seed so every run is the same.
We want a simple, explainable model that flags customers at risk of leaving.
"""),
    code("""
%matplotlib inline
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix, precision_score, recall_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
"""),
    code("""
# Record the tooling this was run with.
!pip --version
"""),
    code("""
SEED = 2024
N_CUSTOMERS = 800
THRESHOLD = 0.35  # flag a customer as at risk from this churn probability on
"""),
    md("""
## Load
"""),
    code("""
rng = np.random.default_rng(SEED)
contract = rng.choice(["monthly", "one_year", "two_year"], size=N_CUSTOMERS, p=[0.55, 0.25, 0.2])
tenure = rng.integers(1, 72, size=N_CUSTOMERS)
monthly_charges = np.round(rng.normal(65, 20, size=N_CUSTOMERS).clip(15, 130), 2)
support_calls = rng.poisson(1.5, size=N_CUSTOMERS).astype(float)
logit = (
    -1.0
    + 1.4 * (contract == "monthly")
    - 0.04 * tenure
    + 0.015 * (monthly_charges - 65)
    + 0.35 * support_calls
)
churned = (rng.random(N_CUSTOMERS) < 1 / (1 + np.exp(-logit))).astype(int)

df = pd.DataFrame(
    {
        "customer_id": [f"C{i:05d}" for i in range(N_CUSTOMERS)],
        "contract": contract,
        "tenure_months": tenure,
        "monthly_charges": monthly_charges,
        "support_calls": support_calls,
        "churned": churned,
    }
)
# The CRM export leaves some fields blank.
df.loc[rng.random(N_CUSTOMERS) < 0.04, "monthly_charges"] = np.nan
df.loc[rng.random(N_CUSTOMERS) < 0.08, "support_calls"] = np.nan
df.head()
"""),
    code("""
print(f"churn rate: {df['churned'].mean():.3f}")
df.isna().sum()
"""),
    md("""
## Clean

A blank support-call count means no call was logged. Missing charges are filled
with the median of the customer's contract type. The id carries no signal.
"""),
    code("""
df.fillna({"support_calls": 0}, inplace=True)
df["monthly_charges"] = df["monthly_charges"].fillna(
    df.groupby("contract")["monthly_charges"].transform("median")
)
del df["customer_id"]
df.isna().sum().sum()
"""),
    md("""
## Features

Split first, then derive the same columns on both frames.
"""),
    code("""
train_df, test_df = train_test_split(
    df, test_size=0.25, random_state=SEED, stratify=df["churned"]
)
train_df = train_df.copy()
test_df = test_df.copy()
"""),
    code("""
data = [train_df, test_df]
for d in data:
    d["is_monthly"] = (d["contract"] == "monthly").astype(int)
    d["charges_per_tenure_month"] = d["monthly_charges"] / d["tenure_months"]
    d["heavy_support"] = (d["support_calls"] >= 3).astype(int)
"""),
    code("""
FEATURES = [
    "is_monthly",
    "tenure_months",
    "monthly_charges",
    "charges_per_tenure_month",
    "support_calls",
    "heavy_support",
]
X_train, y_train = train_df[FEATURES], train_df["churned"]
X_test, y_test = test_df[FEATURES], test_df["churned"]
X_train.describe().T[["mean", "min", "max"]].round(2)
"""),
    md("""
## Model
"""),
    code('''
def flag_at_risk(probabilities):
    """1 for customers whose churn probability reaches THRESHOLD, else 0."""
    return (probabilities >= THRESHOLD).astype(int)
'''),
    code("""
model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
model.fit(X_train, y_train)
test_probability = model.predict_proba(X_test)[:, 1]
test_flagged = flag_at_risk(test_probability)
pd.Series(model[-1].coef_[0], index=FEATURES).sort_values().round(3)
"""),
    md("""
## Report
"""),
    code("""
report = pd.Series(
    {
        "accuracy": accuracy_score(y_test, test_flagged),
        "precision": precision_score(y_test, test_flagged),
        "recall": recall_score(y_test, test_flagged),
        "flagged_share": test_flagged.mean(),
    }
)
report.round(3)
"""),
    code("""
pd.DataFrame(
    confusion_matrix(y_test, test_flagged),
    index=["stayed", "churned"],
    columns=["not flagged", "flagged"],
)
"""),
    code("""
churned_mask = y_test.to_numpy() == 1
bins = np.linspace(0, 1, 21)
fig, ax = plt.subplots(figsize=(7, 4))
ax.hist(test_probability[~churned_mask], bins=bins, alpha=0.6, label="stayed")
ax.hist(test_probability[churned_mask], bins=bins, alpha=0.6, label="churned")
ax.axvline(THRESHOLD, color="black", linestyle="--", label=f"threshold {THRESHOLD}")
ax.set_xlabel("predicted churn probability")
ax.set_ylabel("customers")
ax.set_title("Test set: predicted churn probability by outcome")
ax.legend()
plt.show()
"""),
    md("""
Monthly contracts and frequent support calls push churn risk up, long tenure
pulls it down. Moving `THRESHOLD` trades precision for recall.
"""),
]


NOTEBOOKS = {
    "tabular_tags.ipynb": (TABULAR_TAGS, None),
    "tabular_magics.ipynb": (TABULAR_MAGICS, None),
    "kale_style.ipynb": (KALE_STYLE, KALE_METADATA),
    "untagged_sections.ipynb": (UNTAGGED_SECTIONS, None),
}


def main():
    for name, (cells, extra_metadata) in NOTEBOOKS.items():
        path = write(build(cells, extra_metadata), name)
        print(f"wrote {path.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
