"""cases stage: investigations from a seized list of deposit addresses (issue 7, item 2)."""
