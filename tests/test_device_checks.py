"""``benchmarks/device_checks.sh cpu --quick``: every goal's check runs with tiny sizes, so the
script the first GPU node runs cannot rot; and ``wheelhouse.sh`` names exactly the packages the
GPU image lacks."""

import json
import subprocess

from conftest import checkout_env

from fairbench.core.paths import SOURCE_TREE

ROOT = SOURCE_TREE


def test_device_checks_quick_runs_every_goal_and_writes_its_report(tmp_path):
    done = subprocess.run(
        [
            "bash",
            "benchmarks/device_checks.sh",
            "cpu",
            "--quick",
            "--wheels",
            str(tmp_path / "none"),
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=checkout_env(),
        timeout=300,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith(("PASS", "FAIL"))]
    assert done.returncode == 0, done.stdout + done.stderr
    assert [line.split(":")[0] for line in lines] == [
        "PASS goal 1 dm vs per-class loop",
        "PASS goal 2 cmnist-mini dm cell",
        "PASS goal 3 dm+wbary over dm",
        "PASS goal 4 ensemble vs sequential",
        "PASS goal 5 cells sharing a gpu",
        "PASS goal 6 distill.compile over eager",
        "PASS goal 7 compiled launches, cobra and wbary",
        "PASS goal 8 compiled launches, issue 20's limits",
    ]
    report = json.loads((tmp_path / "device_checks.json").read_text())
    assert report["quick"] and len(report["goals"]) == 8
    assert set(report["goals"]["1 dm vs per-class loop"]["detail"]) == {"dm", "dm+fairdd", "dm+cobra"}
    compiled = report["goals"]["6 distill.compile over eager"]["detail"]
    assert compiled["eager"]["launches"] > 0 and compiled["compiled"]["launches"] > 0
    captured = report["goals"]["7 compiled launches, cobra and wbary"]["detail"]
    assert set(captured) == {"dm+cobra", "dm+wbary"}
    limits = report["goals"]["8 compiled launches, issue 20's limits"]["detail"]
    assert set(limits) == {"dm", "dm+fairdd", "dm+cobra", "dm+wbary"}
    assert all(d["compiled_launches"] > 0 for d in limits.values())


def test_device_checks_refuses_an_unknown_option():
    done = subprocess.run(
        ["bash", "benchmarks/device_checks.sh", "cpu", "--fast"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 2 and "unknown option --fast" in done.stderr


def test_the_wheelhouse_fetches_exactly_what_the_gpu_image_lacks():
    script = (ROOT / "benchmarks" / "wheelhouse.sh").read_text()
    for package in ("pot>=0.9.6", "omegaconf", "antlr4-python3-runtime==4.9.3", "mlxtend", "submitit"):
        assert package in script
    assert "--only-binary=:all: --platform manylinux2014_x86_64" in script and "--python-version 3.12" in script
    assert "/.whl/" in (ROOT / ".gitignore").read_text().splitlines()
