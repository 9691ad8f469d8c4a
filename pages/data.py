"""Data & model: what is loaded, capture status, feature library."""
from studio import data_page
from studio.session import show

show(data_page.render)
