"""The explanation views in the app, driven by AppTest on the small demo: contrastive neurons, the neuron
card, nearest targets, shared neurons, the share note, links and the view in the URL."""
from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from test_app import APP, TARGET_SIZE, TARGETS, check, demo  # noqa: F401  (the small demo fixture)

pytestmark = pytest.mark.slow
NAMES = [f"{t}-n{TARGET_SIZE}-s0" for t in TARGETS]


def open_at(page: str, **params) -> AppTest:
    """The app opened straight on `page` with these query parameters, as a link or a reload would."""
    at = AppTest.from_file(APP, default_timeout=300)
    if page != "data":
        at.switch_page(f"pages/{page}.py")
    for name, value in params.items():
        at.query_params[name] = str(value)
    at.run()
    check(at)
    return at


def frame(at: AppTest, column: str):
    """The first table with this column."""
    return next(d for d in at.dataframe if column in d.value.columns)


def markdown(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_sample_explorer_contrastive_card_and_nearest(demo):
    at = open_at("samples", row=7)
    assert at.number_input(key="samples_row").value == 7 and at.query_params["row"] == "7"
    top = frame(at, "z vs pool").value
    assert top["z vs pool"].is_monotonic_decreasing and len(top) == 20
    assert all(link.startswith("neurons?neuron=L") for link in top["neuron"])  # each id opens the Neuron explorer
    # The heatmap's colour limits come from percentiles, so the outliers saturate instead of setting them.
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]
    z = spec["z"]  # plotly's typed-array encoding: base64 bytes, dtype and shape
    z = np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"]) if isinstance(z, dict) else np.asarray(z, float)
    assert spec["zmax"] == pytest.approx(-spec["zmin"]) and spec["zmax"] < np.nanmax(np.abs(z))
    assert "Nearest target records" in markdown(at)
    assert sum(1 for m in at.markdown if m.value.startswith("- **")) == 5
    neuron = top["neuron"].iloc[0].split("=")[1]
    at.text_input(key="samples_card").set_value(neuron).run()  # what a pick in the table sets
    check(at)
    assert f"Neuron card: [{neuron}]" in markdown(at) and "Firing density" in markdown(at)
    assert any("promotes" in h.proto.body for h in at.get("html"))
    assert at.query_params["neuron"] == neuron


def test_a_link_with_a_neuron_opens_its_card(demo):
    at = open_at("neurons", neuron="L5.N10")
    assert at.radio(key="neurons_mode").value == "any neuron"
    assert at.subheader[0].value == "Neuron L5.N10"
    assert "Neuron card: L5.N10" in markdown(at) and "Top-activating records" in markdown(at)
    assert sum(1 for h in at.get("html") if "<span" in h.proto.body) >= 3  # highlighted firing tokens
    pool_top = at.dataframe[0].value
    assert all(link.startswith("samples?row=") for link in pool_top["row"])  # each row opens the record
    at.number_input(key="neurons_index").set_value(11).run()
    assert at.query_params["neuron"] == "L5.N11"
    bad = open_at("neurons", neuron="L99.N1")
    assert any("outside" in w.value for w in bad.warning) and bad.subheader[0].value.startswith("Neuron L")


def test_transfer_shared_neurons_and_core_reason(demo):
    at = open_at("transfer", ratio=0.5)
    neurons = frame(at, "joint z").value
    z = neurons[[f"z: {n}" for n in NAMES]].to_numpy()
    np.testing.assert_allclose(neurons["joint z"], z.min(axis=1), rtol=1e-5)
    assert (neurons["joint z"] > 0).all()
    layers = frame(at, "top-50 overlap").value
    assert len(layers) == 30 and layers["top-50 overlap"].between(0, 1).all()
    core, joint = [d.value for d in at.dataframe if "carried by" in d.value.columns]  # core subset, then joint
    assert len(joint) == 10 and {f"shared share: {n}" for n in NAMES} <= set(joint.columns)
    assert "carried by" in core.columns and core["carried by"].str.match(r"L\d+\.N\d+").any()
    at.multiselect(key="transfer_targets").set_value(NAMES[:2]).run()
    check(at)
    assert at.query_params["targets"] == ",".join(NAMES[:2])
    assert set(frame(at, "joint z").value.columns) >= {f"z: {n}" for n in NAMES[:2]}
    again = open_at("transfer", targets=",".join(NAMES[1:]))
    assert again.multiselect(key="transfer_targets").value == NAMES[1:]


def test_select_explains_the_share_and_keeps_settings_in_the_url(demo):
    at = open_at("select", ratio=0.3, merge="intersection", method="jaccard", threshold="q0.9")
    check(at)
    assert not at.error, [e.value for e in at.error]
    assert at.slider(key="select_ratio").value == pytest.approx(0.3)
    assert at.selectbox(key="select_merge").value == "intersection" and at.radio(key="select_method").value == "jaccard"
    assert any(c.value.startswith("Why this share: intersection of 3 targets at 30% each") for c in at.caption)
    at.selectbox(key="select_merge").set_value("union").run()
    assert at.query_params["ratio"] == "0.3" and "merge" not in at.query_params
    assert any("union of 3 targets at 30% each" in c.value for c in at.caption)
    # The settings follow to the other pages: the Sample explorer shows the same selection.
    at.switch_page("pages/samples.py").run()
    check(at)
    assert at.query_params["method"] == "jaccard"
