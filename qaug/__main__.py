import sys

from qaug.cli import main

sys.exit(main())
