"""Type stub for the compiled cluster routing core (same API as fastredis._cluster_py)."""

from typing import Any, Callable, Dict, List, Optional

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
    batches: Optional[Dict[Any, Any]] = None,
) -> bool: ...
def slots_of(keys: List[Any], encoding: str = "utf-8", errors: str = "strict") -> List[int]: ...
def encode_commands(command: Callable[[Any], Any], stack: List[Any], idxs: List[int]) -> None: ...
def scatter(results: List[Any], idxs: List[int], replies: List[Any]) -> None: ...
