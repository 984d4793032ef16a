"""``ygg doctor``: checks the host a node runs on, and the node's config, and prints a
checklist with a fix for each problem (issue 19).

``host`` reads the machine (and changes nothing); ``kernel``, ``ports``, ``configcheck``
and ``peers`` turn what it reads (and what peers answer) into ``check.Check`` lines;
``labels`` reads and judges the kernel's address labels; ``command`` is ``ygg doctor``.
"""
