"""What a check sees of one artifact: its manifest, its model and its reference, loaded through the pool."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Iterator

from model_checks.backends import backend
from model_checks.backends.base import ModelFacts, Names, Runner, declared_names
from model_checks.core.artifact import Artifact
from model_checks.core.errors import ManifestError, ModelChecksError, with_context
from model_checks.core.inputs import Case, cast_feeds, generated_cases, merge_interface, sample_cases
from model_checks.core.pool import ModelPool
from model_checks.core.references import (
    TestData,
    cases_of,
    read_testdata,
    recorded_cases,
    reference_kind,
    testdata_cases,
)
from model_checks.manifest import Manifest, guess_format


@dataclass
class CheckContext:
    artifact: Artifact
    pool: ModelPool
    localize: bool = True  # a failed equivalence says where the models diverge (--model-checks-localize)
    serving_caps: Any = None  # serving.caps.ServingCaps from the gate's options; None: their defaults
    runtime: str | None = None  # the runtime an item of `runtimes:` runs the model on (None: the format's own)
    testdata: TestData | None = None  # its reference's test data, read ahead (`read_testdata`): read now, else

    @property
    def manifest(self) -> Manifest:
        assert self.artifact.manifest is not None
        return self.artifact.manifest

    @property
    def fmt(self) -> str:
        return self.manifest.format

    @property
    def where(self) -> str:
        return f"{self.artifact.rel_dir}/metadata.yaml"

    @cached_property
    def model_path(self) -> Path:
        return self.artifact.model_path

    @property
    def names(self) -> Names:
        """The input and output names this manifest declares, handed to backends whose models carry none."""
        return declared_names(self.manifest)

    def runner(self, threads: int | None = None) -> Runner:
        return self.pool.runner(self.model_path, self.fmt, self.artifact.root, threads, names=self.names)

    def facts(self) -> ModelFacts:
        return self.pool.facts(self.model_path, self.fmt, self.artifact.root, names=self.names)

    # -- the reference -------------------------------------------------------------------------------
    @cached_property
    def reference_path(self) -> Path | None:
        path = self.artifact.path("reference.path")
        # both were resolved (realpath) and proven inside the root by Artifact.path: equal paths are one file
        if path is not None and path == self.model_path and path.exists():
            raise ManifestError(
                self.where,
                f"reference.path: {self.manifest.get('reference.path')} resolves to this artifact's own model "
                f"({self.manifest.get('file')}); a model compared with itself proves nothing: name the model it was made from",
            )
        return path

    @cached_property
    def reference_kind(self) -> str | None:
        return reference_kind(self.reference_path) if self.reference_path else None

    @property
    def reference_format(self) -> str:
        assert self.reference_path is not None
        if self.reference_path.is_dir():
            return "saved_model"
        fmt = guess_format(self.reference_path.name)
        assert fmt is not None
        return fmt

    def reference_runner(self) -> Runner:
        assert self.reference_path is not None and self.reference_kind == "model"
        with self._as_reference():
            # its own sha256, if declared, hashed while it loads
            self.pool.hash_ahead(self.reference_path, self.reference_format, self.artifact.root)
            return self.pool.runner(self.reference_path, self.reference_format, self.artifact.root)

    @property
    def cross_framework(self) -> bool:
        """Feeds and outputs need matching to the reference: another framework, or TorchScript (which names nothing)."""
        return self.reference_format != self.fmt or self.fmt == "torchscript"

    def reference_feeds(self, feeds: dict) -> dict:
        """The artifact's feeds as the reference model wants them: its names, its layout (`model_checks.core.layout`),
        its input dtypes (`reference_casts` names the casts)."""
        return self._reference_feeds(feeds)[0]

    def reference_casts(self, feeds: dict) -> list[str]:
        """The casts `reference_feeds` makes for the reference model (float16 samples for a float32 reference).
        Read off the reference's facts where its runner's interface is its facts' (`INTERFACE_IS_FACTS` in the
        backend's runner module: ONNX), so that naming a case does not load the reference: a large model and its
        large reference would otherwise take turns in memory once more (see pool.LARGE_MODEL_BYTES)."""
        if self.reference_kind != "model":
            return []
        if not self.cross_framework and getattr(backend(self.reference_format, "runner"), "INTERFACE_IS_FACTS", False):
            return cast_feeds(feeds, self.reference_facts().inputs)[1]
        return self._reference_feeds(feeds)[1]

    def _reference_feeds(self, feeds: dict) -> tuple[dict, list[str]]:
        if self.cross_framework:
            from model_checks.core.layout import feeds_for

            specs = merge_interface(self.manifest.inputs, self.runner().inputs)
            feeds = feeds_for(feeds, specs, self.fmt, self.reference_runner().inputs, self.reference_format)
        return cast_feeds(feeds, self.reference_runner().inputs)

    def reference_outputs(self, feeds: dict) -> dict:
        """The reference model run on the artifact's feeds, its outputs under the artifact's names (by order
        where the names differ across frameworks)."""
        return self.reference_outputs_many([feeds])[0]

    def reference_outputs_many(self, feeds: list[dict]) -> list[dict]:
        """`reference_outputs` of each set of feeds, in one request to the reference's worker."""
        outs = self.reference_runner().infer_many([self.reference_feeds(f) for f in feeds])
        if not self.cross_framework:
            return outs
        from model_checks.core.layout import outputs_as

        names = {o.name: None for o in self.runner().outputs}
        return [outputs_as(out, names) for out in outs]

    def reference_facts(self) -> ModelFacts:
        assert self.reference_path is not None and self.reference_kind == "model"
        with self._as_reference():
            return self.pool.facts(self.reference_path, self.reference_format, self.artifact.root)

    @contextmanager
    def _as_reference(self) -> Iterator[None]:
        """Say it is the reference that is broken, not the artifact's own model."""
        try:
            yield
        except ModelChecksError as e:
            raise with_context(e, f"{self.where}: reference.path {self.manifest.get('reference.path')}: ") from None

    # -- inputs --------------------------------------------------------------------------------------
    def interface(self) -> list:
        return merge_interface(self.manifest.inputs, self.runner().inputs)

    def sample_feeds(self) -> dict | None:
        """The artifact's `samples` as feeds by input name, or None when it ships none."""
        samples = self.artifact.path("samples")
        if samples is None:
            return None
        feeds = sample_cases(samples, self.interface(), f"{self.where}: samples")[0].inputs
        return cast_feeds(feeds, self.runner().inputs)[0]

    def cases(self) -> list[Case]:
        """What equivalence runs: recorded cases when the reference is a recording, else samples or generated."""
        key = f"{self.where}: reference.path"
        if self.reference_kind == "npz":
            return recorded_cases(self.reference_path, key)  # type: ignore[arg-type]
        if self.reference_kind == "testdata":
            r = self.runner()
            if self.testdata is not None:
                return cases_of(self.testdata, [t.name for t in r.inputs], [t.name for t in r.outputs])
            return testdata_cases(
                self.reference_path, [t.name for t in r.inputs], [t.name for t in r.outputs], key, self.artifact.root
            )  # type: ignore[arg-type]
        samples = self.artifact.path("samples")
        if samples is not None:
            cases = sample_cases(samples, self.interface(), f"{self.where}: samples")
        else:
            cases = generated_cases(self.interface(), self.artifact.id)
        return [self._as_declared(c) for c in cases]

    def read_testdata(self) -> TestData | None:
        """The reference's ONNX test data as read, before the model's names are known (`cases` names its unnamed
        tensors): for reading it, and sending its inference, ahead of the check. None for another reference."""
        if self.reference_path is None or self.reference_kind != "testdata":
            return None
        return read_testdata(self.reference_path, f"{self.where}: reference.path", self.artifact.root)

    def _as_declared(self, case: Case) -> Case:
        """`case` with its inputs in the model's own input dtypes, the casts named in its label, with those the
        reference model's feeds will get (`reference_feeds`)."""
        feeds, notes = cast_feeds(case.inputs, self.runner().inputs)
        label = f"{case.label}; for the model {', '.join(notes)}" if notes else case.label
        try:
            theirs = self.reference_casts(feeds) if case.outputs is None else []
        except ModelChecksError:
            theirs = []  # a reference that cannot be had fails where it is used, not in naming a case
        if theirs:
            label += f"; for the reference {', '.join(theirs)}"
        return case if label == case.label else Case(label, feeds, case.outputs)
