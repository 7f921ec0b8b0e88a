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
