"""Random cell sources and tags never crash lint: it returns diagnostics or a spec."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cellpipe import api
from cellpipe.errors import PipelineError
from tests.conftest import make_nb

NAMES = st.sampled_from(["x", "y", "df", "model", "lr", "f", "np", "data", "i", "_"])
STEPS = st.sampled_from(["a", "b", "load", "train", "Bad Name", "a_b", "a-b", ""])

FRAGMENTS = st.one_of(
    st.builds(lambda a, b: f"{a} = {b} + 1", NAMES, NAMES),
    st.builds(lambda a, b: f"{a}[0] = {b}", NAMES, NAMES),
    st.builds(lambda a: f"{a}.append(1)", NAMES),
    st.builds(lambda a: f"del {a}", NAMES),
    st.builds(lambda a, b: f"def {a}(v):\n    return v + {b}", NAMES, NAMES),
    st.builds(lambda a, b: f"{a} = [v for v in {b}]", NAMES, NAMES),
    st.builds(lambda a: f"for {a} in range(3):\n    pass", NAMES),
    st.builds(lambda a: f"if {a}:\n    y = 1\nelse:\n    y = 2", NAMES),
    st.builds(lambda a: f"import numpy as {a}", NAMES),
    st.builds(lambda a: f"%time {a}", NAMES),
    st.builds(lambda a: f"!echo {{{a}}}", NAMES),
    st.builds(lambda a: f"{a}?", NAMES),
    st.just("%%time\nz = 1"),
    st.just("from math import *"),
    st.just("exec('q = 1')"),
    st.just("globals()['w'] = 3"),
    st.just("class K:\n    a = 1\n    def m(self):\n        return a"),
    st.just("lambda: (yield)"),
    st.just("x = = 1"),  # a syntax error
    st.just("!pip install requests"),
    st.just("    indented = True"),
    # files between steps, seeds and objects that change as they are used
    st.builds(lambda a: f"pd.read_csv(f'data/{{{a}}}.csv')", NAMES),
    st.builds(lambda a, b: f"{a}.to_csv(os.path.join('out', {b}))", NAMES, NAMES),
    st.builds(lambda a: f"with open({a}, 'w') as fh:\n    fh.write('x')", NAMES),
    st.builds(lambda a: f"joblib.dump({a}, Path('m') / 'model.pkl')", NAMES),
    st.builds(lambda a: f"{a} = 'data/' + {a}", NAMES),
    st.just("os.chdir('sub')"),
    st.just("open(1 + )"),
    st.just("np.random.seed(0)\nr = np.random.rand()"),
    st.builds(lambda a: f"{a} = np.random.default_rng(1)\n{a}.normal()", NAMES),
    st.builds(lambda a: f"{a} = iter(range(3))\nnext({a})", NAMES),
    st.builds(lambda a, b: f"{a} = [{b}, {b}]", NAMES, NAMES),
    st.just("parameters_like = 3 * 3"),
    st.just("x = await f()"),
    st.text(max_size=40),
)

TAGS = st.lists(
    st.one_of(
        STEPS.map(lambda s: f"step:{s}"),
        STEPS.map(lambda s: f"block:{s}"),
        STEPS.map(lambda s: f"after:{s}"),
        STEPS.map(lambda s: f"prev:{s}:{s}"),
        st.sampled_from(
            [
                "parameters",
                "metrics",
                "skip",
                "pipeline-metrics",
                "gpu:1",
                "gpu:x",
                "memory:1Gi",
                "timeout:abc",
                "cache:off",
                "limit:nvidia.com/gpu:1",
                "image:",
                "imports",
            ]
        ),
        st.text(min_size=1, max_size=12).filter(lambda t: "," not in t),  # nbformat's rule
    ),
    max_size=3,
    unique=True,  # nbformat requires unique tags
)

HEADER = st.one_of(
    st.just(""),
    STEPS.map(lambda s: f"%%step {s}\n"),
    st.builds(lambda s, t: f"%%step {s} --after {t} --gpu 1\n", STEPS, STEPS),
    st.just("%%step --bogus\n"),
)

CELLS = st.lists(
    st.one_of(
        st.tuples(
            TAGS,
            st.builds(lambda h, body: h + "\n".join(body), HEADER, st.lists(FRAGMENTS, max_size=4)),
        ),
        st.tuples(st.just("md"), st.sampled_from(["# Title", "## Part two", "text"])),
    ),
    max_size=8,
)


@settings(
    max_examples=int(__import__("os").environ.get("CELLPIPE_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(cells=CELLS, split=st.sampled_from([None, "headings", "cells", "none"]))
def test_lint_never_crashes(cells, split):
    nb = make_nb(*cells)
    report = api.lint(nb, split=split)
    for diagnostic in report.diagnostics:
        assert diagnostic.severity in ("error", "warning", "info")
        assert diagnostic.code.startswith("CP")
        assert diagnostic.cell is None or 0 <= diagnostic.cell < len(cells)
    try:
        spec = api.compile_spec(nb, split=split).to_dict()
    except PipelineError as exc:
        assert exc.diagnostics, "a refused compile must say why"
        assert not report.ok
    else:
        assert report.ok
        assert [s["name"] for s in spec["steps"]] == [s.name for s in report.pipeline.steps]
