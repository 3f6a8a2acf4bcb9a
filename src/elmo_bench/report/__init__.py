"""Results on disk → comparison tables and figures. Reads only result.json files; knows nothing of torch."""
from .build import NoResultsError, Report, build_report
from .load import ResultFileWarning, RunResult

__all__ = ["NoResultsError", "Report", "ResultFileWarning", "RunResult", "build_report"]
