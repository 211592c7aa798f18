"""The CI workflow parses, and every command it calls exists: a script, or a fairbench sub-command
whose options the parser accepts."""

import shlex

import yaml
from conftest import REPO

from fairbench.cli import build_parser

WORKFLOW = REPO / ".github" / "workflows" / "ci.yml"


def commands():
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    for job in jobs.values():
        for step in job["steps"]:
            for line in step.get("run", "").splitlines():
                yield shlex.split(line)


def test_workflow_parses_and_runs_the_tests_and_regress():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    assert any(step.get("uses", "").startswith("actions/upload-artifact") for step in steps)
    assert any("GITHUB_STEP_SUMMARY" in step.get("run", "") for step in steps)
    called = list(commands())
    assert ["bash", ".ci/run"] in called
    assert any(words[:3] == ["fairbench", "regress", "leaderboard/baselines/ci"] for words in called)


def test_every_command_the_workflow_calls_exists():
    parser = build_parser()
    for words in commands():
        if words[:1] == ["bash"]:
            assert (REPO / words[1]).is_file(), words
        if words[:3] == ["python", "-m", "pytest"]:
            assert (REPO / words[3]).is_dir(), words
        if words[:1] == ["fairbench"]:
            args, extras = parser.parse_known_args(words[1:])  # exits on an unknown command or option
            assert not [e for e in extras if e.startswith("-")], words
            assert args.handler is not None
    assert (REPO / "leaderboard" / "baselines" / "ci" / "results.jsonl").is_file()
