"""Cluster pipeline routing: hash slots, per-node grouping in stack order,
encoding and reply scatter. Pure-Python twin of ``_cluster_c``.

``route`` walks the pending commands of a pipeline stack once. A command it
can place itself (a name in ``specs``, no options, str/bytes keys in one slot)
goes to the group that ``slot_group(slot)`` names (asked once per slot); any
other command goes where ``command_group(index)`` says. Group indexes address
``groups``, lists that receive the command indexes in stack order.

Example::

    >>> stack = [(("SET", "a", 1), ()), (("GET", "{a}x"), ()), (("PING",), ())]
    >>> groups = [[], []]
    >>> route(stack, [0, 1, 2], {"SET": 1, "GET": 1}, "utf-8", "strict",
    ...       lambda slot: 0, lambda i: 1, groups)
    True
    >>> groups
    [[0, 1], [2]]
    >>> slot_of(b"{user1}:a") == slot_of("user1")
    True
"""

from __future__ import annotations

from binascii import crc_hqx
from typing import Any, Callable, Dict, List, Optional, Sequence

__all__ = ["route", "slot_of", "slots_of", "encode_commands", "scatter"]

ONE_KEY = 1
ALL_KEYS = 2
SCRIPT_KEYS = 3


def slot_of(key: Any, encoding: str = "utf-8", errors: str = "strict") -> int:
    """The hash slot of a str or bytes key (``{tag}`` rule), or -1 for any
    other type."""
    if type(key) is str:
        raw = key.encode(encoding, errors)
    elif type(key) is bytes:
        raw = key
    else:
        return -1
    s = raw.find(b"{")
    if s >= 0:
        e = raw.find(b"}", s + 1)
        if e > s + 1:
            raw = raw[s + 1:e]
    return crc_hqx(raw, 0) & 16383


def slots_of(keys: List[Any], encoding: str = "utf-8", errors: str = "strict") -> List[int]:
    """``slot_of`` of every key of a list (-1 where the key is not str/bytes)."""
    return [slot_of(k, encoding, errors) for k in keys]


def _same_slot(keys: Sequence[Any], encoding: str, errors: str) -> int:
    if not keys:
        return -1
    slot = slot_of(keys[0], encoding, errors)
    if slot < 0:
        return -1
    for k in keys[1:]:
        if slot_of(k, encoding, errors) != slot:
            return -1
    return slot


def _command_slot(args: Any, spec: int, encoding: str, errors: str) -> int:
    if spec == ONE_KEY:
        return slot_of(args[1], encoding, errors)
    if spec == ALL_KEYS:
        return _same_slot(args[1:], encoding, errors)
    if spec == SCRIPT_KEYS and len(args) >= 3:
        n = args[2]
        if type(n) is not int:
            if type(n) not in (str, bytes) or not n.isdigit():
                return -1
            n = int(n)
        if n <= 0 or n > len(args) - 3:
            return -1
        return _same_slot(args[3:3 + n], encoding, errors)
    return -1


def route(
    stack: List[Any],
    pending: List[int],
    specs: Dict[Any, int],
    encoding: str,
    errors: str,
    slot_group: Callable[[int], int],
    command_group: Callable[[int], int],
    groups: List[List[int]],
    batches: Optional[Dict[Any, Any]] = None,
) -> bool:
    """Append each pending command index to its group (see the module
    docstring); False as soon as ``command_group`` returns -1 (nothing more
    is routed). ``batches`` maps a ``batch()`` stack entry to ``(start,
    slots)``: the slot of each of its rows (-1: ask ``command_group``)."""
    memo: Dict[int, int] = {}
    for i in pending:
        args, options = stack[i]
        slot = -1
        if type(args) is tuple:
            if len(args) >= 2 and not options:
                spec = specs.get(args[0])
                if spec is not None:
                    slot = _command_slot(args, spec, encoding, errors)
        elif batches:
            hit = batches.get(args)
            if hit is not None:
                if i < hit[0]:
                    raise IndexError(f"command {i} is before its batch")
                slot = hit[1][i - hit[0]]
        if slot >= 0:
            gid = memo.get(slot)
            if gid is None:
                gid = memo[slot] = slot_group(slot)
        else:
            gid = command_group(i)
        if gid < 0:
            return False
        groups[gid].append(i)
    return True


def encode_commands(command: Callable[[Any], Any], stack: List[Any], idxs: List[int]) -> None:
    """``command(args)`` for the arguments of each stack entry in ``idxs``."""
    for i in idxs:
        command(stack[i][0])


def scatter(results: List[Any], idxs: List[int], replies: List[Any]) -> None:
    """``results[idxs[k]] = replies[k]`` for every k (``len(idxs)`` replies)."""
    if len(replies) < len(idxs):
        raise ValueError("fewer replies than commands")
    for i, r in zip(idxs, replies):
        results[i] = r
