"""sleuth: an offline, command-line Amazon Detective for AWS log exports.

The library API is what the CLI calls; it is usable from Python:

    from sleuth import open_dataset, ingest, search, coverage
"""

__version__ = "0.1.0"

from sleuth.config import Config, load_config
from sleuth.timewindow import TimeWindow

__all__ = ["Config", "TimeWindow", "__version__", "load_config"]
