"""Signals other apps listen to (so this app never imports them).

`target_accepted(sender=Target, target=<Target>, reviewer=<User>)`: sent by `Target.accept` after the
transition succeeded (e.g. the pacs app sends the accepted mask to a PACS when the project asks for it).
"""

from django.dispatch import Signal

target_accepted = Signal()
