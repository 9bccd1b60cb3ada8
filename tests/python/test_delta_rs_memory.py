"""delta-rs is imported through delta2sql.delta_rs, which tells its allocator (jemalloc) to give
freed memory back within a second: `validate` reads a table with delta-rs and then goes on checking, and
jemalloc's default kept delta-rs's pages with the process meanwhile (1.3-1.5 GB on the
benchmark's wide_delta_rs table). jemalloc reads the setting when delta-rs first allocates, so
no module may import deltalake before it is set."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from delta2sql import delta_rs

PACKAGE = Path(delta_rs.__file__).parent
SETTING = "_RJEM_MALLOC_CONF"


def test_the_package_imports_deltalake_only_through_delta_rs():
    importers = []
    for module in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) else [])
            if any(name and name.split(".")[0] == "deltalake" for name in names):
                importers.append(module.name)
    assert importers == ["delta_rs.py"]


def run_importing(module: str, env: dict[str, str]) -> str:
    """The allocator setting the process holds once `module` has imported deltalake."""
    code = (f"import {module}, os, sys; assert 'deltalake' in sys.modules; "
            f"print(os.environ.get({SETTING!r}, ''))")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_delta_rs_is_told_to_give_memory_back_before_it_loads():
    env = {k: v for k, v in os.environ.items() if k != SETTING}
    for module in ("delta2sql.reference", "delta2sql.cli"):
        assert run_importing(module, env) == "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0"


def test_a_setting_of_the_users_wins():
    env = {**os.environ, SETTING: "narenas:2"}
    assert run_importing("delta2sql.reference", env) == "narenas:2"
