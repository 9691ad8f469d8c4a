"""NAIT Studio: `streamlit run app.py`. The navigation table; the shared sidebar is `studio.sidebar`.

The page scripts live in `app_pages/`, not `pages/`: a `pages/` folder makes Streamlit ignore st.navigation
and run page files directly (its older multipage mode), skipping this file's shared sidebar.
"""
import streamlit as st

from studio.sidebar import sidebar

st.set_page_config(page_title="NAIT Studio", page_icon=":material/neurology:", layout="wide")

PAGES = [
    st.Page("app_pages/data.py", title="Data & model", icon=":material/database:", default=True),
    st.Page("app_pages/samples.py", title="Sample explorer", icon=":material/search:"),
    st.Page("app_pages/neurons.py", title="Neuron explorer", icon=":material/neurology:"),
    st.Page("app_pages/map.py", title="Overlap map", icon=":material/scatter_plot:"),
    st.Page("app_pages/select.py", title="Select & export", icon=":material/checklist:"),
    st.Page("app_pages/transfer.py", title="Transfer", icon=":material/compare_arrows:"),
    st.Page("app_pages/outcomes.py", title="Outcomes", icon=":material/trophy:"),
]
NO_MODEL = {"outcomes"}  # pages that only read files: they do not wait for the sidebar's model and data

page = st.navigation(PAGES)
st.sidebar.title("NAIT Studio")
if page.url_path not in NO_MODEL:
    if sidebar() is None:
        st.stop()
elif "studio" in st.session_state:  # already loaded: keep the sidebar's setup in view (cheap, nothing reloads)
    sidebar()
else:
    st.sidebar.caption("This page reads results files: no model or data is loaded for it.")
page.run()
