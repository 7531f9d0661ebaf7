"""``python -m dropoutbook.exercises SOLUTIONS_DIR STUDENT_DIR``: write the student copies."""

from .student import main

raise SystemExit(main())
