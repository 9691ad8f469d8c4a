"""SelectionSpec and its codecs: every valid spec comes back equal through JSON, argv, URL query and env."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nait_core.cli.spec_args import from_argv
from nait_core.cuts import MERGES, Cut
from nait_core.data import FORMATS
from nait_core.scoring import LAYERED, RDS_POOLS, TARGET_METHODS, ScoreOptions
from nait_core.spec import (
    DEFAULT_CUT,
    DTYPES,
    ENV_VARIABLE,
    PCA_REDUCTIONS,
    CaptureSpec,
    DataSpec,
    ExecutionSettings,
    ModelSpec,
    SelectionSpec,
    from_env,
    from_query,
    to_argv,
    to_env,
    to_query,
)

pytestmark = pytest.mark.unit

# argparse reads a value starting with "-" as an option: paths and names never start with one
names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12).filter(
    lambda s: not s.startswith("-")
)
optional = st.none() | names
thresholds = st.one_of(
    st.floats(-5, 5, allow_nan=False).map(repr),
    st.floats(0.001, 0.999).map(lambda q: f"q{q!r}"),
)


@st.composite
def score_options(draw):
    method = draw(st.sampled_from(TARGET_METHODS))
    layers = draw(st.none() | st.sets(st.integers(0, 40), min_size=1, max_size=5).map(lambda s: tuple(sorted(s))))
    return ScoreOptions(
        method=method,
        centre=draw(st.booleans()),
        fire_threshold=draw(thresholds),
        reduction=draw(st.sampled_from(PCA_REDUCTIONS)),
        layer_norm=draw(st.sampled_from(("none", "z"))),
        rds_pool=draw(st.sampled_from(RDS_POOLS)),
        embed_model=draw(st.just("") | names),
        layers=layers if method in LAYERED else None,
    )


cuts = st.one_of(
    st.floats(1e-6, 1.0, exclude_min=True).map(lambda r: Cut(ratio=r)),
    st.integers(1, 10**6).map(lambda t: Cut(top=t)),
    st.floats(-1e6, 1e6, allow_nan=False).map(lambda m: Cut(min_score=m)),
)

specs = st.builds(
    SelectionSpec,
    data=st.builds(
        DataSpec,
        candidates=names,
        targets=st.lists(names, max_size=3).map(tuple),
        target_size=st.none() | st.integers(1, 10**6),
        seed=st.integers(0, 2**31),
        format=st.none() | st.sampled_from(FORMATS),
        text_field=optional,
        skip_invalid=st.booleans(),
    ),
    model=st.builds(
        ModelSpec,
        name=names,
        dtype=st.none() | st.sampled_from(DTYPES),
        neuron_module=optional,
        trust_remote_code=st.booleans(),
    ),
    capture=st.builds(
        CaptureSpec,
        reductions=st.lists(st.sampled_from(("mean", "max", "last", "first")), max_size=3, unique=True).map(tuple),
        max_length=st.integers(1, 8192),
        sketch=st.integers(0, 4096),
        sketch_seed=st.integers(0, 2**31),
        exact_sample=st.integers(0, 10**5),
    ),
    scoring=score_options(),
    cut=cuts,
    merge=st.sampled_from(MERGES),
)


@settings(max_examples=150, deadline=None)
@given(specs)
def test_json_round_trip_is_exact_and_the_digest_stable(spec):
    back = SelectionSpec.from_json(spec.to_json())
    assert back == spec and hash(back) == hash(spec)
    assert back.digest() == spec.digest() and back.to_json() == spec.to_json()


@settings(max_examples=25, deadline=None)  # each parse builds the whole CLI
@given(specs)
def test_argv_round_trip_through_the_real_parser(spec):
    execution = ExecutionSettings(store_dir="s3://bucket/stores", device="cpu")
    back, back_execution = from_argv(to_argv(spec, execution, "out.jsonl"))
    assert back == spec and back.digest() == spec.digest()
    assert back_execution.store_dir == "s3://bucket/stores" and back_execution.device == "cpu"


@settings(max_examples=150, deadline=None)
@given(specs)
def test_query_round_trip_keeps_scoring_cut_and_merge(spec):
    # the URL carries the settings; data, model and capture are the loaded session's (the base)
    base = SelectionSpec(data=spec.data, model=spec.model, capture=spec.capture)
    assert from_query(to_query(spec), base) == spec


@settings(max_examples=100, deadline=None)
@given(specs)
def test_env_round_trip(spec):
    assert from_env({"PATH": "/bin", **to_env(spec)}) == spec


def test_default_spec_argv_spells_out_only_the_scoring_cut_merge_and_store():
    argv = to_argv(SelectionSpec(data=DataSpec("demo", ("gsm8k",))))
    assert argv == [
        *("nait", "select", "--candidates", "demo", "--target", "gsm8k", "--model", "smollm2-135m"),
        *("--method", "overlap", "--fire-threshold", "0", "--reduction", "last-first", "--layer-norm", "none"),
        *("--ratio", "0.1", "--merge", "union", "--store-dir", "cached_features", "--out", "selected.jsonl"),
    ]


def test_execution_settings_are_not_part_of_the_spec():
    spec = SelectionSpec(data=DataSpec("demo", ("gsm8k",)))
    on_gpu, _ = from_argv(to_argv(spec, ExecutionSettings(device="cuda:1", store_dir="/fast")))
    assert on_gpu == spec and on_gpu.digest() == spec.digest()
    assert "device" not in spec.to_json() and "store_dir" not in spec.to_json()


def test_query_matches_what_the_studio_has_always_written():
    spec = SelectionSpec(scoring=ScoreOptions(method="jaccard", fire_threshold="q0.9", centre=False), cut=Cut(top=50))
    assert to_query(spec) == {"method": "jaccard", "threshold": "q0.9", "centre": "0", "top": "50"}
    assert to_query(SelectionSpec(cut=Cut(ratio=0.25), merge="mean-z")) == {"ratio": "0.25", "merge": "mean-z"}
    assert to_query(SelectionSpec()) == {} and SelectionSpec().cut == DEFAULT_CUT


@pytest.mark.parametrize(
    "params, named",
    [
        ({"ratio": "lots"}, "ratio='lots'"),
        ({"ratio": "2"}, "ratio='2'"),
        ({"top": "1.5"}, "top='1.5'"),
        ({"min_score": "inf"}, "min_score='inf'"),
        ({"merge": "both"}, "merge='both'"),
        ({"reduction": "median"}, "reduction='median'"),
        ({"threshold": "q2"}, "threshold='q2'"),
        ({"method": "best"}, "method='best'"),
    ],
)
def test_a_bad_query_value_names_its_parameter(params, named):
    with pytest.raises(ValueError, match=f"query parameter {named}"):
        from_query(params)


def test_bad_json_names_the_field():
    with pytest.raises(ValueError, match=r"spec\.cut: give exactly one"):
        SelectionSpec.from_json('{"cut": {"ratio": 0.1, "top": 3}}')
    with pytest.raises(ValueError, match=r"spec\.data: unknown field\(s\) shots"):
        SelectionSpec.from_json('{"data": {"shots": 3}}')
    with pytest.raises(ValueError, match=f"{ENV_VARIABLE} is not set"):
        from_env({})


def test_a_value_starting_with_a_dash_reaches_the_parser_as_a_value():
    # argparse reads "-1e-05" after an option as another option: written --fire-threshold=-1e-05
    spec = SelectionSpec(scoring=ScoreOptions("jaccard", fire_threshold="-1e-05"), cut=Cut(min_score=-1e-05))
    argv = to_argv(spec)
    assert "--fire-threshold=-1e-05" in argv and "--min-score=-1e-05" in argv
    assert from_argv(argv)[0] == spec
    plain = to_argv(SelectionSpec(cut=Cut(min_score=-0.5)))  # a negative argparse knows: the line as before
    assert plain[plain.index("--min-score") + 1] == "-0.5"
