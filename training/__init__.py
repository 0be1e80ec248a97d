"""Desktop side of stylecast: the compact generator family and its training (needs torch)."""
