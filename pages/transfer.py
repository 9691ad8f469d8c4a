"""Transfer: the targets' selections compared."""

from studio import transfer_page
from studio.entry import through_app
from studio.session import show

if through_app():
    show(transfer_page.render)
