"""Distillation of a teacher LAM into a fast student.

Options (:mod:`.options`), exploration and labelling (:mod:`.explore`), the student
(:mod:`.student`), the card and plot (:mod:`.report`) and the loop (:mod:`.run`).
"""

from lam.train.distill.explore import label_frames, run_md
from lam.train.distill.options import DistillOptions
from lam.train.distill.run import DistillResult, distill, format_round
from lam.train.distill.student import speed_us_per_atom

__all__ = ["DistillOptions", "DistillResult", "distill", "format_round", "label_frames", "run_md",
           "speed_us_per_atom"]
