"""`python -m cloudml.ingest`: raw ER-2 flights -> the unified HDF5 file (see cloudml.ingest.cli)."""

import sys

from cloudml.ingest.cli import main

sys.exit(main())
