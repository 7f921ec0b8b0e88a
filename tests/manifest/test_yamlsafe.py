import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model_checks.core.errors import ManifestError
from model_checks.manifest.yamlsafe import MAX_MANIFEST_BYTES, load_yaml_file, load_yaml_text


@pytest.mark.parametrize(
    "text, message",
    [
        ("a: &x 1\nb: *x\n", "anchors (&x) are not allowed"),
        ("a: [&a [*a]]\n", "anchors (&a) are not allowed"),
        ('a: &a ["lol","lol"]\nb: [*a,*a,*a,*a]\n', "line 1: anchors"),
        ("a: 1\nb: 2\na: 3\n", "line 3: duplicate key 'a' (first at line 1)"),
        ("x: !!python/object/apply:os.system ['true']\n", "the tag !!python/object/apply:os.system is not allowed"),
        ("x: !custom 3\n", "the tag !custom is not allowed"),
        ("a: [1, 2\n", "not valid YAML"),
    ],
)
def test_refusals_name_line_and_reason(text, message):
    with pytest.raises(ManifestError) as e:
        load_yaml_text(text, "arts/m/metadata.yaml")
    assert str(e.value).startswith("arts/m/metadata.yaml: ")
    assert message in str(e.value)


def test_floats_without_a_dot_and_versions_as_written():
    data = load_yaml_text("rel: 1e-3\nneg: -2E+2\nversion: 1.10\ndate: 2026-01-01\n", "m.yaml")
    assert data == {"rel": 0.001, "neg": -200.0, "version": "1.10", "date": "2026-01-01"}


def test_size_cap_before_parsing(tmp_path):
    p = tmp_path / "metadata.yaml"
    p.write_text("a: " + "x" * (MAX_MANIFEST_BYTES + 1))
    with pytest.raises(ManifestError, match="larger than 256 KiB"):
        load_yaml_file(p, "metadata.yaml")


def test_binary_file(tmp_path):
    p = tmp_path / "metadata.yaml"
    p.write_bytes(b"\x80\x04\x95\xff\xfe")
    with pytest.raises(ManifestError, match="binary or not UTF-8"):
        load_yaml_file(p, "metadata.yaml")


DOCS = [
    "a: yes\nb: No\nc: ~\nd: 0x1F\ne: 1_000\nf: .inf\ng: -.5\nh: '1e-3'\ni: 2026-01-01\nj: [1, 2.0, x]\nk: {l: null}\n",
    "model_name: cnn\nversion: 1.10\nfile: m.onnx\ntolerance:\n  rel_l2: 5e-2\n  per_output:\n    logits: {mae: 1E-4}\n",
    "inputs:\n  - name: x\n    shape: [batch, 1, 28, 28]\n    range: [-1, 1.5]\n",
    "a: |\n  text block\nb: >\n  folded\n",
]


@pytest.mark.parametrize("text", DOCS)
def test_fast_path_reads_like_the_strict_loader(text):
    """libyaml composes on the fast path; both paths must build the same data."""
    from model_checks.manifest import yamlsafe

    done, fast = yamlsafe._fast(text)
    assert done
    loader = yamlsafe._Loader(text)
    strict = loader.construct_document(loader.get_single_node())
    if "version" in strict:
        strict["version"] = "1.10"
    assert fast == strict


def test_negative_fraction_is_a_float():
    assert load_yaml_text("g: -.5\nh: +1.5e3\n", "m") == {"g": -0.5, "h": 1500.0}


def _strict(text):
    """What the pure-Python loader makes of `text`: the data, or the refusal's message."""
    from model_checks.manifest import yamlsafe

    loader = yamlsafe._Loader(text)
    try:
        root = loader.get_single_node()
        return "data", yamlsafe._version_as_written(loader.construct_document(root), yamlsafe._version_text(root))
    except yamlsafe._Refused as e:
        return "refused", str(e)
    finally:
        loader.dispose()


