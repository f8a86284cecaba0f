import sys

from autotrace.cli import main

sys.exit(main())
