"""Stand-in for mage_ai.io (kiln)."""
