import sys

from metaclip2.cli import main

sys.exit(main())
