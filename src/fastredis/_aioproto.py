"""Selector for the multiplexed-connection protocol core: the compiled
``_aioproto_c``, or the pure-Python ``_aioproto_py`` when
``FASTREDIS_NO_EXTENSIONS=1`` or the compiled module cannot be imported.

Example::

    >>> from fastredis import _aioproto
    >>> _aioproto.IMPLEMENTATION in ("c", "py")
    True
"""

import os

if os.environ.get("FASTREDIS_NO_EXTENSIONS"):
    from ._aioproto_py import *  # noqa: F401,F403
    from ._aioproto_py import __all__

    IMPLEMENTATION = "py"
else:
    try:
        from ._aioproto_c import *  # noqa: F401,F403
        from ._aioproto_c import __all__  # type: ignore[no-redef]

        IMPLEMENTATION = "c"
    except ImportError:
        from ._aioproto_py import *  # noqa: F401,F403
        from ._aioproto_py import __all__  # type: ignore[no-redef]

        IMPLEMENTATION = "py"

# Same flag as the other core selectors (_resp, _window, _decay, _pipeline).
COMPILED = IMPLEMENTATION == "c"
