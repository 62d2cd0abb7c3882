"""Validate one tag (after header inheritance) and add it to columns: the rules of every import.

TagPacks, CSV files and `chainsleuth tags add` all end here, so a tag is checked the same way
whatever its origin: the currency decides whether it is a Bitcoin tag at all (others are
skipped, counted); a Bitcoin tag needs an address that decodes for the store's network, a label,
a source and a confidence of the taxonomy, and its category, abuse, concepts and tag type must be
taxonomy ids. Every failed check is a `Problem` naming the line of the offending field (the
header line when the value was inherited). Unknown actors are warnings: the tag is kept and the
actor id stays as written, so importing the ActorPack later resolves it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from chainsleuth.core.address import AddressError, base58check_decode, bech32_decode, decode_address
from chainsleuth.core.network import NETWORKS
from chainsleuth.core.script_types import ScriptType
from chainsleuth.parse.address_kernels import decode_addresses
from chainsleuth.tags.model import TAG_SCHEMA, Problem
from chainsleuth.tags.taxonomy import Taxonomy

__all__ = ["AddressCheck", "TagColumns", "check_address", "tag_id_of"]

#: the fields the TagPack schema declares for a tag (taxonomies/graphsense/tagpack_schema.yaml)
TAG_FIELDS = frozenset(
    (
        "label",
        "source",
        "currency",
        "network",
        "context",
        "confidence",
        "is_cluster_definer",
        "lastmod",
        "category",
        "abuse",
        "address",
        "tx_hash",
        "actor",
        "concepts",
        "tag_type",
        "is_public",
    )
)
#: header-only fields
HEADER_FIELDS = frozenset(("title", "creator", "description", "owner", "is_public", "tags"))

_TEXT_FIELDS = ("label", "source", "actor", "category", "abuse", "confidence", "tag_type")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([Tt ].*)?$")

# Version bytes of other chains' base58check addresses, to say what a non-Bitcoin address is.
_OTHER_CHAINS = {
    0x41: "Tron",
    0x30: "Litecoin",
    0x32: "Litecoin",
    0x1E: "Dogecoin",
    0x16: "Dogecoin",
    0x4C: "Dash",
    0x10: "Dash",
    0x17: "Namecoin",
    0x34: "Namecoin",
}
_OTHER_HRPS = {"ltc": "Litecoin", "tltc": "Litecoin", "doge": "Dogecoin", "grs": "Groestlcoin"}
_ETH = re.compile(r"^0x[0-9a-fA-F]{40}$")
_KIND_NAMES = {int(k): str(k) for k in ScriptType}
# below this many tags `finish` checks addresses one by one (no numba kernel to load)
_BATCH_MIN = 2_000
# columns that are the same for every tag of a pack are built once in `finish`
_CONSTANT_COLUMNS = ("tagpack", "origin", "created_at", "currency", "network", "pack_file")
_ROW_COLUMNS = tuple(n for n in TAG_SCHEMA.names if n not in _CONSTANT_COLUMNS)


def _repeat(value: str, n: int) -> pa.Array:
    """A string column holding `value` n times (built in C++, not from a Python list)."""
    indices = pa.array(np.zeros(n, np.int32))
    return pa.DictionaryArray.from_arrays(indices, pa.array([value], pa.string())).cast(pa.string())


def tag_id_of(tagpack: str, address: str, label: str, source: str, actor: str | None) -> str:
    """The stable id of a tag: same pack, address, label, source and actor -> same id."""
    key = "\x1f".join((tagpack, address, label, source, actor or ""))
    return hashlib.blake2b(key.encode(), digest_size=8).hexdigest()


class AddressCheck:
    """The result of checking an address: its key or why it is not a Bitcoin address."""

    __slots__ = ("code", "kind", "message", "payload")

    def __init__(
        self, kind: ScriptType | None, payload: bytes, code: str | None, message: str
    ) -> None:
        self.kind = kind
        self.payload = payload
        self.code = code  # None when valid
        self.message = message


def _non_btc_reason(address: str) -> str | None:
    """Why `address` looks like another chain's address (None when it is just malformed)."""
    if _ETH.match(address):
        return "an Ethereum-style (0x…) address"
    if ":" in address:
        return f"a {address.split(':', 1)[0]}: address"
    try:
        raw = base58check_decode(address) if len(address) <= 60 else b""
    except AddressError:
        raw = b""
    if raw:
        chain = _OTHER_CHAINS.get(raw[0])
        what = f"a {chain} address" if chain else "a base58check string"
        return f"{what} (version byte 0x{raw[0]:02x}, which no Bitcoin network uses)"
    try:
        hrp, _, _ = bech32_decode(address)
    except AddressError:
        return None
    chain = _OTHER_HRPS.get(hrp)
    return f"a {chain or 'non-Bitcoin'} bech32 address (prefix {hrp!r})"


