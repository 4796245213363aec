"""``python -m neural_memory`` runs the command-line interface."""

from neural_memory.cli import main

raise SystemExit(main())
