import sys

from model_checks.cli import main

sys.exit(main())
