"""chainsleuth: open-source Bitcoin forensics."""

__version__ = "0.1.0"
