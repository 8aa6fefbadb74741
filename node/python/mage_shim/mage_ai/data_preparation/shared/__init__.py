"""Stand-in for mage_ai.data_preparation.shared (kiln)."""
