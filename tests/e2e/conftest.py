"""Browser tests skip on a machine without Debian's chromium, except where KARP_REQUIRE_BROWSER=1
(CI sets it): there a missing browser fails the run instead of hiding the suite."""
import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"


def pytest_collection_modifyitems(config, items):
    if os.environ.get("KARP_REQUIRE_BROWSER") == "1" and not Path(CHROMIUM).exists():
        raise pytest.UsageError(f"KARP_REQUIRE_BROWSER=1 but {CHROMIUM} is missing: "
                                "apt-get install chromium")
