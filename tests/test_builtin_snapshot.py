"""The built-in network's pre-validated snapshot (spec/builtin.py, issue 26 start-up).

The default `gradcheck run` reads the built-in config from a JSON snapshot of what the pydantic
models validate it to, so it need not import pydantic or YAML. These tests hold the snapshot to
the models: it is exactly what they produce today, its records answer as the models do, a check
from it reports exactly what a check from the validated YAML reports, and it is used only for
the built-in config, unchanged, with nothing given that would change its options."""

from __future__ import annotations

import fnmatch
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from gradcheck_cli import suite
from gradcheck_cli.errors import ConfigError
from gradcheck_cli.options import CheckOptions
from gradcheck_cli.report.jsondoc import to_json
from gradcheck_cli.safety.inputs import inputs, read_json
from gradcheck_cli.spec import builtin
from gradcheck_cli.spec.config import builtin_snapshot, load_config
from gradcheck_cli.spec.records import LayerRecord, OptionsRecord, Record, SpecRecord

ROOT = Path(__file__).parents[1]
REGENERATE = 'python -c "from gradcheck_cli.spec.config import write_builtin_snapshot as w; w()"'


def test_the_shipped_snapshot_is_what_pydantic_validates_the_yaml_to() -> None:
    """Drift guard: any change to the models (a field, a default, a validator that normalises)
    or to the YAML that is not re-snapshotted fails here."""
    assert read_json(builtin.SNAPSHOT) == builtin_snapshot(), f"stale snapshot: run {REGENERATE}"


def test_the_drift_guard_sees_a_changed_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """The negative twin: had a default of the models changed (here ``top``), the snapshot
    would no longer be what they produce."""
    from gradcheck_cli.spec import config

    drifted = type("CheckOptions", (CheckOptions,), {"__annotations__": {"top": int}, "top": 7})
    monkeypatch.setattr(config, "CheckOptions", drifted)
    assert read_json(builtin.SNAPSHOT) != builtin_snapshot()


def _pair() -> tuple[Any, Any, Any, Any]:
    pre = builtin.prevalidated(builtin.BUILTIN_CONFIG)
    assert pre is not None
    cfg = load_config(builtin.BUILTIN_CONFIG)
    return pre[0], pre[1], cfg, CheckOptions.build(cfg.check, seed=cfg.seed)


def _same_attributes(record: Any, model: Any, where: str) -> None:
    """Every field of ``model`` (recursively) is the record's attribute, of the same type."""
    for name in type(model).model_fields:
        got, want = getattr(record, name), getattr(model, name)
        if hasattr(type(want), "model_fields"):
            assert isinstance(got, Record), f"{where}.{name}"
            _same_attributes(got, want, f"{where}.{name}")
        elif isinstance(want, list) and want and hasattr(type(want[0]), "model_fields"):
            assert len(got) == len(want), f"{where}.{name}"
            for i, (g, w) in enumerate(zip(got, want, strict=True)):
                _same_attributes(g, w, f"{where}.{name}[{i}]")
        else:
            assert (type(got), got) == (type(want), want), f"{where}.{name}"
    assert record.model_extra == model.model_extra, where


def test_records_answer_as_the_models_do() -> None:
    rec_cfg, rec_opts, cfg, opts = _pair()
    _same_attributes(rec_cfg, cfg, "config")
    _same_attributes(rec_opts, opts, "options")
    assert isinstance(rec_opts, OptionsRecord) and isinstance(rec_cfg.check, SpecRecord)
    assert all(isinstance(layer, LayerRecord) for layer in rec_cfg.layers)
    for mode in ("python", "json"):
        assert rec_cfg.model_dump(mode=mode) == cfg.model_dump(mode=mode)
        assert rec_opts.model_dump(mode=mode) == opts.model_dump(mode=mode)
        assert rec_opts.model_dump(mode=mode, exclude={"chunk_bytes"}) == opts.model_dump(
            mode=mode, exclude={"chunk_bytes"}
        )
    keep = {"layers", "loss"}
    assert rec_cfg.model_dump(include=keep, exclude_none=True) == cfg.model_dump(
        include=keep, exclude_none=True
    )
    assert [x.args for x in rec_cfg.layers] == [x.args for x in cfg.layers]
    assert rec_cfg.loss.args == cfg.loss.args
    assert (
        rec_opts.chosen_mode == opts.chosen_mode
        and rec_cfg.check.chosen_mode == cfg.check.chosen_mode
    )
    for dtype, ref in (("float64", None), ("float32", "float64")):
        assert rec_opts.resolved(dtype, ref).model_dump() == opts.resolved(dtype, ref).model_dump()
    update = {"top": 9, "mode": "full"}
    assert (
        rec_opts.model_copy(update=update).model_dump()
        == opts.model_copy(update=update).model_dump()
    )
    assert (rec_cfg.base_dir, rec_cfg.source, rec_cfg.no_plugins) == (
        cfg.base_dir,
        cfg.source,
        cfg.no_plugins,
    )
    with pytest.raises(TypeError, match="frozen"):
        rec_opts.top = 3
    pre = builtin.prevalidated(builtin.BUILTIN_CONFIG, no_plugins=True)
    assert pre is not None
    assert (
        pre[0].no_plugins is load_config(builtin.BUILTIN_CONFIG, no_plugins=True).no_plugins is True
    )


def test_a_record_differs_where_the_model_differs() -> None:
    """The negative twin of the comparisons above: they do see a changed value."""
    rec_cfg, rec_opts, cfg, opts = _pair()
    assert rec_opts.model_copy(update={"top": 6}).model_dump() != opts.model_dump()
    assert rec_opts.model_copy(update={"top": 6}) != rec_opts
    assert rec_cfg.model_copy(update={"name": "x"}).model_dump() != cfg.model_dump()


