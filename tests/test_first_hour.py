"""What a newcomer meets in the first hour (issue 27): the diagnosis in every CI format, the
notebook display of results, piped output that fits, the progress display, the smaller wordings."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gradcheck_cli.cli import app

from .test_reports import BAD_NET, parse_annotations

runner = CliRunner()
#: The diagnosis of BAD_NET's bias averaged over the batch of 5 (tests/buggy_layers.py).
SCALE = "≈ 0.2 × numeric = 1/N (N = 5, the batch size)"


@pytest.fixture(autouse=True)
def _not_in_github_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.fixture
def bad(write) -> Path:
    return write("bad.yaml", BAD_NET)


def gc(*args: object, env: dict[str, str] | None = None):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200", **(env or {})})


# -- the diagnosis travels ----------------------------------------------------------------------


def test_the_diagnosis_reaches_github_annotations_and_the_step_summary(
    tmp_path: Path, bad: Path
) -> None:
    summary = tmp_path / "summary.md"
    r = gc("run", bad, "--format", "github", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert r.exit_code == 1
    (error,) = [a for a in parse_annotations(r.stdout) if a[0] == "error"]
    lines = error[2].splitlines()
    assert lines[0].startswith("0.LinearBiasMean.b: 6 of 6 entries disagree")
    assert lines[1].startswith("diagnosis (scale): 0.LinearBiasMean.b " + SCALE)
    text = summary.read_text(encoding="utf-8")
    assert f"diagnosis (scale): 0.LinearBiasMean.b {SCALE}" in text
    assert text.index("diagnosis (scale)") < text.index("<details>")  # shown, not folded away


def test_the_diagnosis_reaches_the_junit_failure_message(tmp_path: Path, bad: Path) -> None:
    xml = tmp_path / "g.xml"
    assert gc("run", bad, "--junit-xml", xml).exit_code == 1
    (failure,) = ET.parse(xml).getroot().iter("failure")
    assert SCALE in failure.get("message", "")
    assert failure.get("message", "").startswith("6 of 6 entries disagree")
    assert (failure.text or "").startswith("diagnosis (scale): 0.LinearBiasMean.b " + SCALE)


def test_no_diagnosis_no_line(tmp_path: Path, write) -> None:
    """A tensor no fingerprint explains (a structural failure) carries no diagnosis line."""
    net = write("missing.yaml", BAD_NET.replace("LinearBiasMean", "LinearMissingGrad"))
    xml = tmp_path / "g.xml"
    r = gc("run", net, "--format", "github", "--junit-xml", xml)
    assert r.exit_code == 1 and "diagnosis (" not in r.stdout
    assert "diagnosis (" not in xml.read_text(encoding="utf-8")


def test_the_diagnosis_is_in_the_assertion_message() -> None:
    from gradcheck_cli.testing import assert_gradients
    from tests.buggy_layers import LinearBiasMean

    with pytest.raises(AssertionError) as info:
        assert_gradients(LinearBiasMean, shape=(5, 4), args={"out": 3})
    assert f"diagnosis (scale): 0.LinearBiasMean.b {SCALE}" in str(info.value)


# -- notebooks ----------------------------------------------------------------------------------


def test_a_result_displays_as_the_report_table_in_a_notebook() -> None:
    """What Jupyter calls for a cell's value: HTML holding the table, the verdicts, the
    diagnosis and the summary (no Jupyter needed to call it)."""
    from gradcheck_cli.testing import check
    from tests.buggy_layers import LinearBiasMean

    result = check(LinearBiasMean, shape=(5, 4), args={"out": 3})
    page = result._repr_html_()
    assert page.startswith("<pre") and "<html" not in page  # a fragment for the cell
    text = _plain(page)
    for needle in ("parameter", "rel err", "verdict", "0.LinearBiasMean.W", "pass", "FAIL",
                   f"0.LinearBiasMean.b {SCALE}", "1 of 3 gradients disagree"):  # fmt: skip
        assert needle in text, needle
    assert "color: #" in page  # coloured: the verdicts keep their styles


def test_a_suite_displays_each_report_and_the_summary(bad: Path) -> None:
    from gradcheck_cli.suite import run_suite

    suite = run_suite([bad, Path(__file__).parents[1] / "configs" / "seed_mlp.yaml"])
    text = _plain(suite._repr_html_())
    assert "summary" in text and "seed-mlp" in text and "0.LinearBiasMean.b" in text
    assert "1 of 2 configs do not pass" in text


def _plain(page: str) -> str:
    import html
    import re

    return html.unescape(re.sub(r"<[^>]+>", "", page))


# -- piped output -------------------------------------------------------------------------------

ROUGH = '''
import numpy as np


class Rough:
    """y = 2x + 1e-6·sin(1e17·x): nothing resolves its gradient (inconclusive; test_resolution.Rough
    says why the period must be below float64 spacing)."""

    row_independent = True

    def __init__(self):
        self.params, self.grads = {}, {}

    def forward(self, x):
        return 2.0 * x + 1e-6 * np.sin(1e17 * x)

    def backward(self, dout):
        return 2.0 * dout
'''


def piped(*args: object):
    """A command as in a pipe: not a terminal, no COLUMNS."""
    from typer.testing import CliRunner

    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": None})


def widest(text: str) -> int:
    from rich.cells import cell_len

    return max(cell_len(line.rstrip()) for line in text.splitlines())


def test_piped_list_fits_160_columns() -> None:
    r = piped("list")
    assert r.exit_code == 0 and widest(r.stdout) <= 160
    assert "sequence_cross_entropy" in r.stdout  # names are never folded


def test_a_piped_run_with_a_long_note_wraps_it_inside_its_column(write) -> None:
    plugin = write("rough.py", ROUGH)
    r = piped("layer", f"{plugin}:Rough", "--shape", "3x4")
    assert r.exit_code == 0, r.output
    assert re.search(r"inconclusive \(res \de-0\d\)", r.stdout)  # the verdict cell is whole
    assert widest(r.stdout) <= 160


def test_a_piped_replay_longer_than_160_columns_stays_on_one_line(tmp_path: Path) -> None:
    from .test_reports import BUGGY

    folder = tmp_path / ("a_long_project_folder_name_" * 6)
    folder.mkdir()
    plugin = folder / "buggy_layers.py"
    plugin.write_text(BUGGY.read_text(encoding="utf-8"), encoding="utf-8")
    r = piped("layer", f"{plugin}:LinearBiasMean", "--shape", "4x3", "--arg", "out=2")
    assert r.exit_code == 1, r.output
    (replay,) = [line for line in r.stdout.splitlines() if "replay:" in line]
    assert len(replay) > 160 and replay.rstrip().endswith("--mode full")
    assert widest("\n".join(ln for ln in r.stdout.splitlines() if "replay:" not in ln)) <= 160


# -- the progress display -----------------------------------------------------------------------


class Staged:
    """A progress callback that is also told the mode and the tensor (as the CLI's bar is)."""

    def __init__(self) -> None:
        self.stages: list[tuple[str, str]] = []

    def __call__(self, done: int, planned: int) -> None:
        pass

    def stage(self, mode: str, tensor: str) -> None:
        self.stages.append((mode, tensor))


def test_progress_is_told_the_mode_and_each_tensor() -> None:
    from gradcheck_cli import build_network, check_network, load_config

    net = build_network(load_config(Path(__file__).parents[1] / "configs" / "seed_mlp.yaml"))
    seen = Staged()
    check_network(net, progress=seen)
    assert seen.stages == [("full: every entry", name) for name in
                           ("input", "0.linear.W", "0.linear.b", "2.linear.W", "2.linear.b")]  # fmt: skip
    seen = Staged()
    check_network(net, progress=seen, mode="sample", samples=3)
    assert {m for m, _ in seen.stages} == {"sample: 3 entries + 2 probe(s) per tensor"}


def test_auto_says_its_decision_as_the_check_starts() -> None:
    from gradcheck_cli import build_network, check_network, load_config

    net = build_network(load_config(Path(__file__).parents[1] / "configs" / "seed_mlp.yaml"))
    seen = Staged()
    result = check_network(net, progress=seen, mode="auto", budget=60)
    mode, tensor = seen.stages[0]
    assert mode.startswith(f"auto → {result.mode}") and "operations)" in mode  # counted, not timed
    assert tensor == "input"


def test_the_bar_shows_the_stage() -> None:
    from gradcheck_cli.commands.delivery import Bar

    bar = Bar(enabled=True)
    bar.stage("full: every entry", "0.linear.W")
    bar.start -= 10  # shown once a check has run for a second
    try:
        bar(3, 10)
        assert bar.progress.tasks[0].description == "full: every entry · 0.linear.W"
        bar.stage("full: every entry", "0.linear.b")
        assert bar.progress.tasks[0].description == "full: every entry · 0.linear.b"
    finally:
        bar.close()


# -- smaller wordings ---------------------------------------------------------------------------


def test_minus_zero_prints_as_zero() -> None:
    from gradcheck_cli.report.text import value

    assert value(-0.0, ".5g") == "0" and value(0.0, ".9g") == "0"
    assert value(-1e-300, ".5g") == "-1e-300"  # a real negative keeps its sign
    from rich.console import Console

    from gradcheck_cli.report.tables import result_table, worst_table
    from gradcheck_cli.report.text import failure_report
    from gradcheck_cli.results import CheckResult, Entry, ParamResult

    e = Entry((0,), -0.0, 0.3, 0.3, 1e-9, status="fail", label="missing")
    p = ParamResult("b", (3,), False, 1.0, 0.3, 3, 1, (e,), verdict="fail")
    r = CheckResult("net", 0, "central", 1e-5, 1e-7, 0.0, "float64", 1.0, (p,))
    out = Console(width=200, record=True, file=__import__("io").StringIO())
    out.print(result_table(r), worst_table(p))
    for text in (out.export_text(), failure_report(r)):
        assert "-0 " not in text and " 0 " in text, text


def test_a_plain_function_is_named_as_itself_when_it_raises(write) -> None:
    fns = write("fns.py", (
        "def affine_forward(x, w, b):\n    raise ValueError('boom')\n\n\n"
        "def affine_backward(dout, cache):\n    return dout, dout, dout\n"
    ))  # fmt: skip
    r = gc("fn", f"{fns}:affine", "--shape", "x=4x3", "--shape", "w=3x2", "--shape", "b=2")
    assert r.exit_code == 2
    assert "affine_forward raised ValueError: boom" in r.output
    assert "affine_forward.forward" not in r.output


def test_labels_given_as_floats_get_an_integers_hint() -> None:
    fns = Path(__file__).parents[1] / "configs" / "functions" / "layers.py"
    r = gc("fn", f"{fns}:softmax_loss", "--shape", "x=5x10", "--shape", "y=5")
    assert r.exit_code == 2 and "softmax_loss raised IndexError" in r.output
    assert "hint: y is drawn as floats" in r.output and "--integers y=N" in r.output
    assert gc("fn", f"{fns}:softmax_loss", "--shape", "x=5x10", "--integers", "y=10").exit_code == 0


@pytest.mark.parametrize(
    ("where", "given", "meant"),
    [("target: {kind: class, classes: 3}", "class", "classes"),
     ("check: {method: centrl}", "centrl", "central")],
)  # fmt: skip
def test_a_misspelt_choice_gets_a_did_you_mean(write, where: str, given: str, meant: str) -> None:
    cfg = write(
        "c.yaml", f"input: {{shape: [4, 3]}}\n{where}\nlayers: [{{type: linear, out: 3}}]\n"
    )
    r = gc("validate", cfg)
    assert r.exit_code == 2 and f"got '{given}'" in r.output
    assert f"did you mean '{meant}'?" in r.output
