"""Result records: the parts of one (``parts``), the record and its file (``record``), the store that keeps each
model's record once (``store``), the summary table of a store's folder (``summary``), and the one-off move of the
schema-4 method folders into a store (``migrate``)."""
