"""``python -m softprompt``: the same as the ``softprompt`` command."""

from softprompt.cli.main import main

raise SystemExit(main())
