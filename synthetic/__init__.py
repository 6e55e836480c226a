"""The synthetic study (Vardi, Yehudai & Shamir 2022): does activation sparsity move the minimal l2 flip?
``experiment.run_experiment(config)`` runs one ``config.SyntheticConfig``; ``scaling`` compares sizes (d, m)."""