_keys = st.sampled_from(["a", "b", "version", "name", "1", "yes", "x y"])
_values = st.recursive(
    st.one_of(
        st.sampled_from(["1.10", "1e-3", "-.5", "0x1F", "yes", "~", "null", "2026-01-01", ".inf", "fp32", "", "a: b"]),
        st.integers(-5, 5),
        st.floats(allow_nan=False, width=32),
        st.booleans(),
        st.none(),
        st.text(max_size=4),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_keys, inner, max_size=3)),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    doc=st.dictionaries(_keys, _values, max_size=5),
    flow=st.sampled_from([None, True, False]),
    dupe=st.booleans(),
)
def test_fast_path_reads_and_refuses_like_the_strict_loader_on_generated_documents(doc, flow, dupe):
    """Any document (block or flow style, plain or quoted scalars, a duplicate key now and then): the fast path
    builds the same data as the pure-Python loader, or refuses with the same message."""
    import yaml

    from model_checks.manifest import yamlsafe

    text = yaml.safe_dump(doc, default_flow_style=flow, sort_keys=False)
    if dupe and doc:
        text += f"{next(iter(doc))}: 1\n" if flow is not True else ""
    try:
        done, fast = yamlsafe._fast(text)
        got = ("data", fast) if done else None
    except yamlsafe._Refused as e:
        got = ("refused", str(e))
    except yaml.YAMLError:  # not YAML libyaml reads: the pure-Python loader takes it (and says where)
        got = None
    if got is not None:
        assert got == _strict(text)


def test_depth_cap_on_the_fast_path():
    """The top-level mapping is one level: 63 lists inside it are read, 64 refused, by line."""
    from model_checks.manifest import yamlsafe

    n = yamlsafe.MAX_DEPTH - 1
    assert yamlsafe._fast("a: " + "[" * n + "]" * n + "\n")[0]
    with pytest.raises(ManifestError) as e:
        load_yaml_text("a:\n  " + "[" * (n + 1) + "]" * (n + 1) + "\n", "m")
    assert str(e.value) == f"m: line 2: nested more than {yamlsafe.MAX_DEPTH} levels deep; a manifest needs a few"


# -- the line reader (`yamlsafe._lines`): the common shape without libyaml's events ---------------------------------


def _typed(x):
    """`x` with every value's type spelled out (True is not 1, 1.0 is not 1, nan equals nan)."""
    if isinstance(x, dict):
        return ("dict", [(_typed(k), _typed(v)) for k, v in x.items()])
    if isinstance(x, list):
        return ("list", [_typed(v) for v in x])
    if isinstance(x, float):
        return ("float", repr(x))
    return (type(x).__name__, x)


def _agrees(text):
    """The line reader reads `text` as the pure-Python loader does, or leaves it to the general readers (None).
    Returns whether it read it."""
    from model_checks.manifest import yamlsafe

    got = yamlsafe._lines(text)
    if got is None:
        return False
    kind, strict = _strict(text)
    assert kind == "data", f"the line reader read {text!r}, which the loader refuses: {strict}"
    assert _typed(got) == _typed(strict), text
    return True


BENCH_MANIFEST = (
    "model_name: model0\nversion: '1.0'\nfile: model.onnx\nopset: 13\nprecision: fp32\ntolerance:\n  rel_l2: 0.001\n"
    "limits:\n  opset:\n    min: 13\nreference:\n  path: model.onnx\n"
)


