"""Transfer: the targets' selections compared."""
from studio import transfer_page
from studio.session import show

show(transfer_page.render)
