"""Everything that works for any pixel-CSV digit competition."""
