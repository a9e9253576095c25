"""The claims report (issue 16): the five papers' headline claims as paired statistical tests on
networks trained for the purpose. `python -m experiments.claims --variant gpu` trains, scores and
writes results/claims/claims.md; config.py says what each variant trains, claims.py what is tested."""
