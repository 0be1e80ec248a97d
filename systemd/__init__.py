"""The systemd unit and drop-ins, shipped as package data for `stylecastd install`."""
