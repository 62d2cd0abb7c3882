"""The small core every stage may import: script types, networks, errors."""
