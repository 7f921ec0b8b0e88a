"""Where two ONNX models start to differ: tensors matched across the graphs (`match`), run a chunk at a time
under a time and a memory cap (`runner`), the table with the first node whose introduced error crosses the
tolerance (`report`), and SQNR per tensor for int8 QDQ models (`sqnr`)."""

from model_checks.localize.locate import localize
from model_checks.localize.report import Localization, Row, Sqnr
from model_checks.localize.runner import Caps

__all__ = ["localize", "Localization", "Row", "Sqnr", "Caps"]
