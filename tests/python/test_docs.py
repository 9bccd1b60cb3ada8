"""Documentation generated from the models stays in step with them."""

import subprocess
import sys

from conftest import REPO


def test_catalog_doc_is_current():
    result = subprocess.run([sys.executable, "scripts/render_catalog_doc.py", "--check"], cwd=REPO)
    assert result.returncode == 0, "docs/catalog.md is stale: run python scripts/render_catalog_doc.py"
