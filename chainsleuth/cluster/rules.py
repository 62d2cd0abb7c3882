"""The named rules of clustering: CoinJoin detectors, change heuristics, and merge policies.

Every merge the clusterer makes, and every transaction it refuses to merge, names one of these
rules, so an investigator can read why two addresses were linked and where the rule comes from.
Codes are stored on disk: append only, never renumber.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Rule:
    code: int
    name: str
    kind: str  # "merge", "coinjoin", "change", "annotation"
    confidence: float  # how often the rule is right when it fires (literature + our measurements)
    source: str
    rationale: str


RULES: tuple[Rule, ...] = (
    Rule(
        1,
        "multi_input",
        "merge",
        0.95,
        "Nakamoto 2008 §10; Meiklejohn et al., 'A Fistful of Bitcoins', IMC 2013",
        "All inputs of a transaction are signed by one wallet, unless it is a CoinJoin or "
        "PayJoin (which the CoinJoin rules exclude).",
    ),
    Rule(
        10,
        "whirlpool",
        "coinjoin",
        0.99,
        "Samourai Whirlpool docs (5-in/5-out at pool denominations 0.001/0.01/0.05/0.5 BTC); "
        "GraphSense's Whirlpool heuristic",
        "Equal outputs at a Whirlpool pool denomination, as many outputs as inputs (5 to 8).",
    ),
    Rule(
        11,
        "wasabi1",
        "coinjoin",
        0.98,
        "Wasabi Wallet 1.x docs (~0.1 BTC base denomination); Kappos et al., 'How to peel a "
        "million', USENIX Security 2022",
        "Ten or more equal outputs near 0.1 BTC, at least as many inputs, every input P2WPKH or "
        "P2TR (Wasabi takes no other coins), at most a quarter of the outputs that share a "
        "value paid to another type (denominations go to the clients' own segwit addresses).",
    ),
    Rule(
        12,
        "wabisabi",
        "coinjoin",
        0.97,
        "WabiSabi (Ficsór et al., 2021) and Wasabi 2.0 standard denominations",
        "Fifty or more inputs and outputs, most outputs sharing their value with another, "
        "every input P2WPKH or P2TR (the only coins a WabiSabi coordinator takes), at most a "
        "quarter of the outputs that share a value paid to another type.",
    ),
    Rule(
        13,
        "joinmarket",
        "coinjoin",
        0.9,
        "Möser & Böhme, 'Join Me on a Market for Anonymity', WEIS 2016; BlockSci is_coinjoin",
        "n >= 3 equal outputs plus at most n change outputs, from at least n distinct input "
        "addresses.",
    ),
    Rule(
        14,
        "equal_output",
        "coinjoin",
        0.8,
        "Generic equal-output CoinJoin rule (BlockSci is_possible_coinjoin; Goldfeder et al. 2018)",
        "Three or more equal outputs paid from at least as many distinct input addresses.",
    ),
    Rule(
        20,
        "fresh_address",
        "change",
        0.7,
        "Meiklejohn et al. 2013 (one-time change address); BlockSci ClientChangeAddressBehavior",
        "Exactly one output pays an address never seen before: wallets send change to a new "
        "address, payees are often reused addresses.",
    ),
    Rule(
        21,
        "script_type",
        "change",
        0.6,
        "BlockSci AddressType heuristic; Kappos et al. 2022",
        "All inputs share one script type and exactly one output has it: a wallet's change uses "
        "its own type.",
    ),
    Rule(
        22,
        "round_amount",
        "change",
        0.6,
        "BlockSci PowerOfTen heuristic; Androulaki et al., FC 2013",
        "Of two outputs exactly one is a round amount (a multiple of 0.0001 BTC): payments are "
        "round, change is what is left.",
    ),
    Rule(
        23,
        "optimal_change",
        "change",
        0.65,
        "Nick, 'Data-Driven De-Anonymization in Bitcoin', 2015; BlockSci OptimalChange",
        "Exactly one output is smaller than the smallest input; otherwise that input would have "
        "been unnecessary.",
    ),
    Rule(
        24,
        "reused_address",
        "annotation",
        0.0,
        "Meiklejohn et al. 2013 (counter-signal)",
        "A change candidate whose address was already used is not taken as change (veto).",
    ),
    Rule(
        25,
        "learned_change",
        "change",
        0.99,
        "Möser & Narayanan, 'Resurrecting Address Clustering in Bitcoin', FC 2022 (change "
        "labelled by the chain itself); chainsleuth cluster/learned.py",
        "A logistic regression trained on this chain's self-revealed change (outputs later "
        "spent together with the inputs' wallet) picks one fresh output; it fires when its "
        "probability clears a threshold set for 99.5% held-out precision and the runner-up is "
        "far behind. Features include how the output is spent within a few blocks.",
    ),
    Rule(
        30,
        "payjoin_suspect",
        "annotation",
        0.3,
        "BIP78 PayJoin; Ghesmati et al., 'Unnecessary Input Heuristics & PayJoin', 2022",
        "Two inputs, two outputs, one output larger than every input: the receiver may have "
        "contributed an input. Marked, merged only under the multi-input rule's policy setting.",
    ),
)
BY_NAME: dict[str, Rule] = {r.name: r for r in RULES}
# Bumped whenever a rule decides differently on the same chain (a saved clustering made by
# other rules is then rebuilt, not extended: its past flags and merges would be stale).
# 2: `equal_output` reads script types, `wasabi1` and `wabisabi` their inputs' (issue 11,
#    docs/clustering.md).
# 3: `wasabi1` and `wabisabi` read the script types of the outputs that share a value too
#    (issue 11, docs/clustering.md).
RULES_VERSION = 3
BY_CODE: dict[int, Rule] = {r.code: r for r in RULES}

# Bit positions of the change rules in per-tx vote masks (numba kernels use these ints).
CHANGE_BITS: dict[str, int] = {
    "fresh_address": 1,
    "script_type": 2,
    "round_amount": 4,
    "optimal_change": 8,
    "learned_change": 16,  # decided in learned.py, not by a vote in analyze_txs
}
LEARNED = "learned_change"


@dataclass(frozen=True)
class Policy:
    """Which rules may merge clusters; the rest only annotate.

    A change output is merged with the inputs when the rules in `change_rules` that fire agree
    on it, at least `min_change_votes` of them fire, the votes include every rule listed in
    `change_required` and at least one of `change_required_any` (when given), and no enabled
    rule points at another output. Where another output pays a service's hot address (one that
    already spent in a batch), one of `hot_payee_needs` must vote too (when given). Rules in `veto_rules`
    never count as a vote but block a merge when they point at another output.
    """

    name: str
    multi_input: bool = True
    change_rules: tuple[str, ...] = ()
    change_required: tuple[str, ...] = ()
    min_change_votes: int = 1
    veto_rules: tuple[str, ...] = ()
    change_required_any: tuple[str, ...] = ()
    hot_payee_needs: tuple[str, ...] = ()  # one of these votes when another output pays a hot
    learned_needs: tuple[str, ...] = ()  # one of these agrees with a learned pick (gate)
    merge_payjoin_suspects: bool = True
    large_cluster: int = 1000  # super-cluster guard: clusters this big are "large"
    growth_factor: int = 100  # quarantine a tx that grows a cluster this many times over
    description: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def change_mask(self) -> int:
        """Bits of the voting change rules (the learned rule is decided apart)."""
        mask = 0
        for rule in self.change_rules:
            if rule != LEARNED:
                mask |= CHANGE_BITS[rule]
        return mask

    def veto_mask(self) -> int:
        """Bits of the rules that only block (they never count as a vote)."""
        mask = 0
        for rule in self.veto_rules:
            mask |= CHANGE_BITS[rule]
        return mask

    def hot_mask(self) -> int:
        """Rules of which one must vote where another output pays a service's hot address."""
        mask = 0
        for rule in self.hot_payee_needs:
            mask |= CHANGE_BITS[rule]
        return mask

    def learned_mask(self) -> int:
        """Rules of which one must agree with a learned change pick (0: not gated)."""
        mask = 0
        for rule in self.learned_needs:
            mask |= CHANGE_BITS[rule]
        return mask

    def any_mask(self) -> int:
        """Bits of the rules of which at least one must vote (0: no such condition)."""
        mask = 0
        for rule in self.change_required_any:
            mask |= CHANGE_BITS[rule]
        return mask

    def required_mask(self) -> int:
        mask = 0
        for rule in self.change_required:
            if rule != LEARNED:
                mask |= CHANGE_BITS[rule]
        return mask

    def change_rule(self) -> tuple[int, int, int, int, int, int]:
        """What `kernels.choose_change` takes as `rule`: (change_mask, veto_mask,
        required_mask, any_mask, min_change_votes, hot_mask)."""
        return (
            self.change_mask(),
            self.veto_mask(),
            self.required_mask(),
            self.any_mask(),
            self.min_change_votes,
            self.hot_mask(),
        )

    @property
    def learned(self) -> bool:
        """Whether the learned change classifier (rule 25) may merge."""
        return LEARNED in self.change_rules


