"""Where the declarative registry and the suite files live.

They sit at the top of the repository (an editable install reads them in place, so an edited suite
takes effect at once); a regular install copies them under ``<prefix>/share/fairbench``.
"""

import sys
from pathlib import Path


def _data_home() -> Path:
    source_tree = Path(__file__).resolve().parent.parent
    if (source_tree / "registry").is_dir():
        return source_tree
    return Path(sys.prefix) / "share" / "fairbench"


DATA_HOME = _data_home()
REGISTRY_DIR = DATA_HOME / "registry"
SUITES_DIR = DATA_HOME / "suites"
