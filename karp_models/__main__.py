"""`python -m karp_models ...`: see karp_models.cli."""
from karp_models.cli import main

raise SystemExit(main())
