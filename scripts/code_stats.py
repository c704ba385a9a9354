"""Print the package's size and structure figures as JSON: file and function lines, import circles.

    python scripts/code_stats.py [PACKAGE_DIR]      # default: lam/
"""

import json
import sys
from pathlib import Path

from lam.devtools.code_stats import code_stats

root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "lam"
print(json.dumps(code_stats(root), indent=2))