def _report(monkeypatch: pytest.MonkeyPatch, snapshot: bool, **given: Any) -> tuple[str, dict, str]:
    taken: list[str] = []
    real_built = suite.check_built

    def spy(cfg: Any, opts: Any, **kw: Any) -> Any:
        taken.append(type(opts).__name__)
        return real_built(cfg, opts, **kw)

    monkeypatch.setattr(suite, "check_built", spy)
    if not snapshot:
        monkeypatch.setattr(suite, "prevalidated", lambda *a, **k: None)
    result = suite.run_config(builtin.BUILTIN_CONFIG, flags=True, **given)
    monkeypatch.undo()
    (kind,) = taken
    return to_json(result), result.options, kind


def test_a_check_from_the_snapshot_reports_what_a_check_of_the_yaml_reports(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fast, fast_options, kind = _report(monkeypatch, True, top=5)
    slow, slow_options, slow_kind = _report(monkeypatch, False, top=5)
    assert (kind, slow_kind) == ("OptionsRecord", "CheckOptions")  # each path was taken
    assert fast == slow and fast_options == slow_options
    assert builtin.BUILTIN_CONFIG.resolve() in inputs()  # registered as read, as load_config does


@pytest.mark.parametrize(
    "given",
    [
        {"seed": 3},
        {"rtol": 1e-3},
        {"atol": 0.0},
        {"eps": 1e-5},  # the snapshot's own ε, but given: its source is "given", not "config"
        {"method": "central"},  # the config's method, but given: entangled with ε
        {"mode": "full"},
        {"samples": 4},
        {"probes": 3},
        {"budget": 1.0},
        {"top": 7},
        {"top": 5.0},  # the same number, another type: validation decides, not the shortcut
        {"inputs": False},
        {"strict": True},
        {"include": ["*.W"]},
        {"exclude": ("input",)},
        {"no_such_option": 1},
    ],
    ids=lambda g: "-".join(f"{k}={v}" for k, v in g.items()),
)
def test_anything_given_that_could_change_the_options_takes_the_validated_path(
    given: dict[str, Any],
) -> None:
    assert builtin.prevalidated(builtin.BUILTIN_CONFIG) is not None  # the positive twin
    assert builtin.prevalidated(builtin.BUILTIN_CONFIG, top=5, inputs=None, rtol=None) is not None
    assert builtin.prevalidated(builtin.BUILTIN_CONFIG, **given) is None


def test_given_options_still_apply_to_the_builtin_network(monkeypatch: pytest.MonkeyPatch) -> None:
    _, options, kind = _report(monkeypatch, True, rtol=1e-3, top=2)
    assert kind == "CheckOptions" and options["rtol"] == 1e-3 and options["top"] == 2
    with pytest.raises(ConfigError, match="--rtol"):
        suite.run_config(builtin.BUILTIN_CONFIG, flags=True, rtol=2.0)


def test_only_the_builtin_file_unchanged_uses_the_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "seed_mlp.yaml"
    shutil.copyfile(builtin.BUILTIN_CONFIG, copy)
    assert builtin.prevalidated(copy) is None  # the same text elsewhere is a user's file
    monkeypatch.setattr(builtin, "BUILTIN_CONFIG", copy)
    assert builtin.prevalidated(copy) is not None  # the twin: the shortcut would take it here
    copy.write_text(copy.read_text().replace("name: seed-mlp", "name: edited"))
    assert builtin.prevalidated(copy) is None  # edited after the snapshot: validated as usual
    assert suite.run_config(copy).name == "edited"


@pytest.mark.parametrize("content", [None, "{not json", '{"sha256": 1}', "[]"])
def test_a_missing_or_foreign_snapshot_falls_back(
    content: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snap = tmp_path / "snap.json"
    if content is not None:
        snap.write_text(content)
    monkeypatch.setattr(builtin, "SNAPSHOT", snap)
    assert builtin.prevalidated(builtin.BUILTIN_CONFIG) is None
    assert suite.run_config(builtin.BUILTIN_CONFIG).passed


def test_a_user_config_gets_the_full_validation_and_its_messages(tmp_path: Path) -> None:
    """A copy of the built-in network with one mistake: the message pydantic's path gives, with
    the user's file and the field."""
    bad = tmp_path / "gradcheck.yaml"
    text = builtin.BUILTIN_CONFIG.read_text()
    bad.write_text(text.replace("check: {eps: 1.0e-5,", "check: {eps: 1.0e-5, metod: central,"))
    with pytest.raises(ConfigError) as err:
        suite.run_config(bad)
    assert err.value.file == str(bad) and err.value.field == "check.metod"
    assert err.value.message == "unknown key 'metod'"
    assert "did you mean 'method'?" in str(err.value.hint)


def test_the_snapshot_ships_in_the_wheel() -> None:
    """Every file of spec/data matches pyproject's package-data globs (so the wheel has it)."""
    if sys.version_info < (3, 11):
        pytest.skip("tomllib is Python 3.11+")
    import tomllib

    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = conf["tool"]["setuptools"]["package-data"]["gradcheck_cli"]
    package = ROOT / "gradcheck_cli"
    shipped = [p.relative_to(package).as_posix() for p in (package / "spec" / "data").iterdir()]
    assert "spec/data/seed_mlp.validated.json" in shipped
    for rel in shipped:
        assert any(fnmatch.fnmatch(rel, g) for g in globs), rel
    assert not any(fnmatch.fnmatch("spec/other/x.json", g) for g in globs)  # the twin
