"""Data & model: what is loaded, capture status, feature library."""
from studio import data_page
from studio.session import studio

data_page.render(studio())
