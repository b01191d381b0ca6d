"""Selector for the time-decay core: the compiled ``_decay_c`` unless
``FASTREDIS_NO_EXTENSIONS=1`` is set or it cannot be imported, then ``_decay_py``.

Example::

    >>> from fastredis import _decay
    >>> _decay.increment(1.0, 0.0, 0.0, _decay.decay_rate(60.0))
    1.0
"""

import os

if os.environ.get("FASTREDIS_NO_EXTENSIONS"):
    from ._decay_py import *  # noqa: F401,F403
    from ._decay_py import __all__  # noqa: F401
    COMPILED = False
else:
    try:
        from ._decay_c import *  # noqa: F401,F403
        from ._decay_c import __all__  # noqa: F401
        COMPILED = True
    except ImportError:  # no compiler at install time: same results, slower
        from ._decay_py import *  # noqa: F401,F403
        from ._decay_py import __all__  # noqa: F401
        COMPILED = False
