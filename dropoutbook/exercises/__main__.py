"""``python -m dropoutbook.exercises [--nbgrader] SOURCE... OUTPUT_DIR``: write student copies (or nbgrader versions)."""

from .student import main

raise SystemExit(main())
