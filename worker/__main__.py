"""`python -m worker` is the same as the `storywatch` command."""

from worker.cli.main import main

raise SystemExit(main())
