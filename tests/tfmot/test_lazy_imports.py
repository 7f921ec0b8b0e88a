"""A gate run over ONNX artifacts only, every check run, imports neither torch nor tensorflow (nor tfmot),
even with the TorchScript/Keras/TFLite backends and tfmot checks registered (nor LiteRT). Pinned in a subprocess."""

import textwrap

from fixtures import artifacts as A


def test_onnx_only_run_imports_no_framework(pytester):
    root = pytester.path / "arts"
    A.pair(
        root,
        inputs=[{"name": "input", "dtype": "float32", "shape": ["batch", 4], "layout": "NC"}],
        tfmot={"quantize": True},
    )
    pytester.makeconftest(
        textwrap.dedent("""
        import sys
        HEAVY = ("torch", "tensorflow", "tf_keras", "tensorflow_model_optimization", "ai_edge_litert")
        def pytest_sessionfinish(session):
            heavy = sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY))
            assert not heavy, f"imported {heavy}"
            print("NO_FRAMEWORK_IMPORTED")
    """)
    )
    r = pytester.runpytest_subprocess("--model-checks", "arts", "-p", "no:cacheprovider", "-s", "-v")
    r.stdout.fnmatch_lines(["*test_equivalence*variant*PASSED*", "*NO_FRAMEWORK_IMPORTED*"])
    assert "tfmot" not in r.stdout.str()  # declared on an ONNX artifact: not collected
    assert r.ret == 0
