"""Hardening III (issue 24): one rule for "this names code", every file read is an input, limits
before allocation, outputs honour the umask. Each test names the mechanism it guards and fails
without it (its wrong twin is stated where it is not obvious).
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gradcheck_cli.cli import app
from gradcheck_cli.engine.build import build_network
from gradcheck_cli.engine.spec_arrays import footprint
from gradcheck_cli.errors import ConfigError, GradcheckError, LimitError
from gradcheck_cli.layers import registry
from gradcheck_cli.plan.limits import Limits, MemoryPlan
from gradcheck_cli.safety import inputs as inputs_mod
from gradcheck_cli.safety import outputs
from gradcheck_cli.spec import trust
from gradcheck_cli.spec.config import load_config, parse_config
from gradcheck_cli.suite import run_config, validate

runner = CliRunner()
PACKAGE = Path(__file__).resolve().parent.parent / "gradcheck_cli"

#: Importing it leaves a mark next to it: --no-plugins must refuse before it exists.
EVIL = """
import pathlib
pathlib.Path(__file__).with_name("PWNED").write_text("x")
class Évil:
    def __init__(self):
        self.params, self.grads = {}, {}
    def forward(self, x):
        return x
    def backward(self, d):
        return d
Evil = Évil
def f_forward(x):
    return x, None
def f_backward(d, c):
    return (d,)
"""
AFFINE = """
def affine_forward(x, w, b):
    return x @ w + b, (x, w)
def affine_backward(dout, cache):
    x, w = cache
    return dout @ w.T, x.T @ dout, dout.sum(axis=0)
