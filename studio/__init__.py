"""NAIT Studio's Streamlit front end: the shared session (sidebar), Plotly charts and one module per page.

Pages in `pages/` stay thin: they fetch the session and call their module's `render`.
"""
