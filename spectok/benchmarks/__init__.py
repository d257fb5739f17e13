"""The spectok benchmark: tasks, baselines and the report (``spectok bench``).

`run_benchmark` runs every task on a model and on two honest baselines
(the same architecture untrained, and resampled flux + PCA), plus a
classical template fit for redshifts (`TemplateRedshiftFit`) and a χ² at
matched resolution for cross-instrument twins (`matched_chi2`), with fixed
seeds and by-object splits; `format_report` prints the result as markdown;
`compare_heads` measures the probe heads so their defaults can be re-chosen.
"""

from .features import *  # noqa: F401,F403
from .report import *  # noqa: F401,F403
from .metrics import *  # noqa: F401,F403
from .context import *  # noqa: F401,F403
from .tasks import *  # noqa: F401,F403
from .runner import *  # noqa: F401,F403
from .choose_heads import *  # noqa: F401,F403
from .template_redshift import *  # noqa: F401,F403
from .matched_twins import *  # noqa: F401,F403
from . import (features, report, metrics, context, tasks, runner, choose_heads,  # noqa: E402
               template_redshift, matched_twins)

__all__ = (features.__all__ + report.__all__ + metrics.__all__ + context.__all__ + tasks.__all__
           + runner.__all__ + choose_heads.__all__ + template_redshift.__all__
           + matched_twins.__all__)
