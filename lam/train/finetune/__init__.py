"""Fine-tuning a pretrained LAM.

Options (:mod:`.options`), head choice and refit (:mod:`.prepare`), training (:mod:`.fit`) and the
whole run (:mod:`.run`).
"""

from lam.train.finetune.options import FinetuneOptions
from lam.train.finetune.run import FinetuneResult, finetune

__all__ = ["FinetuneOptions", "FinetuneResult", "finetune"]
