"""Sample explorer: search the pool and see why one sample scores as it does."""
from studio import samples_page
from studio.session import show

show(samples_page.render)