def test_line_reader_reads_the_example_manifests_as_the_loader_does():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "artifacts"
    texts = [p.read_text() for p in sorted(root.glob("*/metadata.yaml"))] + [(root / "policy.yaml").read_text()]
    read = [_agrees(t) for t in [*texts, BENCH_MANIFEST]]
    assert read[-1]  # the shape bench/collect.py's tree has
    assert sum(read) >= len(read) - 4  # most of them: the shape is the common one (others: a comment, a long list)


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\n  b: 2\n",  # deeper than the block it is in
        "b: ._\n",  # a scalar the resolver calls a float and cannot build: the general readers fail as before
        "a: x\n  continued\n",  # a plain scalar over two lines
        "a: 1\na: 2\n",  # duplicate key: the general readers refuse it with its line
        "a: {b: 1, b: 2}\n",
        "1: x\n",  # a key that is not text
        "yes: x\n",
        "a: {null: 1}\n",
        "a: - x\n",
        "a: x # note\n",  # a comment after a value
        "a:\tx\n",
        "a: x\r\nb: y\r\n",
        "a: [x,\n  y]\n",  # a flow list over two lines
        "a: [x, [y]]\n",
        "a: [x, ]\n",
        "a: ['x']\n",
        "a: {b: 'x'}\n",
        "a: {b:1}\n",
        "a: |\n  text\n",
        "a: >\n  text\n",
        "--- \na: 1\n",
        "a: 1\n...\n",
        "%YAML 1.1\n---\na: 1\n",
        "? a\n: 1\n",
        "- a\n- b\n",  # the document is a list
        "  a: 1\n",  # an indented top-level mapping
        "x\n",  # a scalar document
        "",
        "# only a comment\n",
        "a: 'it''s'\n",
        'a: "x\\ty"\n',
        "a: x: y\n",
        "a: @x\n",
        "a: `x\n",
        "a: %x\n",
        "a: -\n",
        "a: - \n",
        "a: --x\n",
        "a: é\n",
        "a: &x 1\n",
        "a: !!str 1\n",
        "a: *x\n",
        "a:\n- b\n  - c\n",
        "a:\n  - b\n - c\n",
        "-  a: 1\n",
        "a:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 20)) + " " * 20 + "v: 1\n",  # deep
        "k" * 129 + ": 1\n",  # a longer key than libyaml reads as a simple key
    ],
)
def test_line_reader_leaves_every_other_shape_to_the_general_readers(text):
    from model_checks.manifest import yamlsafe

    assert yamlsafe._lines(text) is None


@pytest.mark.parametrize(
    "text, message",
    [
        ("a: 1\nb: 2\na: 3\n", "m: line 3: duplicate key 'a' (first at line 1)"),
        ("a: {b: 1, b: 2}\n", "m: line 1: duplicate key 'b' (first at line 1)"),
        ("a:\n  1: x\n", "m: line 2: the key 1 is int, not text; quote it ('1') if it is a name"),
        ("yes: x\n", "m: line 1: the key True is bool, not text; quote it ('True') if it is a name"),
        ("<<: {a: 1}\n", "m: line 1: merge keys (<<) are not allowed in a manifest; write the keys out"),
        ("a: &x 1\nb: *x\n", "m: line 1: anchors (&x) are not allowed"),
        ("a: 1\n  b: 2\n", "m: line 2, column 4: not valid YAML (mapping values are not allowed here)"),
        ("a: [x,\n", "m: line 2, column 1: not valid YAML (expected the node content, but found '<stream end>')"),
    ],
)
def test_refusals_keep_their_messages_with_the_line_reader_in_front(text, message):
    """Text the line reader leaves alone is refused by the general readers, with the same exact message."""
    with pytest.raises(ManifestError) as e:
        load_yaml_text(text, "m")
    assert str(e.value) == message


def test_line_reader_values_and_versions():
    from model_checks.manifest import yamlsafe

    text = (
        "version: 1.10\nrel: 1e-3\nneg: -2E+2\nfrac: -.5\ninf: .inf\nhex: 0x1F\nunder: 1_000\nb: yes\nn: ~\nd: 2026-01-01\n"
        "e:\nq: 'a  b'\ndq: \"x y\"\nempty: ''\ncpu: Intel(R) Xeon(R) Processor\npath: ../x/model.onnx\n"
        "shape: [batch, 3, 224, 224]\nnone: []\nmap: {}\ntol: {rel_l2: null, top1_agreement: 0.95}\n"
        "inputs:\n- name: x\n  range: [-1, 1.5]\n-   \n".replace("-   \n", "- name: y\n  shape:\n  - 1\n")
    )
    assert _agrees(text)
    got = yamlsafe._lines(text)
    assert got["version"] == "1.10" and got["e"] is None and got["inputs"][1] == {"name": "y", "shape": [1]}
    assert yamlsafe._lines("version:\n") == {"version": ""}  # as the loader reads an empty version
    assert _agrees("version:\n") and _agrees("version: [1]\n") and _agrees("version: '1.0'\n")


