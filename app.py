"""NAIT Studio: `nait app` (or `streamlit run app.py`). The navigation table; the shared sidebar is
`studio.sidebar`; the page scripts are in `pages/`.

With st.navigation here, Streamlit lists exactly these pages, not the files of `pages/` (checked in headless
Chromium: tests/test_install.py). Page paths are relative to this file, so the same table works from a checkout
and from an installed wheel (where this file and `pages/` ship as `nait_app`). Streamlit may still run a
`pages/` script without this file (its older multipage mode, see studio/entry.py): each page then runs this
file first.
"""

import streamlit as st

from studio import urlstate
from studio.entry import navigating
from studio.sidebar import sidebar

st.set_page_config(page_title="NAIT Studio", page_icon=":material/neurology:", layout="wide")

PAGES = [
    st.Page("pages/data.py", title="Data & model", icon=":material/database:", default=True),
    st.Page("pages/samples.py", title="Sample explorer", icon=":material/search:"),
    st.Page("pages/neurons.py", title="Neuron explorer", icon=":material/neurology:"),
    st.Page("pages/map.py", title="Overlap map", icon=":material/scatter_plot:"),
    st.Page("pages/select.py", title="Select & export", icon=":material/checklist:"),
    st.Page("pages/transfer.py", title="Transfer", icon=":material/compare_arrows:"),
    st.Page("pages/outcomes.py", title="Outcomes", icon=":material/trophy:"),
]
NO_MODEL = {"outcomes"}  # pages that only read files: they do not wait for the sidebar's model and data

# Our own links, not Streamlit's list: each carries what every page shares (the scoring settings, the map's
# chosen records) and that page's own choices as it was last left, so a page switch is one history entry (the
# page then writes nothing more to the URL) and reopening a page shows it as it was.
page = st.navigation(PAGES, position="hidden")
st.sidebar.title("NAIT Studio")
nav = st.sidebar.container(key="nav")
try:
    if page.url_path not in NO_MODEL:
        if sidebar() is None:
            st.stop()
    elif "studio" in st.session_state:  # already loaded: keep the sidebar's setup in view (cheap, nothing reloads)
        sidebar()
    else:
        st.sidebar.caption("This page reads results files: no model or data is loaded for it.")
    with navigating():  # a page script run without this navigation runs this file first (studio/entry.py)
        page.run()
finally:  # drawn last, above the sidebar's form: the links carry the settings this run's page may have set
    urlstate.remember_choices(page.url_path, reads_data=page.url_path not in NO_MODEL)
    links = urlstate.page_links([p.url_path for p in PAGES])
    with nav:
        for p in PAGES:
            st.page_link(p, query_params=links[p.url_path])
