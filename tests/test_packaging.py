"""A built install (wheel, --user, pip install .) carries the registry and the suites inside the package."""

import os
import shutil
import subprocess
import sys

from conftest import REPO


def test_a_wheel_install_finds_its_registry_and_suites_and_one_without_says_so(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for name in ("fairbench", "registry", "suites"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "wheel"), str(source)],
        check=True,
        capture_output=True,
    )
    site = tmp_path / "site"
    wheel = next((tmp_path / "wheel").glob("fairbench-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, capture_output=True)
    assert (site / "fairbench" / "resources" / "registry" / "methods" / "dm.yaml").is_file()

    env = {**os.environ, "PYTHONPATH": str(site)}
    probe = (
        "import fairbench.core.paths as p, fairbench.run.config as c; "
        "print(p.__file__); print(p.data_home()); print(' '.join(c.suite_names()))"
    )
    proc = subprocess.run([sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    module, home, suites = proc.stdout.splitlines()
    assert module.startswith(str(site)) and home == str(site / "fairbench" / "resources")
    assert {"quickstart", "ci", "cmnist"} <= set(suites.split())

    shutil.rmtree(site / "fairbench" / "resources")
    proc = subprocess.run(
        [sys.executable, "-m", "fairbench", "list", "suites"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "this fairbench install lacks its registry/ and suites/ folders" in proc.stderr
    assert "choose from" not in proc.stderr
