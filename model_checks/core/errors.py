"""The errors the package raises, all in this one module. Each renders as the message a user reads in a CI log;
`what` heads a check's failure. The hierarchy:

    ModelChecksError
    ├── ManifestError            a metadata.yaml or policy.yaml that cannot be read or breaks the schema
    ├── UnsafePathError          a path that leaves the root                        ┐ model_unavailable: a check
    ├── UntrustedFormatError     a format that carries code, code not trusted        │ declared blocking="model"
    ├── ArtifactLoadError        a model file that cannot be loaded                  │ stops the artifact's later
    │   └── MachineLoadError     ...for want of something of this machine's          │
    ├── MissingDependencyError   a framework or extra not installed                  ┘ checks on one of these
    ├── DataFileError            samples, recorded outputs or test data that cannot be used
    ├── InputGenerationError     no valid inputs from the declared interface
    ├── InferenceError           running a loaded model failed
    ├── CheckStepError           a check's own step on the model failed in its worker
    ├── DeviceUnavailable        the device a budget names is not usable here
    ├── MeasurementDeadlineError a budget's measurement over its deadline
    ├── WorkerBrokeError         the model's worker process broke
    │   ├── RuntimeCrashError    its runtime died (a signal)
    │   ├── MemoryLimitError     over the worker's memory limit
    │   └── RuntimeTimeoutError  no answer within the timeout
    ├── ProducerError            a producer refused to write (bad input, an output unlike its source)
    ├── ProtocolError            a request the serving protocol refuses (with its HTTP status)
    ├── ServiceFailed            an artifact's inference service did not start or answer
    └── NotLoopback              an address outside this machine was asked for"""

from __future__ import annotations

import re


class ModelChecksError(Exception):
    """Base of every error the gate raises on purpose; `what` heads the failure a user reads."""

    what = "error"
    # True for the errors that say the model cannot be had at all (refused, unsafe, unloadable, its framework
    # missing); a check declared `blocking="model"` stops the artifact's later checks on one of them.
    model_unavailable = False


