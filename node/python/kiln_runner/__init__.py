"""kiln's runner for Mage's Python blocks (started by @kiln/node's python host, one process per block run)."""