_PLAIN_TEXTS = [
    "1.10",
    "1e-3",
    "-.5",
    "+1",
    "-1",
    "0x1F",
    "0o17",
    "1_000",
    "yes",
    "No",
    "on",
    "~",
    "null",
    "Null",
    "true",
    "2026-01-01",
    "2026-01-01 10:00:00",
    ".inf",
    "-.inf",
    ".nan",
    "fp32",
    "a b",
    "a  b",
    "model.onnx",
    "../m.onnx",
    "(R)",
    "=",
    "~x",
    "$x",
    "^x",
    "-x",
    "_x",
    ".",
    "x.",
    "x-",
    "/a/b",
    "1.0.0",
    "1:30",
    "a,b",
    "a#b",
]
_plain_text = st.sampled_from(_PLAIN_TEXTS) | st.text(alphabet="ab1.-_ :#,[]{}'\"~", min_size=1, max_size=5)
_key_text = st.sampled_from(["a", "b", "version", "name", "x.y", "x-y", "_k", "yes", "1", "null", "<<"]) | st.text(
    alphabet="ab1._-", min_size=1, max_size=4
)


@st.composite
def _scalar_text(draw, flow=False):
    text = draw(_plain_text)
    quote = draw(st.sampled_from(["", "", "'", '"'])) if not flow else draw(st.sampled_from(["", "", "", "'"]))
    return f"{quote}{text}{quote}"


@st.composite
def _document(draw):
    """Manifest-shaped text, rendered with the freedom people take: flow or block, lists at their key's indent or
    deeper, odd indents, comments and blank lines, extra spaces; often not valid YAML, which is the point."""
    lines: list[str] = []

    def gap():
        if draw(st.integers(0, 9)) == 0:
            lines.append(draw(st.sampled_from(["", "   ", "# c", "  # c", "#"])))

    def sp():
        return " " * draw(st.sampled_from([1, 1, 1, 2]))

    def flow_value():
        items = draw(st.lists(_scalar_text(flow=True), max_size=3))
        if draw(st.booleans()):
            return "[" + draw(st.sampled_from([", ", ",", " , "])).join(items) + "]"
        keys = draw(st.lists(_key_text, max_size=3))
        return "{" + ", ".join(f"{k}:{sp()}{v}" for k, v in zip(keys, items)) + "}"

    def mapping(indent, depth, first_prefix=None):
        for n in range(draw(st.integers(1, 3))):
            gap()
            head = first_prefix if (n == 0 and first_prefix is not None) else " " * indent
            key = draw(_key_text)
            kind = draw(st.sampled_from(["scalar", "scalar", "flow", "map", "list", "empty"]))
            if kind in ("map", "list") and depth >= 3:
                kind = "scalar"
            trail = " " * draw(st.sampled_from([0, 0, 1]))
            if kind == "scalar":
                lines.append(f"{head}{key}:{sp()}{draw(_scalar_text())}{trail}")
            elif kind == "flow":
                lines.append(f"{head}{key}:{sp()}{flow_value()}{trail}")
            elif kind == "empty":
                lines.append(f"{head}{key}:{trail}")
            elif kind == "map":
                lines.append(f"{head}{key}:")
                mapping(indent + draw(st.sampled_from([1, 2, 2, 4])), depth + 1)
            else:
                lines.append(f"{head}{key}:")
                sequence(indent + draw(st.sampled_from([0, 0, 2, 1])), depth + 1)

    def sequence(indent, depth):
        for _ in range(draw(st.integers(1, 3))):
            gap()
            kind = draw(st.sampled_from(["scalar", "flow", "map"]))
            if kind == "scalar":
                lines.append(" " * indent + "- " + draw(_scalar_text()))
            elif kind == "flow":
                lines.append(" " * indent + "- " + flow_value())
            else:
                mapping(indent + 2, depth + 1, first_prefix=" " * indent + "- ")

    mapping(0, 0)
    return "\n".join(lines) + draw(st.sampled_from(["\n", "", "\n\n"]))


@settings(max_examples=1500, deadline=None)
@given(text=_document())
def test_line_reader_reads_like_the_strict_loader_on_generated_text(text):
    _agrees(text)


