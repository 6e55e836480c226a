"""CIFAR-10 reading, class subsets, batched augmentation and the on-device loader."""
