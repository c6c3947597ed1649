"""`python -m bot` is `ml-chatops`."""

import sys

from bot.cli import main

sys.exit(main())
