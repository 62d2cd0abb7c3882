"""cluster stage: addresses into wallets, with evidence for every merge."""
