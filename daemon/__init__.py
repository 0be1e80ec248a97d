"""Device side of stylecast: camera -> engine -> ZeroMQ. Imports nothing from torch."""
