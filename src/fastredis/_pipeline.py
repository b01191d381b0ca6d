"""Selector for the pipeline reply core: compiled ``_pipeline_c``, or the
``_pipeline_py`` twin when ``FASTREDIS_NO_EXTENSIONS=1`` or the import fails.

Example::

    >>> from fastredis import _pipeline
    >>> _pipeline.COMPILED in (True, False)
    True
"""

import os

COMPILED = False
if not os.environ.get("FASTREDIS_NO_EXTENSIONS"):
    try:
        from ._pipeline_c import apply_callbacks  # noqa: F401

        COMPILED = True
    except ImportError:
        pass
if not COMPILED:
    from ._pipeline_py import apply_callbacks  # type: ignore[assignment]  # noqa: F401

__all__ = ["COMPILED", "apply_callbacks"]
