import sys

from hubstash.cli import main

sys.exit(main())
