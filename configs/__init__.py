"""Config examples; the daemon's stylecast.toml ships as package data for `stylecastd install`."""
