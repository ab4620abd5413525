"""`python -m codelinkava.cli ...`, as the tests and worker processes run it."""

from __future__ import annotations

from .main import main

raise SystemExit(main())
