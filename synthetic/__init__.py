"""The synthetic study (Vardi, Yehudai & Shamir 2022): does activation sparsity move the minimal l2 flip?

config      SyntheticConfig: every knob, validation, the results file's name
data        points on the sphere of radius sqrt(d) with random ±1 labels
trainer     many depth-2 ReLU networks (models.relu_net) trained at once, each to the same data-loss target
measures    three minimal-l2 flip measures (margin set, theory direction, l2 PGD)
records     per-run, per-strength (censoring-aware) and baseline records: the results file
table       the printed summary; figure: the figure
experiment  all of it for one config: ``run_experiment(config)``, ``write_results``
scaling     the unregularised flip against the theory's sqrt(d/m), over results files of several (d, m)
"""
