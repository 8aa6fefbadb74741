"""Stand-in for mage_ai.orchestration.triggers (kiln)."""
