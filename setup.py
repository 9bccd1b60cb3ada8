"""Ship the dbt project inside the wheel, so that an installed `delta2sql` finds its models.

The dbt project stays at the repository's top level (`dbt_project.yml`, `models/`, ...), where
dbt users look for it. A wheel carries packages only, so the build copies the project into
`delta2sql/dbt_project/`. An editable install copies nothing: the package then finds the project
beside itself (`delta2sql.project.project_dir`). Everything else is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

DBT_PROJECT = ["dbt_project.yml", "models", "macros", "tests/dbt", "transpiled", "profiles/profiles.yml"]


class BuildWithDbtProject(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        destination = Path(self.build_lib) / "delta2sql" / "dbt_project"
        shutil.rmtree(destination, ignore_errors=True)  # a reused build/ must not keep deleted models
        for name in DBT_PROJECT:
            source, target = Path(name), destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copyfile(source, target)


setup(cmdclass={"build_py": BuildWithDbtProject})
