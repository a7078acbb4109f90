"""Test-wide settings: notebooks executed by nbval run in smoke mode, plots render off-screen."""

import os

os.environ["COURSE_SMOKE"] = "1"      # inherited by the kernels nbval starts
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