POLICIES: dict[str, Policy] = {
    p.name: p
    for p in (
        # Two rules that read only the addresses (fresh address, script type) agree on the wrong
        # output when a service pays from a deposit address and returns its change to a reused
        # hot address of another script type (an exchange forwarding a deposit to a buyer).
        # Where another output pays an address that already spent in a batch (a service's hot
        # address), one vote must read the values (docs/clustering.md).
        Policy(
            "conservative",
            change_rules=("fresh_address", "script_type", "optimal_change", "round_amount"),
            hot_payee_needs=("optimal_change", "round_amount"),
            min_change_votes=2,
            description="Default. Multi-input, plus change when two independent change rules "
            "agree on the same output, none points elsewhere, and the change address is new; "
            "where another output pays a service's hot address (one that spent in a batch "
            "before), one of the two must be round amount or optimal change. Precision first.",
        ),
        Policy(
            "value_vote",
            change_rules=("fresh_address", "script_type", "optimal_change", "round_amount"),
            change_required_any=("optimal_change", "round_amount"),
            min_change_votes=2,
            description="Two agreeing change rules, one of them round amount or optimal change, "
            "always (for measurement).",
        ),
        Policy(
            "conservative_fresh",
            change_rules=("fresh_address", "script_type", "optimal_change", "round_amount"),
            min_change_votes=2,
            description="The default until issue 11: any two agreeing rules, fresh address and "
            "script type alone included (for measurement).",
        ),
        Policy(
            "strict",
            change_rules=("script_type", "optimal_change", "round_amount"),
            veto_rules=("fresh_address",),
            min_change_votes=2,
            description="Two of script type, round amount and optimal change agree; fresh "
            "address only vetoes (for measurement).",
        ),
        Policy("multi_input", description="Common-input-ownership only."),
        Policy(
            "fresh_address",
            change_rules=("fresh_address",),
            description="Multi-input + fresh-address change alone (for measurement).",
        ),
        Policy(
            "script_type",
            change_rules=("script_type",),
            description="Multi-input + script-type change alone (for measurement).",
        ),
        Policy(
            "round_amount",
            change_rules=("round_amount",),
            description="Multi-input + round-amount change alone (for measurement).",
        ),
        Policy(
            "optimal_change",
            change_rules=("optimal_change",),
            description="Multi-input + optimal-change alone (for measurement).",
        ),
        Policy(
            "learned",
            change_rules=(LEARNED,),
            description="Multi-input + the change classifier trained on this chain alone.",
        ),
        Policy(
            "conservative_learned",
            change_rules=(
                "fresh_address",
                "script_type",
                "optimal_change",
                "round_amount",
                LEARNED,
            ),
            hot_payee_needs=("optimal_change", "round_amount"),
            learned_needs=("optimal_change", "round_amount"),
            min_change_votes=2,
            description="Conservative, plus the change classifier where no two rules agree, "
            "gated: round amount or optimal change picks the same output, no rule another.",
        ),
        Policy(
            "aggressive",
            change_rules=("fresh_address", "script_type", "optimal_change", "round_amount"),
            min_change_votes=1,
            description="Multi-input + any change rule that fires uncontradicted. Recall first.",
        ),
    )
}
