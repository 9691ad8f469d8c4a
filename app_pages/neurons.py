"""Neuron explorer: one neuron in candidates and targets."""
from studio import neurons_page
from studio.session import studio

neurons_page.render(studio())
