"""Evaluation harness: run models over a manifest, measure expressiveness, write a report.

`run_eval(EvalConfig(...))` is `sa-slm eval`; `write_report` and `summarise` work on any items.jsonl;
`EchoMindModel` puts a checkpoint behind the EchoMind benchmark's model interface.
"""

from .config import EvalConfig, ModelEntry
from .echomind import EchoMindModel, script_info_to_manifest
from .report import write_report
from .runner import EvalRun, run_eval
from .summary import read_rows, summarise, summary_markdown

__all__ = ["EchoMindModel", "EvalConfig", "EvalRun", "ModelEntry", "read_rows", "run_eval", "script_info_to_manifest",
           "summarise", "summary_markdown", "write_report"]
