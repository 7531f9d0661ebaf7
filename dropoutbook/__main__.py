"""``python -m dropoutbook install-kernel`` installs the book's Jupyter kernel; ``check`` compares."""

from .environment import main

raise SystemExit(main())
