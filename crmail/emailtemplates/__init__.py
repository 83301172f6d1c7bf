"""Email templates (SPEC F3): shared or personal, with merge fields from a record and its sender."""