def check_address(address: str, network: str) -> AddressCheck:
    """Decode `address` for `network` ("main", "test", ...): key, or a code and a message.

    Codes: `malformed_address` (no valid encoding), `non_btc_address` (a valid address of
    another chain, e.g. a Tron `T…` address), `wrong_network` (a Bitcoin address of another
    network, e.g. testnet under a mainnet store).
    """
    try:
        kind, payload, networks = decode_address(address)
    except AddressError as e:
        why = _non_btc_reason(address)
        if why is not None:
            return AddressCheck(
                None, b"", "non_btc_address", f"{address!r} is {why}, not a Bitcoin address"
            )
        return AddressCheck(None, b"", "malformed_address", f"malformed address: {e}")
    if network not in networks:
        return AddressCheck(
            None,
            b"",
            "wrong_network",
            f"{address!r} is a Bitcoin address of {'/'.join(networks)}, not of {network}",
        )
    return AddressCheck(kind, payload, None, "")


class TagColumns:
    """Valid tags accumulated as columns (fast to turn into an Arrow table), plus problems.

    `add(fields, ...)` validates one tag whose inherited fields are already merged in and
    either appends a row or records problems; it returns True when the tag was kept.
    """

    def __init__(
        self,
        *,
        tagpack: str,
        origin: str,
        file: str,
        network: str,
        taxonomy: Taxonomy,
        known_actors: frozenset[str] | set[str],
        created_at: dt.datetime,
        created_by: str | None,
    ) -> None:
        self.tagpack = tagpack
        self.origin = origin
        self.file = file
        self.network = network
        self.taxonomy = taxonomy
        self.known_actors = known_actors
        self.created_at = created_at
        self.created_by = created_by
        self.cols: dict[str, list[Any]] = {name: [] for name in _ROW_COLUMNS}
        self.problems: list[Problem] = []
        self.invalid = 0
        self.duplicates = 0
        self.skipped: dict[str, int] = {}
        self._seen: set[str] = set()
        self._warned: set[tuple[str, str]] = set()  # (code, value): warn once per pack
        self._concepts = taxonomy.concepts
        self._confidence = taxonomy.confidence
        self._address_lines: list[int] = []
        self._table: pa.Table | None = None

    def _problem(self, line: int, code: str, message: str, severity: str = "error") -> None:
        self.problems.append(Problem(self.file, line, code, message, severity))

    def warn_once(self, line: int, code: str, value: str, message: str) -> None:
        if (code, value) not in self._warned:
            self._warned.add((code, value))
            self._problem(line, code, message, "warning")

    def add(self, t: dict[str, Any], tag_line: int, line_of: Callable[[str], int]) -> bool:
        """Validate tag `t` (fields merged) starting at `tag_line`; `line_of(field)` locates one."""
        # 1. Bitcoin or not: `network` (newer packs) or `currency` says which chain.
        chain = t.get("network")
        if chain is None:
            chain = t.get("currency")
        if chain is None:
            self.invalid += 1
            self._problem(tag_line, "missing_currency", "the tag has no currency (or network)")
            return False
        if not isinstance(chain, str) or chain.strip().upper() != "BTC":
            self.skipped["non_btc"] = self.skipped.get("non_btc", 0) + 1
            return False
        address = t.get("address")
        if address is None:
            if t.get("tx_hash") is not None:
                self.skipped["tx_tag"] = self.skipped.get("tx_tag", 0) + 1
                return False
            self.invalid += 1
            self._problem(tag_line, "missing_address", "the tag has neither address nor tx_hash")
            return False
        errors = 0
        # 2. field types: text fields must be scalars
        mistyped: set[str] = set()
        for name in _TEXT_FIELDS:
            value = t.get(name)
            if value is not None and not isinstance(value, str):
                errors += 1
                mistyped.add(name)
                self._problem(
                    line_of(name),
                    "bad_field_type",
                    f"{name} must be text, not {type(value).__name__}",
                )
                t = {**t, name: None}
        if not isinstance(address, str):
            self.invalid += 1
            self._problem(line_of("address"), "bad_field_type", "address must be text")
            return False
        address = address.strip()
        label = t.get("label")
        if (label is None or not label.strip()) and "label" not in mistyped:
            errors += 1
            self._problem(tag_line, "missing_label", "the tag has no label")
        source = t.get("source")
        if (source is None or not source.strip()) and "source" not in mistyped:
            errors += 1
            self._problem(tag_line, "missing_source", "the tag has no source")
        confidence = t.get("confidence")
        if confidence is None and "confidence" not in mistyped:
            errors += 1
            self._problem(
                tag_line,
                "missing_confidence",
                "the tag has no confidence (mandatory in the TagPack schema) and its pack "
                "header gives none",
            )
        elif confidence is not None and confidence not in self._confidence:
            errors += 1
            self._problem(
                line_of("confidence"),
                "unknown_confidence",
                f"confidence {confidence!r} is not in the confidence taxonomy",
            )
        for name in ("category", "abuse"):
            value = t.get(name)
            if value is not None and value not in self._concepts:
                errors += 1
                self._problem(
                    line_of(name),
                    f"unknown_{name}",
                    f"{name} {value!r} is not a concept of the taxonomy",
                )
        concepts = t.get("concepts")
        if concepts is not None:
            if not isinstance(concepts, list) or not all(isinstance(c, str) for c in concepts):
                errors += 1
                self._problem(line_of("concepts"), "bad_field_type", "concepts must be a list")
                concepts = None
            else:
                for c in concepts:
                    if c not in self._concepts:
                        errors += 1
                        self._problem(
                            line_of("concepts"),
                            "unknown_concept",
                            f"concept {c!r} is not a concept of the taxonomy",
                        )
        tag_type = t.get("tag_type")
        if tag_type is not None and tag_type not in self.taxonomy.tag_types:
            errors += 1
            self._problem(
                line_of("tag_type"), "unknown_tag_type", f"tag_type {tag_type!r} is not known"
            )
        flags = {}
        for name in ("is_public", "is_cluster_definer"):
            value = t.get(name)
            if value is not None and not isinstance(value, bool):
                errors += 1
                self._problem(line_of(name), "bad_field_type", f"{name} must be true or false")
                value = None
            flags[name] = value
        lastmod = t.get("lastmod")
        if lastmod is not None:
            lastmod = str(lastmod)
            if not _DATE.match(lastmod):
                errors += 1
                self._problem(
                    line_of("lastmod"), "bad_lastmod", f"lastmod {lastmod!r} is not a date"
                )
        if errors:
            # the tag is invalid anyway; check its address now so every reason is listed
            check = check_address(address, self.network)
            if check.code is not None:
                self._problem(line_of("address"), check.code, check.message)
            self.invalid += 1
            return False
        assert label is not None and source is not None and confidence is not None
        actor = t.get("actor")
        if actor is not None and actor not in self.known_actors:
            self.warn_once(
                line_of("actor"),
                "unknown_actor",
                actor,
                f"actor {actor!r} is defined by no imported ActorPack (kept as written)",
            )
        label = label.strip()
        tag_id = tag_id_of(self.tagpack, address, label, source, actor)
        if tag_id in self._seen:
            self.duplicates += 1
            self._problem(
                tag_line,
                "duplicate_tag",
                f"the same tag ({address}, {label!r}) appears earlier in this file; kept once",
                "warning",
            )
            return False
        self._seen.add(tag_id)
        context = t.get("context")
        if context is not None and not isinstance(context, str):
            context = json.dumps(context, sort_keys=True, default=str)
        c = self.cols
        c["tag_id"].append(tag_id)
        c["address"].append(address)
        c["label"].append(label)
        c["category"].append(t.get("category"))
        c["abuse"].append(t.get("abuse"))
        c["actor"].append(actor)
        c["confidence"].append(confidence)
        c["confidence_level"].append(self._confidence[confidence].level)
        c["source"].append(source)
        c["created_by"].append(t.get("creator") or self.created_by)
        c["lastmod"].append(lastmod)
        c["is_public"].append(bool(flags["is_public"]))
        c["is_cluster_definer"].append(flags["is_cluster_definer"])
        c["context"].append(context)
        c["tag_type"].append(tag_type)
        c["concepts"].append(concepts)
        c["address_type"].append(None)  # filled in by `finish`, which checks the addresses
        c["address_key"].append(None)
        c["pack_line"].append(tag_line)
        self._address_lines.append(line_of("address"))
        return True

    def __len__(self) -> int:
        return len(self.cols["tag_id"]) if self._table is None else self._table.num_rows

    def finish(self) -> None:
        """Check the addresses of the kept tags in one batch; drop (and report) the bad ones.

        Until this runs a kept tag has passed every check but its address; `table` calls it.
        """
        if self._table is not None:
            return
        addresses = self.cols["address"]
        if len(addresses) >= _BATCH_MIN:
            kinds, payloads, nets = decode_addresses(addresses)
        else:  # a few tags (`tags add`): not worth loading the numba kernel
            kinds = np.full(len(addresses), -1, np.int64)
            payloads, nets = [b""] * len(addresses), np.zeros(len(addresses), np.int64)
        want = 1 << NETWORKS[self.network].code
        keep = np.ones(len(addresses), bool)
        types = self.cols["address_type"]
        keys = self.cols["address_key"]
        for i in range(len(addresses)):
            if kinds[i] >= 0 and nets[i] & want:
                kind = int(kinds[i])
                types[i] = _KIND_NAMES[kind]
                keys[i] = bytes((kind,)) + payloads[i]
                continue
            check = check_address(addresses[i], self.network)  # the exact verdict and message
            if check.code is None:
                assert check.kind is not None
                types[i] = str(check.kind)
                keys[i] = bytes((int(check.kind),)) + check.payload
                continue
            keep[i] = False
            self.invalid += 1
            self._problem(self._address_lines[i], check.code, check.message)
        n = len(addresses)
        constants = {
            "tagpack": self.tagpack,
            "origin": self.origin,
            "currency": "BTC",
            "network": self.network,
            "pack_file": self.file,
        }
        arrays = {name: _repeat(value, n) for name, value in constants.items()}
        arrays["created_at"] = pa.array(
            np.full(n, np.datetime64(self.created_at.replace(tzinfo=None), "ms")),
            pa.timestamp("ms", tz="UTC"),
        )
        for name in _ROW_COLUMNS:
            arrays[name] = pa.array(self.cols[name], TAG_SCHEMA.field(name).type)
        table = pa.table([arrays[name] for name in TAG_SCHEMA.names], schema=TAG_SCHEMA)
        if not keep.all():
            table = table.filter(pa.array(keep))
        self._table = table.sort_by([("address", "ascending"), ("tag_id", "ascending")])
        self.cols = {name: [] for name in _ROW_COLUMNS}
        self.problems.sort(key=lambda p: p.line)

    def table(self) -> pa.Table:
        """The kept tags as an Arrow table in TAG_SCHEMA, sorted by address then tag id."""
        self.finish()
        assert self._table is not None
        return self._table
