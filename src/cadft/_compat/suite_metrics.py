"""Moved to `cadft.evaluation.metrics`; this module keeps the old import path working."""

from ..evaluation.metrics import (
                                  avg_at_k,
                                  avg_at_k_interval,
                                  pass_at_k,
                                  pass_at_ks,
                                  report_ks,
                                  suite_average,
                                  wilson_interval,
)

__all__ = ["avg_at_k", "avg_at_k_interval", "pass_at_k", "pass_at_ks", "report_ks", "suite_average",
           "wilson_interval"]
