"""``python -m softprompt``: the same as the ``softprompt`` command."""

from softprompt.cli import main

raise SystemExit(main())
