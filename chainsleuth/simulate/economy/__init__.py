"""The simulated economy: who owns what, and the transactions they make, block by block.

Forensic heuristics (clustering, change detection, CoinJoin detection, tracing) can only be
scored against ground truth, so this module plays an economy modelled on the Welcome to Video
case and on how wallets behave, and remembers who owns every address:

- exchanges: a fresh deposit address per deposit, periodic sweeps of deposits into the hot wallet
  (many inputs), batched withdrawals with change back to the exchange, hot/cold moves (P2WSH 2-of-3);
- mining pools: coinbase to a reused address, matured (100 blocks) coinbases paid out in batches
  to miners (who reuse one address) and to exchange deposits;
- customers of the exchanges, each with a preferred script type, wallet software (locktime,
  sequence, low-R signatures) and change habit (fresh, reused, Core's "match the payment");
- the service: one deposit address per registered user, most never paid; paying users fund their
  payment from an exchange withdrawal directly, over hops of their own wallet, along a peel chain,
  or through a CoinJoin (Whirlpool, Wasabi 1.x, JoinMarket); the service sweeps deposits and its
  administrator cashes out to exchange deposit addresses;
- background users, merchants, miners, P2WSH multisig wallets and privacy users, paying each other
  and the exchanges, with OP_RETURN outputs, so that most transactions have nothing to do with the
  case.

`chainsleuth.simulate.run` drives it: `World.step(height, time)` returns the block's transactions
(spends always after the outputs they spend), the chain code adds the coinbase, and
`World.credit_coinbase` books it. Everything random comes from generators seeded by the world's
seed, and iteration is over lists only, so a seed always gives the same world.

One module per actor. `World` is one object (every actor draws from the same generators in a
fixed order, which is what keeps a seed's world byte-identical), built as a chain of classes,
each adding one actor's methods on top of what it uses:

- `model`: constants, scales, and the actors' plain state (wallets, exchanges, requests, pools);
- `base.WorldBase`: the world's state, its population, addresses and fee rates, the plan schedule;
- `transactions.Transactions`: coin selection and `pay()`, which every actor builds on;
- `exchanges.Exchanges`: deposit sweeps, batched withdrawals, forwards, hot/cold moves;
- `mining.Mining`: the pools, their coinbases and payouts to miners;
- `background.Background`: everyone else buying, paying, selling;
- `coinjoins.CoinJoins`: Whirlpool, Wasabi 1.x and JoinMarket;
- `service.Service`: the service's sweeps and its administrator's cash-outs;
- `payers.Payers`: the service's paying users and the trails that fund their payments;
- `world.World`: the block loop, `step()`, calling each actor in order.
"""
