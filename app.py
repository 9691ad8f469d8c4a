"""NAIT Studio: `streamlit run app.py`. The navigation table; the shared sidebar is `studio.session`."""
import streamlit as st

from studio.session import sidebar

st.set_page_config(page_title="NAIT Studio", page_icon="🧠", layout="wide")

PAGES = [
    st.Page("pages/data.py", title="Data & model", icon="📦", default=True),
    st.Page("pages/samples.py", title="Sample explorer", icon="🔎"),
    st.Page("pages/neurons.py", title="Neuron explorer", icon="🧬"),
    st.Page("pages/map.py", title="Overlap map", icon="🗺️"),
    st.Page("pages/select.py", title="Select & export", icon="✅"),
    st.Page("pages/transfer.py", title="Transfer", icon="🔀"),
]

page = st.navigation(PAGES)
st.sidebar.title("NAIT Studio")
if sidebar() is None:
    st.stop()
page.run()
