"""What desktop and device share: errors, atomic writes, validation, CLI argument types, the
artifact contract and tensor layouts. Imports nothing else of stylecast, and only pydantic."""
