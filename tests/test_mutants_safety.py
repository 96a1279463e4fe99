"""Safety pinned by behaviour (issue 28): an output never replaces an input, however it is
named; writes are atomic; a name cannot drive the terminal; a config names no code under
--no-plugins and sets nothing the engine injects."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gradcheck_cli.errors import ConfigError, GradcheckError
from gradcheck_cli.safety import inputs, outputs
from gradcheck_cli.spec import trust


@pytest.fixture
def an_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config this run has read (the registry of inputs is reset around each test)."""
    monkeypatch.setattr(inputs, "_inputs", set())
    cfg = tmp_path / "net.yaml"
    cfg.write_text("layers: [relu]\n")
    outputs.note_input(cfg)
    return cfg


def test_every_path_to_an_input_is_refused_and_nothing_is_written(an_input: Path) -> None:
    """The same file by its own name, a relative path, a symlink or a hard link: refused with the
    input named, and neither the input nor the other outputs are written."""
    tmp = an_input.parent
    (tmp / "sym.yaml").symlink_to(an_input)
    os.link(an_input, tmp / "hard.md")
    other = tmp / "report.xml"
    for target in (an_input, tmp / "sub" / ".." / "net.yaml", tmp / "sym.yaml", tmp / "hard.md"):
        with pytest.raises(GradcheckError, match="input of this run") as err:
            outputs.write_outputs({other: "x", target: "y"}, {})
        assert str(an_input.resolve()) in str(err.value)
        with pytest.raises(GradcheckError, match="input of this run"):
            outputs.write_outputs({}, {target: "appended"})
    assert an_input.read_text() == "layers: [relu]\n" and not other.exists()


def test_outputs_that_are_not_inputs_are_written_and_appended(an_input: Path) -> None:
    tmp = an_input.parent
    summary = tmp / "summary.md"
    summary.write_text("before\n")
    outputs.write_outputs({tmp / "out" / "r.xml": "<x/>\n"}, {summary: "after\n"})
    assert (tmp / "out" / "r.xml").read_text() == "<x/>\n"
    assert summary.read_text() == "before\nafter\n"
    assert not list((tmp / "out").glob(".*tmp"))  # the temporary file was renamed away


def test_a_missing_path_is_not_an_input(an_input: Path) -> None:
    outputs.refuse_inputs([an_input.parent / "new.json"])  # does not raise


def test_writing_to_a_directory_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(GradcheckError, match="is a directory"):
        outputs.write_atomic(tmp_path, "x")


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "r.json"
    path.write_text("old")

    def broken(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(GradcheckError, match="cannot write the file: No space left on device"):
        outputs.write_atomic(path, "new")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


@pytest.mark.parametrize(
    "raw, shown",
    [("a\x1b[31mb", "a\\x1b[31mb"), ("tab\tnew\nline", "tab\tnew\nline"), ("\x7f\x9f", "\\x7f\\x9f"),
     ("\ud800x", "\\ud800x"), ("é ü ✓", "é ü ✓")],
)  # fmt: skip
def test_names_cannot_drive_the_terminal(raw: str, shown: str) -> None:
    assert outputs.printable(raw) == shown


# -- spec/trust -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", trust.CONTEXT_NAMES)
def test_a_layer_argument_cannot_set_what_the_engine_injects(name: str) -> None:
    with pytest.raises(ConfigError, match=f"'{name}' is set by gradcheck") as err:
        trust.refuse_context_args({"out": 3, name: 1}, field="layers[2]")
    assert err.value.field == f"layers[2].{name}"
    with pytest.raises(ValueError, match=f"'{name}' is set by gradcheck"):
        trust.refuse_context_args({name: 1})
    trust.refuse_context_args({"out": 3}, field="layers[2]")  # ordinary arguments pass


def test_code_is_found_at_any_depth_and_nothing_else() -> None:
    """spec/trust.names_code is the one rule (issue 24): any string holding ':' names code, at any
    depth, as a value or a key — free text included; names without ':' and numbers never do."""
    data = {
        "layers": [
            "relu",
            {"type": "linear", "out": 3},
            {"type": "p.py:Mine"},
            {"type": "residual", "layers": ["tanh", "pkg.mod:Block"]},
            {"fn": "ops.py:affine", "args": {"note": "a: b", "k": 2}},
            {"type": "linear", "x.py:Key": 1},
        ],
        "loss": {"type": "mse"},
    }
    assert trust.code_refs(data) == [
        ("layers[2].type", "p.py:Mine"),
        ("layers[3].layers[1]", "pkg.mod:Block"),
        ("layers[4].args.note", "a: b"),
        ("layers[4].fn", "ops.py:affine"),
        ("layers[5].x.py:Key", "x.py:Key"),
    ]
    assert trust.code_refs({"layers": ["relu", {"type": "linear", "out": 3}], "loss": "mse"}) == []
    assert trust.names_code(" dir/f.py:name ") and trust.names_code("a: b")
    assert not trust.names_code("relu") and not trust.names_code(3)


def test_no_plugins_refuses_the_first_code_reference_and_counts_the_rest() -> None:
    with pytest.raises(ConfigError, match=r"names the plugin 'a.py:X' \(and 2 more\)") as err:
        trust.refuse_code(
            [("layers[0].type", "a.py:X"), ("b", "b.py:Y"), ("c", "c.py:Z")], "f.yaml"
        )
    assert err.value.field == "layers[0].type"
    with pytest.raises(ConfigError, match=r"names the plugin 'a.py:X' \(and 1 more\)"):
        trust.refuse_code([("layers[0].type", "a.py:X"), ("b", "b.py:Y")])
    with pytest.raises(ConfigError, match=r"names the plugin 'a.py:X', and"):
        trust.refuse_code([("layers[0].type", "a.py:X")])
    trust.refuse_code([])  # nothing named: nothing refused


# -- isolation: one SIGTERM sent to the whole process group interrupts once ----------------------


def test_a_second_sigterm_within_half_a_second_does_not_cut_the_partial_report(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGTERM to the process group reaches the child twice (directly and forwarded by the
    supervisor): the first interrupts (the partial report starts), the echo within 0.5 s is
    ignored, a SIGTERM later than that interrupts again. (Clock injected.)"""
    import signal

    from gradcheck_cli.safety import isolation

    class Clock:
        now = 1000.0

        def monotonic(self) -> float:
            return self.now

    clock = Clock()
    monkeypatch.setattr(isolation, "time", clock)
    monkeypatch.setattr(isolation, "_interrupted_at", -1.0)
    with pytest.raises(KeyboardInterrupt):
        isolation._interrupt(signal.SIGTERM, None)
    clock.now += 0.4
    try:
        isolation._interrupt(signal.SIGTERM, None)  # the echo: ignored
    except KeyboardInterrupt:
        pytest.fail("the echo of the same SIGTERM interrupted the partial report")
    clock.now += 0.7  # 0.7 s after the first interruption
    with pytest.raises(KeyboardInterrupt):
        isolation._interrupt(signal.SIGTERM, None)
