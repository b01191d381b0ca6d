"""Type stub for the compiled cluster routing core (same API as fastredis._cluster_py)."""

from typing import Any, Callable, Dict, List

def slot_of(key: Any, encoding: str = "utf-8", errors: str = "strict") -> int: ...
def route(
    stack: List[Any],
    pending: List[int],
    specs: Dict[Any, int],
    encoding: str,
    errors: str,
    slot_group: Callable[[int], int],
    command_group: Callable[[int], int],
    groups: List[List[int]],
) -> bool: ...
def encode_commands(command: Callable[[Any], Any], stack: List[Any], idxs: List[int]) -> None: ...
def scatter(results: List[Any], idxs: List[int], replies: List[Any]) -> None: ...
