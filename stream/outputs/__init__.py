"""stylecast-sub outputs: one module per way a subscription leaves the program (browser,
recorder, window)."""
