"""`python -m chainsleuth` runs the command line."""

from chainsleuth.cli import main

main()