class ManifestError(ModelChecksError):
    """A metadata.yaml or policy.yaml that cannot be read or does not follow the schema."""

    what = "invalid manifest"

    def __init__(self, file: str, problems: list[str] | str):
        self.file = file
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__(self.render())

    def render(self) -> str:
        if len(self.problems) == 1:
            return f"{self.file}: {self.problems[0]}"
        lines = [f"{self.file}: {len(self.problems)} problems"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


class UnsafePathError(ModelChecksError):
    """A path that leaves the artifacts root, or points where the gate will not read."""

    what = "path refused"
    model_unavailable = True


class UntrustedFormatError(ModelChecksError):
    """A format that carries code, refused because code is not trusted in this run."""

    what = "untrusted format refused"
    model_unavailable = True


class ArtifactLoadError(ModelChecksError):
    """A model file that cannot be loaded: wrong content, truncated, or refused by its runtime."""

    what = "model cannot be loaded"
    model_unavailable = True


class MachineLoadError(ArtifactLoadError):
    """A model that cannot be loaded on this machine for want of something the machine provides, not the model (a
    locale its text ops name): it may load on another machine, so the verdict is this machine's and says so. The
    message names what is missing and how to provide it, or to export the model without needing it."""

    what = "model cannot be loaded on this machine"


class DataFileError(ModelChecksError):
    """A data file the manifest names beside the model (samples, a recorded reference, ONNX test data, eval data)
    that cannot be read, or does not fit the model (an input it has no array for). The data's failure, said as such:
    the model itself may be fine, so the artifact's later checks still run."""

    what = "invalid data"


class CheckStepError(ModelChecksError):
    """A step of a check's own, run on the model in its worker (an emulation, a rewrite), that failed where the model
    loads and runs: the check could not reach a verdict, which is not the model failing to load."""

    what = "check could not run"


class InputGenerationError(ModelChecksError):
    """The gate cannot make valid inputs from the declared interface (no shape, no proven integer range, a string
    input): the message names the key to declare. The model itself may be fine, so later checks still run."""

    what = "no valid inputs for the model"


class MissingDependencyError(ModelChecksError):
    """A framework a check needs is not installed; the message names what to install."""

    what = "missing dependency"
    model_unavailable = True


class InferenceError(ModelChecksError):
    """Running a loaded model failed: feeds that do not fit it, or an error raised by its runtime."""

    what = "inference failed"


class DeviceUnavailable(ModelChecksError):
    """The device a budget names is not usable here; the message says what is missing (nothing is silently
    measured on the CPU instead)."""


class WorkerStartError(ModelChecksError):
    """No worker process could be started for a model: the machine refused a sandbox directory or a process (a full
    disk, a process limit). Not the model's doing; every model of that framework meets it until the machine allows."""

    what = "worker not started"
    model_unavailable = True


class WorkerBrokeError(ModelChecksError):
    """The worker process running a model broke: it crashed, ran out of memory or hung. Checks let it
    through as is: it says what happened, which no reading of the model's answer could."""

    what = "worker broke"


class RuntimeCrashError(WorkerBrokeError):
    """The model's runtime died in its worker process (a signal such as SIGSEGV or SIGABRT)."""

    what = "runtime crashed"


class MemoryLimitError(WorkerBrokeError):
    """The model needed more memory than its worker process may use."""

    what = "memory limit exceeded"


class RuntimeTimeoutError(WorkerBrokeError):
    """The model's runtime did not answer within the timeout; its worker process was killed."""

    what = "timed out"


class AnswerRefusedError(WorkerBrokeError):
    """A worker's answer that was refused before anything used it: it named something no answer holds (a pickle that
    calls a function as it is read), was not well formed, or was not what its operation answers. The model's runtime
    may have been taken over; the worker was killed."""

    what = "answer refused"


class ProducerError(ModelChecksError):
    """A producer refused to write: bad input, or an output that does not match its source.

    `cli` is the same sentence with the command line's flags where the message names a Python parameter; the
    CLI prints it instead (`for_cli`)."""

    def __init__(self, message: str, cli: str | None = None):
        super().__init__(message)
        self.cli = cli

    def for_cli(self) -> str:
        return self.cli or str(self)


class ProtocolError(ModelChecksError):
    """A request the protocol refuses: `status` is the HTTP status (4xx: the client's fault, 500: the model's)."""

    what = "request refused"

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message

    def body(self) -> dict[str, str]:
        return {"error": self.message}


class ServiceFailed(ModelChecksError):
    """An artifact's inference service did not start, or stopped answering."""

    what = "service failed"


class NotLoopback(ModelChecksError):
    """An address outside this machine was asked for."""


def of_kind(cls: type[ModelChecksError], message: str) -> ModelChecksError:
    """An error of class `cls` carrying `message` as is, whatever `cls.__init__` takes (ManifestError)."""
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    return err


def with_context(error: ModelChecksError, prefix: str) -> ModelChecksError:
    """The same kind of error with `prefix` before its message (e.g. which manifest key named the file)."""
    return of_kind(type(error), f"{prefix}{error}")


class MeasurementDeadlineError(ModelChecksError):
    """A budget's measurement (warm-up and rounds) did not finish within its own deadline."""

    what = "measurement over its deadline"


_CAUSE = re.compile(r"^(?:\[ONNXRuntimeError\].*|[A-Za-z_][\w.]*(?:Error|Exception)\b.*:.*)$")


def runtime_error_text(e: BaseException | str, kind: str | None = None) -> str:
    """A runtime's error in full, its cause line first: `Type: cause`, then the whole text indented.

    Runtimes (TorchScript above all) put the cause at the end of a long interpreter traceback; cutting
    the text at a few hundred characters drops exactly that line, so nothing is cut."""
    text = (e if isinstance(e, str) else str(e)).strip()
    kind = kind or ("" if isinstance(e, str) else type(e).__name__)
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    if not lines:
        return kind or "(no message)"
    cause = next((line.strip() for line in reversed(lines) if _CAUSE.match(line.strip())), lines[0].strip())
    head = f"{kind}: {cause}" if kind and not cause.startswith(kind) else cause
    if len(lines) == 1:
        return head
    return head + "\n" + "\n".join(f"    {line}" for line in lines)
