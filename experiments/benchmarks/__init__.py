

from experiments import xla_cpu

xla_cpu.apply()  # what `python -m experiments.run` runs with (experiments/xla_cpu.py)
