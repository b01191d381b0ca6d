"""Selector for the sliding-window core: the compiled ``_window_c``, or the
pure-Python ``_window_py`` when ``FASTREDIS_NO_EXTENSIONS=1`` or the compiled
module cannot be imported.

Example::

    >>> from fastredis import _window
    >>> _window.IMPLEMENTATION in ("c", "py")
    True
    >>> _window.window_index(61.0, 60.0)
    1
"""

import os

if os.environ.get("FASTREDIS_NO_EXTENSIONS"):
    from ._window_py import *  # noqa: F401,F403
    from ._window_py import __all__

    IMPLEMENTATION = "py"
else:
    try:
        from ._window_c import *  # noqa: F401,F403
        from ._window_c import __all__

        IMPLEMENTATION = "c"
    except ImportError:
        from ._window_py import *  # noqa: F401,F403
        from ._window_py import __all__

        IMPLEMENTATION = "py"

# Same flag as the other core selectors (_resp, _decay, _pipeline).
COMPILED = IMPLEMENTATION == "c"
