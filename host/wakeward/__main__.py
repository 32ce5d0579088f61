import sys

from wakeward.cli import main

sys.exit(main())