@settings(max_examples=1500, deadline=None)
@given(
    base=st.sampled_from([BENCH_MANIFEST, DOCS[1], DOCS[2]]),
    edits=st.lists(
        st.tuples(
            st.integers(0, 400),
            st.sampled_from(
                [
                    "",
                    " ",
                    "  ",
                    "-",
                    ":",
                    "#",
                    "'",
                    '"',
                    "[",
                    "]",
                    "{",
                    "}",
                    ",",
                    "\n",
                    "\n ",
                    "\n- ",
                    "a",
                    "1",
                    ".",
                    "~",
                    "?",
                    "|",
                ]
            ),
        ),
        min_size=1,
        max_size=3,
    ),
    cut=st.booleans(),
)
def test_line_reader_reads_like_the_strict_loader_on_mutated_manifests(base, edits, cut):
    """Real manifests with a few characters inserted or replaced: wherever the line reader still reads the text,
    it reads what the loader reads."""
    text = base
    for at, s in edits:
        at %= len(text) + 1
        text = text[:at] + s + text[at + (1 if cut else 0) :]
    _agrees(text)


def test_line_reader_answers_for_the_whole_load():
    """load_yaml_text takes the line reader's answer where it has one, and the general readers' otherwise."""
    assert load_yaml_text(BENCH_MANIFEST, "m")["limits"] == {"opset": {"min": 13}}
    assert load_yaml_text("a: 1 # note\n", "m") == {"a": 1}


def test_a_file_is_read_to_its_end_and_no_further(tmp_path):
    from model_checks.manifest.yamlsafe import _read_at_most

    p = tmp_path / "metadata.yaml"
    p.write_text("a: " + "x" * (MAX_MANIFEST_BYTES - 4) + "\n")  # the largest manifest read: exactly the cap
    assert load_yaml_file(p, "m") == {"a": "x" * (MAX_MANIFEST_BYTES - 4)}
    import os

    fd = os.open(p, os.O_RDONLY)
    try:
        assert len(_read_at_most(fd, 10)) == 10 and len(_read_at_most(fd, 10**9)) == MAX_MANIFEST_BYTES - 10
    finally:
        os.close(fd)


def test_remembered_values_are_the_values_the_text_means():
    """A scalar's text read once is read the same again (texts, numbers, null; never a list or mapping, which the
    reader of the second document could change)."""
    from model_checks.manifest import yamlsafe

    for _ in range(2):
        got = yamlsafe._lines("a: 1\nb: '1'\nc: ~\nd: [1]\ne: {f: 1}\ng:\n- 1\n- '1'\n")
        assert _typed(got) == _typed({"a": 1, "b": "1", "c": None, "d": [1], "e": {"f": 1}, "g": [1, "1"]})
        got["d"].append(2)
        got["e"]["x"] = 1
    assert "[1]" not in yamlsafe._VALUES_SEEN and "{f: 1}" not in yamlsafe._VALUES_SEEN


@settings(max_examples=500, deadline=None)
@given(text=_document())
def test_remembered_lines_read_as_fresh_ones(text):
    """The line reader remembers each short line's parts (a tree's manifests repeat most of their lines): a
    document reads the same, or is left alone the same, with no line remembered, with all of them, and with the
    lines of other documents remembered."""
    from model_checks.manifest import yamlsafe

    def read():
        try:
            return ("read", _typed(yamlsafe._read_lines(text)))
        except Exception as e:  # noqa: BLE001 - _Other, or a scalar the resolver cannot build: compared by type
            return ("left", type(e).__name__)

    warm = read()
    yamlsafe._LINES_SEEN.clear()
    cold = read()
    assert read() == cold == warm
    for line in text.split("\n"):
        if line in yamlsafe._LINES_SEEN:
            try:
                fresh = yamlsafe._line_parts(line)
            except yamlsafe._Other:
                raise AssertionError(f"{line!r} remembered, but it is not of the common shape") from None
            assert yamlsafe._LINES_SEEN[line] == fresh


def test_remembered_lines_are_short_and_bounded(monkeypatch):
    from model_checks.manifest import yamlsafe

    yamlsafe._LINES_SEEN.clear()
    long_line = "a: " + "x" * 200
    assert yamlsafe._lines(f"{long_line}\nb: 1\n") == {"a": "x" * 200, "b": 1}
    assert long_line not in yamlsafe._LINES_SEEN and yamlsafe._LINES_SEEN["b: 1"] == (0, None, "b", "1", None)
    monkeypatch.setattr(yamlsafe, "_PLAIN_SEEN_MAX", 2)
    for i in range(5):
        yamlsafe._lines(f"k{i}: 1\n")
        assert len(yamlsafe._LINES_SEEN) <= 2
