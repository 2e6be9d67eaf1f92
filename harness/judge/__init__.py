"""The judge: rubrics, verdicts, and the judges that produce them (DESIGN §6)."""

from __future__ import annotations

from harness.judge.base import Judge, Judgement, JudgeRequest
from harness.judge.offline import OfflineJudge
from harness.judge.rubric import Rubric, load_rubric

__all__ = ["Judge", "JudgeRequest", "Judgement", "OfflineJudge", "Rubric", "load_rubric"]
