"""CIFAR-10 reading, class subsets and batched augmentation; synthetic sphere data."""