"""


def gc(*args: str | Path, env: dict[str, str] | None = None):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "400", **(env or {})})


def flat(text: str) -> str:
    return " ".join(text.split())


def clean(r, code: int, *needles: str) -> None:
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output and "internal error" not in r.output, r.output
    for needle in needles:
        assert needle in flat(r.output), f"{needle!r} not in {r.output}"


def pwned(folder: Path) -> list[Path]:
    return list(folder.rglob("PWNED"))


# -- 1. one predicate for "this string names code" ------------------------------------------------

#: References the loader imports (it imports the module before it looks the name up) that the old
#: `--no-plugins` pattern `^\S+:[A-Za-z_][A-Za-z0-9_.]*$` did not recognise.
REFS = [
    "evil.py:Évil",  # a non-ASCII identifier
    "sub dir/evil.py:Evil",  # a space in the path
    "evil.py:no such class",  # imported, then the lookup fails: too late
    "evil.py:",  # an empty name: still a reference
    "evil.py:Evil\t",
]
PLACES = [
    ("layers:\n  - '{ref}'", "layers[0]"),
    ("layers:\n  - {{type: '{ref}'}}", "layers[0].type"),
    ("layers:\n  - {{type: residual, layers: ['{ref}']}}", "layers[0].layers[0]"),
    (
        "layers:\n  - {{type: residual, layers: [relu, {{type: '{ref}'}}]}}",
        "layers[0].layers[1].type",
    ),
    ("layers: [relu]\nloss: '{ref}'", "loss"),
    ("layers: [relu]\nloss: {{type: '{ref}'}}", "loss.type"),
]


def _case(tmp_path: Path, ref: str, place: str) -> Path:
    (tmp_path / "evil.py").write_text(EVIL, encoding="utf-8")
    (tmp_path / "sub dir").mkdir(exist_ok=True)
    (tmp_path / "sub dir" / "evil.py").write_text(EVIL, encoding="utf-8")
    cfg = tmp_path / "net.yaml"
    body = place.format(ref=ref.replace("\t", "\\t")).replace("'", '"')
    cfg.write_text(f"input: {{shape: [2, 3]}}\n{body}\n", encoding="utf-8")
    return cfg


@pytest.mark.parametrize("command", ["run", "validate", "sweep"])
@pytest.mark.parametrize(("place", "field"), PLACES)
def test_no_plugins_refuses_what_the_loader_would_import(
    tmp_path: Path, command: str, place: str, field: str
) -> None:
    for ref in REFS:
        cfg = _case(tmp_path, ref, place)
        r = gc(command, "--no-plugins", cfg)
        clean(r, 2, field, "--no-plugins")
        assert not pwned(tmp_path), (ref, r.output)


@pytest.mark.parametrize("ref", REFS)
def test_no_plugins_refuses_layer_names_and_args(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ref: str
) -> None:
    _case(tmp_path, ref, PLACES[0][0])
    monkeypatch.chdir(tmp_path)
    clean(gc("layer", ref, "--shape", "2x3", "--no-plugins"), 2, "--no-plugins")
    quoted = ref.replace("\t", "\\t")
    r = gc("layer", "residual", "--shape", "2x3", "--no-plugins", "--arg", f'layers=["{quoted}"]')
    clean(r, 2, "--arg layers[0]", "--no-plugins")
    assert not pwned(tmp_path)


def test_the_loader_and_the_walk_share_one_predicate() -> None:
    # Wrong twin: a narrower walk (the old regex) misses these, and the loader imports them.
    for ref in REFS:
        assert registry.is_plugin(ref)
        assert trust.code_refs({"layers": [ref]}) == [("layers[0]", ref)]
    assert not registry.is_plugin("relu") and trust.code_refs({"layers": ["relu"]}) == []


_ALPHABET = st.sampled_from([*list("ab_Éé .:/\\-0é1\t"), "py", "evil.py", ":", "sub dir/"])
_REFS = st.one_of(st.text(), st.lists(_ALPHABET, max_size=8).map("".join))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ref=_REFS)
def test_whatever_the_walk_lets_through_never_reaches_the_importer(
    ref: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """For any string, in any position a layer or loss name is read from: either the
    --no-plugins walk names it, or resolving it never calls the module loader."""
    calls: list[str] = []

    def spy(module_ref: str, base_dir: Path) -> None:
        calls.append(module_ref)
        raise ConfigError("spy: would import")

    monkeypatch.setattr(registry, "_load_module", spy)
    for data in (
        {"layers": [ref]},
        {"layers": [{"type": ref}]},
        {"layers": [{"type": "residual", "layers": [ref]}]},
        {"loss": ref},
    ):
        flagged = bool(trust.code_refs(data))
        calls.clear()
        for kind in ("layer", "loss"):
            with contextlib.suppress(GradcheckError):
                registry.resolve(ref, kind, tmp_path)
        assert flagged or not calls, (ref, data)
        assert flagged == trust.names_code(ref), (ref, data)


def test_the_loader_refuses_under_no_plugins_whatever_the_walk_missed(tmp_path: Path) -> None:
    """The last line: a config loaded with no_plugins imports nothing even if a walk missed a
    reference (here the walk is bypassed by building the Config directly)."""
    (tmp_path / "evil.py").write_text(EVIL, encoding="utf-8")
    cfg = parse_config(
        {"input": {"shape": [2, 3]}, "layers": ["evil.py:Evil"]},
        source=str(tmp_path / "net.yaml"),
        base_dir=tmp_path,
    ).model_copy(update={"no_plugins": True})
    with pytest.raises(ConfigError, match="--no-plugins refuses to import"):
        build_network(cfg)
    assert not pwned(tmp_path)
    build_network(cfg.model_copy(update={"no_plugins": False}))  # the twin: it does import
    assert pwned(tmp_path)


def test_no_plugins_also_refuses_fn_layers_in_residual(tmp_path: Path) -> None:
    (tmp_path / "evil.py").write_text(EVIL, encoding="utf-8")
    cfg = tmp_path / "net.yaml"
    cfg.write_text(
        "input: {shape: [2, 3]}\nlayers: [{type: residual, layers: [{fn: 'evil.py:f'}]}]\n"
    )
    clean(gc("run", "--no-plugins", cfg), 2, "layers[0].layers[0].fn")
    assert not pwned(tmp_path)


# -- 2. every file a run reads is an input -------------------------------------------------------


def _fn_net(tmp_path: Path) -> Path:
    (tmp_path / "layers.py").write_text(AFFINE)
    rng = np.random.default_rng(0)
    np.save(tmp_path / "w.npy", rng.standard_normal((3, 4)))
    np.save(tmp_path / "t.npy", rng.standard_normal((2, 4)))
    cfg = tmp_path / "net.yaml"
    cfg.write_text(
        "input: {shape: [2, 3]}\n"
        "layers:\n  - {fn: 'layers.py:affine', params: {w: {file: w.npy}, b: [4]}}\n"
        "loss: {type: mse}\ntarget: {kind: values, file: t.npy}\n"
    )
    return cfg


@pytest.mark.parametrize("option", ["--junit-xml", "--export-html", "--export-svg", "summary"])
@pytest.mark.parametrize("target", ["w.npy", "t.npy", "layers.py", "net.yaml"])
def test_no_output_replaces_a_data_file_of_the_run(
    tmp_path: Path, option: str, target: str
) -> None:
    cfg = _fn_net(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    if option == "summary":  # GitHub's step summary is appended to: never to an input either
        r = gc(
            "run", cfg, "--format", "github", env={"GITHUB_STEP_SUMMARY": str(tmp_path / target)}
        )
    else:
        r = gc("run", cfg, option, tmp_path / target, "-q")
    clean(r, 2, "an input of this run", "nothing was written")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_run_registers_every_file_it_read(tmp_path: Path) -> None:
    cfg = _fn_net(tmp_path)
    build_network(load_config(cfg))
    got = inputs_mod.inputs()
    for name in ("net.yaml", "layers.py", "w.npy", "t.npy"):
        assert (tmp_path / name).resolve() in got, name


@pytest.mark.parametrize(
    "reader", ["read_bytes", "read_json", "read_array", "read_arrays", "npy_header"]
)
def test_every_reader_registers_its_file_even_when_reading_fails(
    tmp_path: Path, reader: str
) -> None:
    good = {
        "read_bytes": ("a.bin", b"abc"),
        "read_json": ("a.json", b'{"a": 1}'),
        "read_array": ("a.npy", None),
        "read_arrays": ("a.npz", None),
        "npy_header": ("h.npy", None),
    }[reader]
    path = tmp_path / good[0]
    if good[1] is not None:
        path.write_bytes(good[1])
    elif path.suffix == ".npz":
        np.savez(path, w=np.ones(3))
    else:
        np.save(path, np.ones((2, 3)))
    got = getattr(inputs_mod, reader)(path)
    assert path.resolve() in inputs_mod.inputs()
    if reader == "read_arrays":
        assert list(got) == ["w"]
    if reader == "npy_header":
        assert got[0] == (2, 3)
    bad = tmp_path / f"bad{path.suffix}"
    bad.write_bytes(b"\x00not what it claims")
    with contextlib.suppress(OSError, ValueError):
        getattr(inputs_mod, reader)(bad)
    assert bad.resolve() in inputs_mod.inputs()


#: Calls that read a file. Only safety/inputs.py makes them; the rest of the package goes through
#: its readers, so no loader can forget to register what it reads.
READS = re.compile(
    r"np\.load\(|numpy\.load\(|\bopen\(|\.open\(|\.read_text\(|\.read_bytes\(|fromfile\(|"
    r"loadtxt\(|genfromtxt\(|memmap\(|json\.load\(|pickle\.load|spec_from_file_location\("
)
#: Places that open files for another reason, each with why it is not a read of the run's input.
ALLOWED = {
    "safety/inputs.py": "the readers themselves",
    "safety/outputs.py": "writes outputs (and appends to GitHub's step summary)",
    "spec/schemas.py": "gradcheck's own packaged schema",
    "layers/registry.py": "Python imports a plugin file; note_input registers it first",
}


def reads_in(text: str) -> list[str]:
    code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    code = re.sub(r'"""[\s\S]*?"""', "", code)
    return READS.findall(code)


def test_no_module_reads_a_file_outside_the_registering_readers() -> None:
    assert reads_in("x = np.load(path)\n") and reads_in("with path.open('rb') as fh:\n")  # the twin
    assert not reads_in('"""np.load( in a docstring"""\n# open( in a comment\n')
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel not in ALLOWED and reads_in(path.read_text(encoding="utf-8")):
            offenders.append(f"{rel}: {reads_in(path.read_text(encoding='utf-8'))}")
    needed = [rel for rel in ALLOWED if reads_in((PACKAGE / rel).read_text(encoding="utf-8"))]
    assert needed == list(ALLOWED), "an allowance nothing uses: drop it"
    assert offenders == [], "read files through gradcheck_cli.safety.inputs: " + "; ".join(
        offenders
    )


def test_registry_notes_a_plugin_before_python_imports_it() -> None:
    text = (PACKAGE / "layers" / "registry.py").read_text(encoding="utf-8")
    assert text.index("note_input(path)") < text.index("spec_from_file_location(")


# -- 3. limits before allocation ------------------------------------------------------------------


def _peak_while(fn) -> tuple[int, BaseException | None]:
    tracemalloc.start()
    err = None
    try:
        fn()
    except BaseException as exc:
        err = exc
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak, err


BIG = {
    "fn params": "layers:\n  - {fn: 'layers.py:affine', params: {w: [3, 14000], b: [14000]}}\n"
    "  - {fn: 'layers.py:affine', params: {w: [14000, 14000], b: [14000]}}\n",
    "fn param over the limit": "layers:\n  - {fn: 'layers.py:affine', params: {w: [3, 20000], b: [20000]}}\n"
    "  - {fn: 'layers.py:affine', params: {w: {shape: [20000, 20000], scale: 0.1}, b: [20000]}}\n",
    "input then layers": "layers: [{type: linear, out: 3000}]\n",
    "target": "layers: [{type: linear, out: 200000}]\nloss: {type: mse}\ntarget: {kind: values}\n",
}
SHAPES = {"input then layers": "[1000, 100000]", "target": "[1000, 10]"}


@pytest.mark.parametrize("case", list(BIG))
def test_big_configs_are_refused_from_the_spec_without_allocating(
    tmp_path: Path, case: str
) -> None:
    """Wrong twin (before): the fn parameters (3.1 GB), the input (800 MB) or the output before
    the target (1.6 GB) were allocated before the refusal."""
    (tmp_path / "layers.py").write_text(AFFINE)
    cfg = tmp_path / "big.yaml"
    cfg.write_text(f"input: {{shape: {SHAPES.get(case, '[2, 3]')}}}\n" + BIG[case])
    for job in (lambda: run_config(cfg), lambda: validate([cfg])):
        peak, err = _peak_while(job)
        assert peak < 20 * 2**20, f"{case}: {peak / 2**20:.0f} MB allocated before refusing"
        if err is not None:
            assert isinstance(err, LimitError), err
    found = validate([cfg])[0].error
    assert isinstance(found, LimitError), found


def test_fn_params_are_refused_when_no_probes_are_drawn(tmp_path: Path) -> None:
    """--mode full draws no probes: the parameters (1.6 GB) and the copy the function's arguments
    take of them (1.6 GB more while both live) are over the limit from the spec alone. Wrong twin:
    counting the parameters once let the build allocate 3.1 GB (MemoryError under 2 GB)."""
    (tmp_path / "layers.py").write_text(AFFINE)
    cfg = tmp_path / "big.yaml"
    cfg.write_text("input: {shape: [2, 3]}\n" + BIG["fn params"])
    peak, err = _peak_while(lambda: run_config(cfg, mode="full"))
    assert isinstance(err, LimitError) and "parameter copies" in str(err), err
    assert peak < 20 * 2**20


@pytest.mark.parametrize("case", list(BIG))
def test_validate_and_run_refuse_with_the_same_words(tmp_path: Path, case: str) -> None:
    (tmp_path / "layers.py").write_text(AFFINE)
    cfg = tmp_path / "big.yaml"
    cfg.write_text(f"input: {{shape: {SHAPES.get(case, '[2, 3]')}}}\n" + BIG[case])
    v, r = gc("validate", cfg), gc("run", cfg)
    assert v.exit_code == r.exit_code == 2, (v.output, r.output)
    words = [re.search(r"big\.yaml: (.*?) hint:", flat(x.output)) for x in (v, r)]
    assert words[0] and words[1] and words[0][1] == words[1][1], (v.output, r.output)
    assert "refused before" in words[0][1]


@pytest.mark.parametrize(
    "params",
    [
        "{w: [3, 5], b: [5]}",
        "{w: {shape: [3, 5], scale: 0.1}, b: {values: [1, 2, 3, 4, 5]}}",
        "{w: {file: w.npy}, b: [5]}",
    ],
)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_estimate_counts_fn_params_as_built(tmp_path: Path, params: str, dtype: str) -> None:
    (tmp_path / "layers.py").write_text(AFFINE)
    np.save(tmp_path / "w.npy", np.ones((3, 5)))
    cfg = tmp_path / "net.yaml"
    cfg.write_text(
        f"dtype: {dtype}\ninput: {{shape: [4, 3]}}\n"
        f"layers: [{{fn: 'layers.py:affine', params: {params}}}]\n"
    )
    config = load_config(cfg)
    plan = MemoryPlan(Limits.off())
    footprint(config, plan)
    counted = {label.rsplit(" ", 1)[1]: b for label, b in plan.parts if label.startswith("layer 0")}
    built = build_network(config).layers[0].params
    assert counted == {k: float(v.nbytes) for k, v in built.items()}


def test_the_estimate_counts_layers_outputs_and_the_target_as_built() -> None:
    cfg = parse_config(
        {
            "input": {"shape": [6, 5]},
            "layers": [{"type": "linear", "out": 7}, "tanh", {"type": "linear", "out": 4}],
            "loss": {"type": "mse"},
            "target": {"kind": "values"},
        }
    )
    plan = MemoryPlan(Limits.off())
    footprint(cfg, plan)
    net = build_network(cfg)
    held = sum(v.nbytes for la in net.layers for v in la.params.values())
    held += net.x.nbytes + net.target.nbytes + sum(a.nbytes for a in net.inputs[1:])
    held += net.forward(net.x).nbytes
    assert plan.total == held


def test_probe_memory_is_refused_from_the_spec(tmp_path: Path) -> None:
    (tmp_path / "layers.py").write_text(AFFINE)
    cfg = tmp_path / "net.yaml"
    cfg.write_text(
        "input: {shape: [2, 3]}\ncheck: {probes: 10000}\n"
        "layers: [{fn: 'layers.py:affine', params: {w: [3, 20000], b: [20000]}}]\n"
    )
    peak, err = _peak_while(lambda: build_network(load_config(cfg), probes=10000))
    assert isinstance(err, LimitError) and "directional probes of 0.affine.w" in str(err)
    assert peak < 20 * 2**20
    # validate says what run says: the same rule with the config's probes
    clean(gc("validate", cfg), 2, "10,000 directional probes of 0.affine.w")
    clean(gc("run", cfg), 2, "10,000 directional probes of 0.affine.w")
    # and a check that draws no probes is not refused for them
    assert build_network(load_config(cfg), probes=0).layers[0].params["w"].shape == (3, 20000)


# -- 4. outputs honour the umask ------------------------------------------------------------------


@pytest.fixture
def umask():
    old = os.umask(0o022)
    os.umask(old)

    def set_(mask: int) -> None:
        os.umask(mask)

    yield set_
    os.umask(old)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_outputs_get_the_umask_mode(tmp_path: Path, umask, mask: int, mode: int) -> None:
    umask(mask)
    path = tmp_path / "out" / "r.html"
    outputs.write_atomic(path, "<html>")
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert path.read_text() == "<html>"
    assert [p.name for p in path.parent.iterdir()] == ["r.html"]  # no temporary left


def test_a_replaced_output_keeps_its_mode(tmp_path: Path, umask) -> None:
    umask(0o022)
    path = tmp_path / "j.xml"
    path.write_text("old")
    path.chmod(0o640)
    outputs.write_atomic(path, "new")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 and path.read_text() == "new"


def test_cli_reports_are_0644_under_umask_022(tmp_path: Path, umask) -> None:
    umask(0o022)
    cfg = tmp_path / "net.yaml"
    cfg.write_text(
        "input: {shape: [3, 4]}\nlayers: [{type: linear, out: 2}]\nloss: {type: mse}\n"
        "target: {kind: values}\n"
    )
    out = tmp_path / "out"
    args = [
        "--junit-xml",
        out / "j.xml",
        "--export-html",
        out / "r.html",
        "--export-svg",
        out / "r.svg",
    ]
    clean(gc("run", cfg, *args, "-q"), 0)
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in out.iterdir()} == {
        n: "0o644" for n in ("j.xml", "r.html", "r.svg")
    }


def test_an_output_through_a_link_replaces_the_target_and_keeps_the_link(tmp_path: Path) -> None:
    from gradcheck_cli.safety.outputs import write_atomic

    real = tmp_path / "reports" / "junit.xml"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "latest.xml"
    link.symlink_to(real)
    write_atomic(link, "<testsuites/>")
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert real.read_text() == "<testsuites/>"


def test_an_output_that_is_a_pipe_is_written_in_place_not_renamed_over(tmp_path: Path) -> None:
    """--junit-xml /dev/stdout (a link to a pipe or terminal): the rename of an atomic write would
    replace the device node itself (as root, /dev/stdout became a regular file)."""
    import os
    import threading

    from gradcheck_cli.safety.outputs import write_atomic

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "stdout"
    link.symlink_to(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    write_atomic(link, "<testsuites/>")
    reader.join(timeout=10)
    assert got == ["<testsuites/>"]
    assert link.is_symlink() and stat.S_ISFIFO(fifo.stat().st_mode)
