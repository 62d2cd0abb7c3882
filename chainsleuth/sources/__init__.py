"""sources stage: raw blocks from Bitcoin Core, read from its blk*.dat files or over JSON-RPC."""
