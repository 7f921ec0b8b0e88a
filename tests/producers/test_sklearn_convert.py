"""scikit-learn classifiers through skl2onnx, with and without ZipMap, gated end to end (issue 10, points 2, 3, 7)."""

import numpy as np
import pytest

pytest.importorskip("skl2onnx")

from model_checks.backends.onnx.facts import model_facts  # noqa: E402
from model_checks.cli import main  # noqa: E402
from model_checks.core.session import GateSession  # noqa: E402
from model_checks.producers.package import package  # noqa: E402
from model_checks.producers.sklearn_convert import convert_sklearn  # noqa: E402


@pytest.fixture(scope="module")
def classifier():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6)).astype(np.float32)
    y = np.argmax(x[:, :4], axis=1)  # 4 classes, label 0 a quarter of the data
    return LogisticRegression(max_iter=300).fit(x, y), x, y


@pytest.fixture(scope="module")
def family(classifier, tmp_path_factory):
    model, x, y = classifier
    root = tmp_path_factory.mktemp("skl")
    made = {}
    for variant, zipmap in (("plain", False), ("zipmap", True)):
        conv = convert_sklearn(model, root / f"{variant}.onnx", x[:32], zipmap=zipmap)
        made[variant] = package(
            conv.path,
            root / variant,
            model_name=f"skl_{variant}",
            root=root,
            samples=x[:32],
            eval_data=(x, y),
            reference=None if variant == "plain" else root / "plain" / "model.onnx",
            optimization=list(conv.steps),
            limits={"dynamic_axes": ["batch"]},
            runs=3,
        )
    return root, made


def test_zipmap_output_type_is_named(family):
    root, _ = family
    facts = model_facts(root / "zipmap" / "model.onnx", root)
    assert [(o.name, o.dtype) for o in facts.outputs] == [
        ("label", "int64"),
        ("probabilities", "seq(map(int64,float32))"),
    ]


@pytest.mark.parametrize("check", ["integrity", "metadata", "limits", "equivalence", "accuracy"])
def test_the_zipmap_classifier_passes_every_check_without_a_crash(family, check):
    # limits died with AttributeError: 'list' object has no attribute 'ndim'; equivalence said [256] vs [256, 10]
    root, _ = family
    gs = GateSession([root])
    r = gs.run_check(check, next(a for a in gs.artifacts if a.id == "skl_zipmap@1.0"))
    assert r, str(r)


def test_accuracy_scores_the_probabilities_not_the_label_vector(family, classifier):
    # argmax of the first output (the labels) measured the share of label 0
    root, _ = family
    model, x, y = classifier
    gs = GateSession([root])
    r = gs.run_check("accuracy", next(a for a in gs.artifacts if a.id == "skl_zipmap@1.0"))
    expected = float(np.mean(model.predict(x) == y))
    assert r.headline == (
        f"accuracy: skl_zipmap@1.0: accuracy {expected:.4f} from output 'probabilities' (argmax of scores), "
        f"reference {expected:.4f} from 'probabilities' (argmax of scores), drop +0.0000 on 300 samples"
    )


def test_accuracy_output_can_name_the_label_output(family, classifier, tmp_path):
    import shutil

    root, _ = family
    d = tmp_path / "labels"
    shutil.copytree(root / "plain", d)
    (d / "metadata.yaml").write_text((d / "metadata.yaml").read_text() + "accuracy: {output: label}\n")
    gs = GateSession([tmp_path])
    r = gs.run_check("accuracy", gs.artifacts[0])
    assert "from output 'label' (labels)" in r.headline, str(r)


def test_convert_sklearn_command(classifier, tmp_path, capsys):
    import joblib

    model, x, _ = classifier
    joblib.dump(model, tmp_path / "clf.joblib")
    np.savez(tmp_path / "samples.npz", input=x[:16])
    assert (
        main(
            [
                "convert-sklearn",
                str(tmp_path / "clf.joblib"),
                "--samples",
                str(tmp_path / "samples.npz"),
                "--no-zipmap",
                "--out",
                str(tmp_path / "m.onnx"),
            ]
        )
        == 0
    )
    assert (
        f"{tmp_path / 'm.onnx'}: scikit-learn -> ONNX (skl2onnx, no_zipmap), outputs label, probabilities"
        in capsys.readouterr().out
    )
