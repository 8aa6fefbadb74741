"""Stand-in for mage_ai.orchestration (kiln)."""
