"""Counting the work of one model's evaluation: images through the model, forward and input-gradient backward,
attributed to the measure the evaluation was in (``ModelEvaluation.timed``'s name) when the pass was made.

One forward pass of one image is 1 F; an input-gradient backward costs about one more (the gradient with respect to
each layer's input, the transposed layer; no parameter gradient: the attacks ask for none, bench/study_cost.py), so the
work of a measure is forward + backward passes, in F. A bench tool, not part of the evaluation: it wraps a model with
hooks and the evaluation's ``timed`` with a switch of the current measure.
"""
from collections import Counter
from contextlib import contextmanager


class PassCounter:
    def __init__(self, model, evaluation_class):
        self.forward, self.backward = Counter(), Counter()
        self.current = "setup"
        model.register_forward_hook(lambda module, inputs, output: self._count(self.forward, inputs))
        model.register_full_backward_hook(lambda module, grad_input, grad_output: self._count(
            self.backward, grad_output))
        timed = evaluation_class.timed
        counter = self

        @contextmanager
        def switched(evaluation, name):
            previous, counter.current = counter.current, name
            with timed(evaluation, name):
                yield
            counter.current = previous

        evaluation_class.timed = switched

    def _count(self, counter, tensors):
        counter[self.current] += len(tensors[0])

    def work(self, measure):
        """F of ``measure``: its forward plus its input-gradient backward passes."""
        return self.forward[measure] + self.backward[measure]

    def measures(self):
        return list(dict.fromkeys([*self.forward, *self.backward]))
