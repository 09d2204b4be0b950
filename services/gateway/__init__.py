"""The public gateway: auth, upload validation, orchestration, storage and history."""
