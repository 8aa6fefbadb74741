"""kiln's stand-in for the parts of mage_ai a block imports for orchestration; used only when the
real mage_ai package is not installed for the block's interpreter."""
__kiln_shim__ = True
