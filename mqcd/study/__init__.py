"""Method-comparison studies: ``mqcd study STUDY.toml`` (docs/studies.md).

A study file names a base deck and the axes to vary (method variants with their options, model
parameters, initial momenta, trajectory counts, seeds, ...); :func:`load_study` validates and
expands it into one deck per run plus one exact reference per physical case, :func:`run_study`
runs what is missing (``--jobs K``, or the ranks of ``mpiexec``) and writes the report
(:mod:`mqcd.study.report`: markdown, HTML, figures and ``study.h5``).
"""
from .runner import plan, run_study
from .spec import STUDY_KEYS, Run, Study, StudyError, deck_fingerprint, load_study

__all__ = ["run_study", "load_study", "plan", "Study", "Run", "StudyError", "STUDY_KEYS",
           "deck_fingerprint"]
