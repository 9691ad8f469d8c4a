"""Sample explorer: search the pool and see why one sample scores as it does."""

from studio import samples_page
from studio.entry import through_app
from studio.session import show

if through_app():
    show(samples_page.render)
