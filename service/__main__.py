"""``python -m service`` is the ``songqueue`` command."""

from service.cli import main

raise SystemExit(main())
