"""The GitHub workflows are linted by actionlint as the first step of `make test` (the Makefile's
workflow-lint target): the committed ones pass, and a copy broken in any of the usual ways fails
the target, so a broken workflow fails `make test`. The agent workflow builds with the committed
Gradle wrapper, whose jar is the one android-agent/README.md records."""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "android-agent.yml"


def lint(*make_args: str) -> subprocess.CompletedProcess:
    # -o install: the venv is the one running this test; make test builds it before this target.
    return subprocess.run(["make", "--no-print-directory", "-o", "install", "workflow-lint", *make_args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_the_committed_workflows_pass_actionlint():
    done = lint()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "actionlint" in done.stdout and "android-agent.yml" in done.stdout  # it really ran, on this file


# (what is wrong, the text replaced, its replacement, what actionlint's message names)
BREAKS = [
    ("a job needing a job that does not exist", "    needs: build\n", "    needs: biuld\n", "biuld"),
    ("an expression reading a context that does not exist", "${{ secrets.MDM_PUBLISH_URL }}", "${{ secret.MDM_PUBLISH_URL }}", "secret"),
    ("a misspelt job key", "    timeout-minutes: 40\n", "    timeout-minute: 40\n", "timeout-minute"),
    ("an action input that does not exist", "          java-version: \"17\"\n", "          java-versoin: \"17\"\n", "java-versoin"),
    ("YAML that does not parse", "jobs:\n  build:\n", "jobs:\n  build:\n bad-indent: [\n", "yaml"),
]


@pytest.mark.parametrize("what, old, new, named", BREAKS, ids=[b[0] for b in BREAKS])
def test_a_broken_workflow_fails_the_lint_and_so_make_test(tmp_path, what, old, new, named):
    text = WORKFLOW.read_text()
    assert old in text, f"the workflow no longer holds {old!r}: pick another break for {what}"
    copy = tmp_path / ".github" / "workflows" / "android-agent.yml"
    copy.parent.mkdir(parents=True)
    copy.write_text(text)
    assert lint(f"WORKFLOW_FILES={copy}").returncode == 0  # the copy as it is passes where it lies

    copy.write_text(text.replace(old, new, 1))
    done = lint(f"WORKFLOW_FILES={copy}")
    assert done.returncode != 0, f"{what} passed the lint:\n{done.stdout}"
    assert named.lower() in done.stdout.lower(), done.stdout
    assert "Error" in done.stderr  # make reports the target failed


def test_make_test_lints_the_workflows_before_the_test_suites():
    plan = subprocess.run(["make", "--no-print-directory", "-n", "test"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert plan.returncode == 0, plan.stderr
    lines = plan.stdout.splitlines()
    linted = [i for i, line in enumerate(lines) if re.search(r"/actionlint\b", line)]
    suites = [i for i, line in enumerate(lines) if re.search(r"/pytest\b|JUnitCore", line)]
    assert linted and suites, plan.stdout
    assert linted[0] < min(suites)


def test_the_workflow_builds_with_the_committed_wrapper_whose_jar_is_the_recorded_one():
    import hashlib
    import os
    import zipfile

    import yaml

    agent = ROOT / "android-agent"
    runs = [step.get("run", "") for job in yaml.safe_load(WORKFLOW.read_text())["jobs"].values() for step in job["steps"]]
    gradle_runs = [line for run in runs for line in run.splitlines() if re.search(r"\bgradlew?\b", line)]
    assert gradle_runs and all(line.strip().startswith("./gradlew ") for line in gradle_runs), gradle_runs
    assert os.access(agent / "gradlew", os.X_OK)

    jar = agent / "gradle" / "wrapper" / "gradle-wrapper.jar"
    with zipfile.ZipFile(jar) as z:
        assert "org/gradle/wrapper/GradleWrapperMain.class" in z.namelist()
        assert "Main-Class: org.gradle.wrapper.GradleWrapperMain" in z.read("META-INF/MANIFEST.MF").decode()
    assert hashlib.sha256(jar.read_bytes()).hexdigest() in (agent / "README.md").read_text()  # its recorded origin
    properties = (agent / "gradle" / "wrapper" / "gradle-wrapper.properties").read_text()
    # AGP 8.5.x needs Gradle 8.7 or later.
    assert "com.android.application' version '8.5." in (agent / "build.gradle").read_text()
    assert re.search(r"^distributionUrl=https\\://services\.gradle\.org/distributions/gradle-8\.7-bin\.zip$", properties, re.M)
    assert re.search(r"^distributionSha256Sum=[0-9a-f]{64}$", properties, re.M)
